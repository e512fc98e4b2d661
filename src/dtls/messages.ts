/**
 * Handshake message bodies the PSK server reads and writes: ClientHello and ClientKeyExchange in,
 * HelloVerifyRequest, ServerHello, ServerKeyExchange (identity hint), ServerHelloDone and
 * Finished out (RFC 5246 §7.4, RFC 6347 §4.2.1, RFC 4279 §2). Parsers throw DecodeError.
 */
import { DTLS_1_0, DTLS_1_2 } from './constants.js';
import { DecodeError } from './errors.js';
import { Reader } from './reader.js';

export interface Extension {
  type: number;
  data: Buffer;
}

export interface ClientHello {
  clientVersion: number;
  random: Buffer;
  sessionId: Buffer;
  cookie: Buffer;
  cipherSuites: number[];
  compressionMethods: Buffer;
  extensions: Extension[];
}

/** Upper bound on extensions read from one ClientHello. */
const MAX_EXTENSIONS = 64;

export function parseClientHello(body: Buffer): ClientHello {
  const r = new Reader(body);
  const clientVersion = r.u16('client_version');
  const random = r.bytes(32, 'random');
  const sessionId = r.vec8('session_id');
  if (sessionId.length > 32) throw new DecodeError('session_id longer than 32 bytes');
  const cookie = r.vec8('cookie');
  const suites = r.vec16('cipher_suites');
  if (suites.length === 0 || suites.length % 2 !== 0) throw new DecodeError('cipher_suites length must be even and non-zero');
  const cipherSuites: number[] = [];
  for (let i = 0; i < suites.length; i += 2) cipherSuites.push(suites.readUInt16BE(i));
  const compressionMethods = r.vec8('compression_methods');
  if (compressionMethods.length === 0) throw new DecodeError('no compression methods');
  const extensions: Extension[] = [];
  if (r.remaining > 0) {
    const ext = new Reader(r.vec16('extensions'));
    while (ext.remaining > 0) {
      if (extensions.length >= MAX_EXTENSIONS) throw new DecodeError(`more than ${MAX_EXTENSIONS} extensions`);
      const type = ext.u16('extension type');
      extensions.push({ type, data: ext.vec16('extension data') });
    }
  }
  r.expectEnd('ClientHello');
  return { clientVersion, random, sessionId, cookie, cipherSuites, compressionMethods, extensions };
}

/**
 * The ClientHello fields a cookie binds (RFC 6347 §4.2.1: the client must repeat version, random,
 * session_id, cipher_suites and compression methods). Extensions are left out on purpose.
 */
export function cookieInput(hello: ClientHello): Buffer {
  const suites = Buffer.allocUnsafe(hello.cipherSuites.length * 2);
  hello.cipherSuites.forEach((s, i) => suites.writeUInt16BE(s, i * 2));
  const v = Buffer.allocUnsafe(2);
  v.writeUInt16BE(hello.clientVersion);
  return Buffer.concat([v, hello.random, Buffer.of(hello.sessionId.length), hello.sessionId, suites, hello.compressionMethods]);
}

export function encodeHelloVerifyRequest(cookie: Buffer): Buffer {
  const b = Buffer.allocUnsafe(3 + cookie.length);
  b.writeUInt16BE(DTLS_1_0, 0); // always DTLS 1.0 here, whatever is negotiated later (§4.2.1)
  b.writeUInt8(cookie.length, 2);
  cookie.copy(b, 3);
  return b;
}

export function encodeServerHello(random: Buffer, cipherSuite: number, extensions: readonly Extension[]): Buffer {
  const head = Buffer.allocUnsafe(2 + 32 + 1 + 2 + 1);
  head.writeUInt16BE(DTLS_1_2, 0);
  random.copy(head, 2);
  head.writeUInt8(0, 34); // empty session_id: no resumption
  head.writeUInt16BE(cipherSuite, 35);
  head.writeUInt8(0, 37); // null compression
  if (extensions.length === 0) return head;
  const parts: Buffer[] = [];
  for (const e of extensions) {
    const h = Buffer.allocUnsafe(4);
    h.writeUInt16BE(e.type, 0);
    h.writeUInt16BE(e.data.length, 2);
    parts.push(h, e.data);
  }
  const ext = Buffer.concat(parts);
  const len = Buffer.allocUnsafe(2);
  len.writeUInt16BE(ext.length);
  return Buffer.concat([head, len, ext]);
}

/** PSK ServerKeyExchange: just the identity hint (RFC 4279 §2). */
export function encodeServerKeyExchangePsk(hint: Buffer): Buffer {
  const b = Buffer.allocUnsafe(2 + hint.length);
  b.writeUInt16BE(hint.length, 0);
  hint.copy(b, 2);
  return b;
}

/** Longest PSK identity accepted (RFC 4279 allows 2^16-1; real identities are short). */
export const MAX_PSK_IDENTITY_BYTES = 256;

/** PSK ClientKeyExchange: the identity (RFC 4279 §2). */
export function parseClientKeyExchangePsk(body: Buffer): Buffer {
  const r = new Reader(body);
  const identity = r.vec16('psk_identity');
  r.expectEnd('ClientKeyExchange');
  if (identity.length > MAX_PSK_IDENTITY_BYTES) throw new DecodeError(`PSK identity longer than ${MAX_PSK_IDENTITY_BYTES} bytes`);
  return identity;
}
