/**
 * The two requests a fleet sends most, answered over DTLS without node-coap's per-request
 * machinery: artifact blocks (64 per device for a 64 KiB image) and manifest polls (one per
 * device per poll interval, for as long as the fleet runs). node-coap costs ~150 µs each (streams,
 * an LRU entry, a retransmission object, a generic encoder that decodes every payload as UTF-8 to
 * test it for emptiness); at fleet scale that was most of the server's CPU.
 * Only the plain cases are taken — a confirmable GET of `/.u/c/<artifact>` with only Uri-Path,
 * Block2 and Size2, or of `/.u/desired` with only Uri-Path (no Observe) — and answered with
 * exactly what the node-coap path sends (the same options, payload and piggybacked ACK, and the
 * same side effects: metrics, last-seen, an observation with the same token ended). Anything
 * else, including every error and every Observe registration, goes to node-coap as before.
 * DtlsCoapSocket has already deduplicated the request and caches this reply for retransmissions.
 */
import type { RemoteInfo } from 'node:dgram';
import type { DtlsSession } from '../dtls/index.js';
import { decodeMessage, encodeMessage } from '../net/message.js';
import { OptionNumber, encodeUint } from '../net/options.js';
import type { CoapOption } from '../net/options.js';
import { OCTET_STREAM_FORMAT, artifactAnswer } from './artifact-block.js';
import { CBOR_FORMAT } from './coap-resources.js';
import type { ServerMetrics } from './metrics.js';
import type { UpdateModel } from './model.js';
import type { ObserverRegistry } from './observers.js';

const ARTIFACT_PREFIX = '/.u/c/';
const MANIFEST_PATH = '/.u/desired';
const OCTET_STREAM_VALUE = encodeUint(OCTET_STREAM_FORMAT);
const CBOR_VALUE = encodeUint(CBOR_FORMAT);

type Counters = Pick<ServerMetrics, 'blocksServed' | 'artifactBytesServed' | 'manifestRequests'> & { requests: { dtls: number } };


export interface FastPathDeps {
  model: UpdateModel;
  observers: ObserverRegistry;
  counters: Counters;
  defaultBlock_bytes: number;
}

/** A function that answers a request datagram with the reply datagram, or null: let node-coap handle it. */
export function dtlsFastPath(deps: FastPathDeps): (datagram: Buffer, session: DtlsSession, from: RemoteInfo) => Buffer | null {
  const { model, observers, counters, defaultBlock_bytes } = deps;
  return (datagram, session, from) => {
    // cheap pre-checks on the fixed header: CON (type 0), GET (code 0.01)
    if (datagram.length < 4 || datagram[1] !== 0x01 || ((datagram[0] as number) & 0x30) !== 0) return null;
    const m = decodeMessage(datagram);
    if (!m || m.type !== 'CON' || m.code !== '0.01') return null;
    let path = '';
    let block2: Buffer | null = null;
    let askedSize2 = false;
    for (const o of m.options) {
      if (o.number === OptionNumber.UriPath) path += `/${o.value.toString('utf8')}`;
      else if (o.number === OptionNumber.Block2) block2 = o.value;
      else if (o.number === OptionNumber.Size2) askedSize2 = true;
      else return null;
    }
    if (path === MANIFEST_PATH && block2 === null && !askedSize2) {
      // as CoapResources.desired() without Observe: a plain poll (it ends an observation with its token)
      counters.requests.dtls++;
      counters.manifestRequests++;
      const identity = session.identity.toString('utf8');
      model.touch(identity);
      observers.remove(`dtls|${from.address}:${from.port}|${m.token.toString('hex')}`);
      const options: CoapOption[] = [{ number: OptionNumber.ContentFormat, value: CBOR_VALUE }];
      return encodeMessage({ type: 'ACK', code: '2.05', messageId: m.messageId, token: m.token, options, payload: model.manifestFor(identity) });
    }
    if (!path.startsWith(ARTIFACT_PREFIX)) return null;
    const a = artifactAnswer(model, path, block2, askedSize2, defaultBlock_bytes);
    if (!a.ok) return null;
    const options: CoapOption[] = [
      { number: OptionNumber.ETag, value: a.etag },
      { number: OptionNumber.ContentFormat, value: OCTET_STREAM_VALUE },
    ];
    if (a.block2 !== null) options.push({ number: OptionNumber.Block2, value: a.block2 });
    if (a.size2 !== null) options.push({ number: OptionNumber.Size2, value: encodeUint(a.size2) });
    const reply = encodeMessage({ type: 'ACK', code: '2.05', messageId: m.messageId, token: m.token, options, payload: a.payload });
    counters.requests.dtls++;
    counters.blocksServed++;
    counters.artifactBytesServed += a.payload.length;
    return reply;
  };
}
