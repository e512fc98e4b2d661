/**
 * Artifact blocks over DTLS without node-coap's per-request machinery. A fleet's server spends
 * most of its CPU on Block2 GETs (64 per device for a 64 KiB image), and node-coap costs
 * ~150 µs each (streams, an LRU entry, a retransmission object, a generic encoder that decodes
 * every payload as UTF-8 to test it for emptiness). This answers the plain case — a confirmable
 * GET of `/.u/c/<artifact>` with only Uri-Path, Block2 and Size2 — with exactly what the node-coap
 * path sends (artifact-block.ts: the same ETag, Block2, Size2, Content-Format and payload, as a
 * piggybacked ACK); anything else, including every error, goes to node-coap as before.
 * DtlsCoapSocket has already deduplicated the request and caches this reply for retransmissions.
 */
import { decodeMessage, encodeMessage } from '../net/message.js';
import { OptionNumber, encodeUint } from '../net/options.js';
import type { CoapOption } from '../net/options.js';
import { OCTET_STREAM_FORMAT, artifactAnswer } from './artifact-block.js';
import type { ServerMetrics } from './metrics.js';
import type { UpdateModel } from './model.js';

const ARTIFACT_PREFIX = '/.u/c/';
const CONTENT_FORMAT_VALUE = encodeUint(OCTET_STREAM_FORMAT);

type Counters = Pick<ServerMetrics, 'blocksServed' | 'artifactBytesServed'> & { requests: { dtls: number } };

/** A function that answers an artifact GET datagram with the reply datagram, or null: let node-coap handle it. */
export function artifactFastPath(model: UpdateModel, counters: Counters, defaultBlock_bytes: number): (datagram: Buffer) => Buffer | null {
  return (datagram) => {
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
    if (!path.startsWith(ARTIFACT_PREFIX)) return null;
    const a = artifactAnswer(model, path, block2, askedSize2, defaultBlock_bytes);
    if (!a.ok) return null;
    const options: CoapOption[] = [
      { number: OptionNumber.ETag, value: a.etag },
      { number: OptionNumber.ContentFormat, value: CONTENT_FORMAT_VALUE },
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
