/**
 * CoAP messages (RFC 7252 §3) as plain values, with a small codec of our own (it was node-coap's
 * `coap-packet`, which test/net/codec.test.ts still checks it against): every field is given, no
 * Math.random defaults. Malformed input decodes to null instead of throwing.
 */
import { assert } from '../errors.js';
import { NetError } from './errors.js';
import type { CoapOption } from './options.js';

export type CoapType = 'CON' | 'NON' | 'ACK' | 'RST';

export interface CoapMessage {
  type: CoapType;
  /** "c.dd": "0.00" empty, "0.01" GET … "2.05" Content, "4.04" Not Found. */
  code: string;
  messageId: number;
  token: Buffer;
  /** In wire order (sorted by number; repeated options keep their order). */
  options: CoapOption[];
  payload: Buffer;
}

export const EMPTY_CODE = '0.00';

/** Largest CoAP datagram the layer sends or expects (RFC 7252 §4.6: 1152 bytes is the usual cap; a 1024-byte block plus options fits). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1280;

/** "c.dd" for each code byte (3 bits class, 5 bits detail): decoding allocates no code strings. */
const CODE_STRINGS: readonly string[] = Array.from({ length: 256 }, (_, b) => `${b >> 5}.${String(b & 0x1f).padStart(2, '0')}`);
const CODE_BYTES = new Map<string, number>(CODE_STRINGS.map((c, b) => [c, b]));
const TYPE_BITS: Record<CoapType, number> = { CON: 0, NON: 1, ACK: 2, RST: 3 };
const TYPES: readonly CoapType[] = ['CON', 'NON', 'ACK', 'RST'];
/** Option deltas and lengths are at most 13 + 255 + 65535 (RFC 7252 §3.1, 2-byte extension). */
const MAX_OPTION_EXT = 269 + 0xffff;
const EMPTY: Buffer = Buffer.alloc(0);

function codeByte(code: string): number {
  const b = CODE_BYTES.get(code);
  if (b !== undefined) return b;
  // lenient like coap-packet: "2.5" for "2.05"
  const [c = '', d = ''] = code.split('.');
  const cls = Number(c);
  const detail = Number(d);
  if (!(Number.isInteger(cls) && cls >= 0 && cls <= 7 && Number.isInteger(detail) && detail >= 0 && detail <= 31)) {
    throw new NetError('BAD_REQUEST', `cannot encode CoAP message: code ${JSON.stringify(code)} is not "c.dd"`);
  }
  return (cls << 5) | detail;
}

/** Bytes an option delta or length takes in the extended fields (0, 1 or 2). */
function extBytes(n: number): number {
  return n < 13 ? 0 : n < 269 ? 1 : 2;
}

/**
 * Encode a message (RFC 7252 §3). Our own encoder rather than coap-packet's generate(): this runs
 * once per block request, and the generic codec (option name tables, a sort, intermediate
 * arrays) cost ~5 % of a DTLS download's CPU. test/net/codec.test.ts checks it against coap-packet.
 * Options are written sorted by number (stable: repeated options keep their order).
 */
export function encodeMessage(message: CoapMessage, maxLength_bytes = DEFAULT_MAX_MESSAGE_BYTES): Buffer {
  if (!(Number.isInteger(message.messageId) && message.messageId >= 0 && message.messageId <= 0xffff)) {
    throw new NetError('BAD_REQUEST', `message ID ${message.messageId} must be in [0, 65535]`);
  }
  if (message.token.length > 8) throw new NetError('BAD_REQUEST', `token of ${message.token.length} bytes (at most 8)`);
  const code = codeByte(message.code);
  let options = message.options;
  for (let i = 1; i < options.length; i++) {
    if ((options[i] as CoapOption).number < (options[i - 1] as CoapOption).number) {
      options = [...options].sort((a, b) => a.number - b.number); // Array.prototype.sort is stable
      break;
    }
  }
  let length = 4 + message.token.length;
  let prev = 0;
  for (const o of options) {
    const delta = o.number - prev;
    if (!(Number.isInteger(o.number) && o.number >= 0 && delta <= MAX_OPTION_EXT) || o.value.length > MAX_OPTION_EXT) {
      throw new NetError('BAD_REQUEST', `cannot encode CoAP message: option ${o.number} (${o.value.length} bytes) out of range`);
    }
    length += 1 + extBytes(delta) + extBytes(o.value.length) + o.value.length;
    prev = o.number;
  }
  if (message.payload.length > 0) length += 1 + message.payload.length;
  if (length > maxLength_bytes) {
    throw new NetError('BAD_REQUEST', `cannot encode CoAP message: ${length} bytes exceed the maximum of ${maxLength_bytes}`);
  }
  const out = Buffer.allocUnsafe(length);
  out[0] = 0x40 | (TYPE_BITS[message.type] << 4) | message.token.length;
  out[1] = code;
  out[2] = message.messageId >> 8;
  out[3] = message.messageId & 0xff;
  let at = 4 + message.token.copy(out, 4);
  prev = 0;
  for (const o of options) {
    const delta = o.number - prev;
    prev = o.number;
    const len = o.value.length;
    const head = at++;
    const dn = writeExt(out, at, delta);
    at += extBytes(delta);
    const ln = writeExt(out, at, len);
    at += extBytes(len);
    out[head] = (dn << 4) | ln;
    at += o.value.copy(out, at);
  }
  if (message.payload.length > 0) {
    out[at++] = 0xff;
    at += message.payload.copy(out, at);
  }
  assert(at === length, `CoAP encoder wrote ${at} of ${length} bytes`);
  return out;
}

