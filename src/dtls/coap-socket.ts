/**
 * A socket-like object that node-coap's server can `listen()` on, carrying CoAP over the DTLS
 * server's sessions. node-coap (1.5) uses only `send(buf, offset, length, port, address, cb)`,
 * `on('message', (msg, rinfo))` and `on('error')` on a socket it did not create.
 *
 * node-coap answers a duplicate confirmable request from its reply cache only when its socket is
 * a real `dgram.Socket`; on any other socket the duplicate is processed again as a new request
 * (or, while the first is still being handled, answered twice or not at all). Lossy links then
 * stall. So this adapter does CoAP message deduplication itself (RFC 7252 §4.5), per DTLS session
 * (RFC 7252 §9.1: Message IDs are scoped to the security association): the first CON/NON with a
 * Message ID goes to node-coap; a duplicate CON gets the exact ACK/RST node-coap sent for the
 * first (or nothing yet, while it is still being answered); a duplicate NON is dropped.
 * Entries live EXCHANGE_LIFETIME on the injected clock and are bounded in number.
 */
import { EventEmitter } from 'node:events';
import type { RemoteInfo } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { ScaledClock } from '../clock.js';
import type { Clock } from '../clock.js';
import type { DtlsServer } from './server.js';
import type { DtlsSession } from './session.js';
import { ownedCopy } from '../buffers.js';

export interface DtlsCoapSocketOptions {
  /** The clock deduplication ages on (default real time). */
  clock?: Clock;
  /** How long a Message ID is remembered (RFC 7252 EXCHANGE_LIFETIME, default 247 s). */
  exchangeLifetime_ms?: number;
  /** Remembered Message IDs at most, over all sessions (default 20 000). */
  maxDedupEntries?: number;
  /**
   * Answers some requests itself, before node-coap sees them: the reply datagram, or null to pass
   * the request on. Called once per new request (after deduplication); its reply is cached for
   * duplicates like node-coap's.
   */
  intercept?: (request: Buffer, session: DtlsSession, from: RemoteInfo) => Buffer | null;
}

export type SendCallback = (error: Error | null, bytes: number) => void;

/** dgram.Socket#send's argument forms: `(buf, offset, length, port, address, cb?)` or `(buf, port, address, cb?)`. */
export function parseSendArgs(buf: Buffer, args: readonly unknown[]): { data: Buffer; port: unknown; address: unknown; cb: SendCallback | undefined } {
  let data = buf;
  let rest = args;
  if (typeof args[0] === 'number' && typeof args[1] === 'number' && typeof args[2] === 'number') {
    data = buf.subarray(args[0], args[0] + args[1]);
    rest = args.slice(2);
  }
  const cb = rest.find((a): a is SendCallback => typeof a === 'function');
  return { data, port: rest[0], address: rest[1], cb };
}

const TYPE_CON = 0;
const TYPE_NON = 1;
const TYPE_ACK = 2;
const TYPE_RST = 3;

interface DedupEntry {
  at_ms: number;
  /** The ACK/RST sent for this Message ID, once node-coap has sent it. */
  reply: Buffer | null;
}

/** CoAP fixed header (RFC 7252 §3): type and Message ID, or null if this is not CoAP version 1. */
function coapHeader(b: Buffer): { type: number; code: number; messageId: number } | null {
  if (b.length < 4 || b[0] === undefined || b[0] >>> 6 !== 1) return null;
  return { type: (b[0] >>> 4) & 3, code: b.readUInt8(1), messageId: b.readUInt16BE(2) };
}

export class DtlsCoapSocket extends EventEmitter {
  private readonly clock: Clock;
  private readonly lifetime_ms: number;
  private readonly maxEntries: number;
  private readonly intercept: DtlsCoapSocketOptions['intercept'];
  private readonly dedup = new Map<string, DedupEntry>();
  private readonly onMessage = (data: Buffer, rinfo: RemoteInfo, session: DtlsSession): void => this.incoming(data, rinfo, session);
  private closed = false;
  /** Duplicates answered from the cache and dropped, for tests and reports. */
  readonly counters = { duplicatesAnswered: 0, duplicatesDropped: 0, sendsWithoutSession: 0 };

  constructor(
    private readonly server: DtlsServer,
    options: DtlsCoapSocketOptions = {},
  ) {
    super();
    this.clock = options.clock ?? new ScaledClock(1);
    this.lifetime_ms = options.exchangeLifetime_ms ?? 247_000;
    this.maxEntries = options.maxDedupEntries ?? 20_000;
    this.intercept = options.intercept;
    server.on('message', this.onMessage);
  }

  private prune(): void {
    const now = this.clock.now();
    for (const [key, e] of this.dedup) {
      if (this.dedup.size <= this.maxEntries && now - e.at_ms < this.lifetime_ms) break; // oldest first
      this.dedup.delete(key);
    }
  }

  private incoming(data: Buffer, rinfo: RemoteInfo, session: DtlsSession): void {
    if (this.closed) return;
    const h = coapHeader(data);
    if (h && (h.type === TYPE_CON || h.type === TYPE_NON) && h.code !== 0) {
      this.prune();
      const key = `${session.serial}/${h.messageId}`;
      const seen = this.dedup.get(key);
      if (seen) {
        if (h.type === TYPE_CON && seen.reply !== null) {
          this.counters.duplicatesAnswered++;
          session.send(seen.reply);
        } else {
          this.counters.duplicatesDropped++;
        }
        return;
      }
      const entry: DedupEntry = { at_ms: this.clock.now(), reply: null };
      this.dedup.set(key, entry);
      const answer = h.type === TYPE_CON && this.intercept ? this.intercept(data, session, rinfo) : null;
      if (answer !== null) {
        entry.reply = ownedCopy(answer);
        session.send(answer);
        return;
      }
    }
    this.emit('message', data, { address: rinfo.address, family: rinfo.family, port: rinfo.port, size: data.length });
  }

  /** dgram-style send: `(buf, offset, length, port, address, cb)` or `(buf, port, address, cb)`. */
  send(buf: Buffer, ...args: unknown[]): void {
    const { data, port, address, cb } = parseSendArgs(buf, args);
    const session = typeof port === 'number' && typeof address === 'string' ? this.server.getSession(address, port) : undefined;
    if (!session || this.closed) {
      // Like UDP towards a peer that is gone: the datagram is lost, not an error.
      this.counters.sendsWithoutSession++;
      if (cb) process.nextTick(cb, null, 0);
      return;
    }
    const h = coapHeader(data);
    if (h && (h.type === TYPE_ACK || h.type === TYPE_RST)) {
      const entry = this.dedup.get(`${session.serial}/${h.messageId}`);
      if (entry && entry.reply === null) entry.reply = ownedCopy(data);
    }
    session.send(data);
    if (cb) process.nextTick(cb, null, data.length);
  }

  address(): AddressInfo {
    return this.server.address();
  }

  /** Detach from the DTLS server (which keeps running; close it separately). */
  close(cb?: () => void): void {
    if (!this.closed) {
      this.closed = true;
      this.server.off('message', this.onMessage);
      this.dedup.clear();
      this.emit('close');
    }
    if (cb) process.nextTick(cb);
  }
}
