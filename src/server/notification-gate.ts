/**
 * A last check on every datagram the CoAP servers send: an Observe notification (a confirmable
 * 2.xx response carrying an Observe option) leaves only while its observation is registered and,
 * over DTLS, only into the DTLS session the observation was made on.
 *
 * node-coap retransmits a confirmable notification on its own timer (RetrySend) and keeps doing
 * so after the observation has ended (deregistered, dropped by a cap, its DTLS session closed),
 * addressing the peer by IP and port only. A device that reconnects from the same port would
 * then receive, in its new session, notifications of an observation it never made there. The
 * gate sits on the socket's `send`, where every (re)transmission passes, so nothing can bypass it.
 */

import { parseSendArgs } from '../dtls/coap-socket.js';

/** The token of an Observe notification (CON, 2.xx, Observe option present), else null. */
export function notificationToken(b: Buffer): Buffer | null {
  if (b.length < 4) return null;
  const first = b[0] ?? 0;
  if (first >>> 6 !== 1 || ((first >>> 4) & 3) !== 0) return null;
  if ((b[1] ?? 0) >>> 5 !== 2) return null;
  const tkl = first & 15;
  if (tkl > 8 || b.length < 4 + tkl) return null;
  let i = 4 + tkl;
  let num = 0;
  while (i < b.length) {
    const byte = b[i++] ?? 0;
    if (byte === 0xff) return null;
    let delta = byte >>> 4;
    let length = byte & 15;
    if (delta === 15 || length === 15) return null;
    if (delta === 13) delta = 13 + (b[i++] ?? 0);
    else if (delta === 14) {
      delta = 269 + (((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
      i += 2;
    }
    if (length === 13) length = 13 + (b[i++] ?? 0);
    else if (length === 14) {
      length = 269 + (((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
      i += 2;
    }
    num += delta;
    if (num === 6) return b.subarray(4, 4 + tkl);
    if (num > 6) return null;
    i += length;
  }
  return null;
}

interface Sendable {
  send(buf: Buffer, ...args: unknown[]): unknown;
}

/**
 * Wrap `socket.send` (dgram style: `(buf, offset, length, port, address, cb)` or
 * `(buf, port, address, cb)`) so that a datagram `allow` refuses is dropped, as a lost datagram
 * would be: the callback still reports success. A send on a socket already closed is dropped the
 * same way instead of throwing into node-coap. The socket stays the same object (node-coap
 * answers duplicates from its reply cache only on a real dgram.Socket).
 */
export function gateSends(socket: object, allow: (data: Buffer, port: number, address: string) => boolean, onDropped: () => void): void {
  const target = socket as Sendable;
  const original = target.send.bind(target);
  target.send = (buf: Buffer, ...args: unknown[]): unknown => {
    const { data, port, address, cb } = parseSendArgs(buf, args);
    if (typeof port === 'number' && typeof address === 'string' && !allow(data, port, address)) {
      onDropped();
      if (cb) process.nextTick(cb, null, 0);
      return undefined;
    }
    try {
      return original(buf, ...args);
    } catch {
      // The socket is closed (the server is shutting down under a request still in flight):
      // like a datagram lost on the way.
      return undefined;
    }
  };
}