/** Write the extended field of an option delta or length at `at`; return its nibble. */
function writeExt(out: Buffer, at: number, n: number): number {
  if (n < 13) return n;
  if (n < 269) {
    out[at] = n - 13;
    return 13;
  }
  out.writeUInt16BE(n - 269, at);
  return 14;
}

/**
 * Decode a datagram; null when it is not a well-formed CoAP message (RFC 7252 §3: version 1,
 * token ≤ 8 bytes, no reserved nibble 15 in an option header, a payload marker followed by a
 * payload). Our own parser (coap-packet's parse() cost a few % of a download's CPU): token,
 * option values and payload are views into the datagram, not copies.
 */
export function decodeMessage(datagram: Buffer): CoapMessage | null {
  const n = datagram.length;
  if (n < 4) return null;
  const b0 = datagram[0] as number;
  if (b0 >> 6 !== 1) return null;
  const tkl = b0 & 0x0f;
  if (tkl > 8 || 4 + tkl > n) return null;
  const code = CODE_STRINGS[datagram[1] as number] as string;
  const messageId = ((datagram[2] as number) << 8) | (datagram[3] as number);
  const token = datagram.subarray(4, 4 + tkl);
  const options: CoapOption[] = [];
  let at = 4 + tkl;
  let number = 0;
  let payload: Buffer = EMPTY;
  // each pass consumes ≥ 1 byte: bounded by the datagram's length
  while (at < n) {
    const head = datagram[at++] as number;
    if (head === 0xff) {
      if (at >= n) return null; // a payload marker with no payload is a format error
      payload = datagram.subarray(at);
      break;
    }
    let delta = head >> 4;
    let len = head & 0x0f;
    if (delta === 15 || len === 15) return null;
    if (delta === 13) {
      if (at + 1 > n) return null;
      delta = 13 + (datagram[at++] as number);
    } else if (delta === 14) {
      if (at + 2 > n) return null;
      delta = 269 + datagram.readUInt16BE(at);
      at += 2;
    }
    if (len === 13) {
      if (at + 1 > n) return null;
      len = 13 + (datagram[at++] as number);
    } else if (len === 14) {
      if (at + 2 > n) return null;
      len = 269 + datagram.readUInt16BE(at);
      at += 2;
    }
    if (at + len > n) return null;
    number += delta;
    options.push({ number, value: datagram.subarray(at, at + len) });
    at += len;
  }
  return { type: TYPES[(b0 >> 4) & 3] as CoapType, code, messageId, token, options, payload };
}

/** The header of a datagram that failed to decode, when at least that much is readable (to RST a malformed CON). */
export function peekHeader(datagram: Buffer): { type: CoapType; messageId: number } | null {
  if (datagram.length < 4 || datagram[0] === undefined || datagram[0] >> 6 !== 1) return null;
  const t = (datagram[0] >> 4) & 3;
  const type: CoapType = t === 0 ? 'CON' : t === 1 ? 'NON' : t === 2 ? 'ACK' : 'RST';
  return { type, messageId: datagram.readUInt16BE(2) };
}

/** "2.05" → class 2; "0.00" → 0. */
export function codeClass(code: string): number {
  return Number.parseInt(code.split('.', 1)[0] ?? '0', 10);
}

export function isRequestCode(code: string): boolean {
  return codeClass(code) === 0 && code !== EMPTY_CODE;
}

export function isResponseCode(code: string): boolean {
  const c = codeClass(code);
  return c >= 2 && c <= 5;
}
