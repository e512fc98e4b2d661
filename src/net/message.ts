/**
 * CoAP messages (RFC 7252 §3) as plain values, encoded and decoded with node-coap's packet codec
 * (`coap-packet`). The codec's own defaults (a Math.random message ID) are never used: every
 * field is given. Malformed input decodes to null instead of throwing.
 */
import { generate, parse } from 'coap-packet';
import { NetError } from './errors.js';
import { OptionNumber } from './options.js';
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

const NAME_TO_NUMBER = new Map<string, number>([
  ['If-Match', OptionNumber.IfMatch],
  ['Uri-Host', OptionNumber.UriHost],
  ['ETag', OptionNumber.ETag],
  ['If-None-Match', OptionNumber.IfNoneMatch],
  ['Observe', OptionNumber.Observe],
  ['Uri-Port', OptionNumber.UriPort],
  ['Location-Path', OptionNumber.LocationPath],
  ['OSCORE', 9],
  ['Uri-Path', OptionNumber.UriPath],
  ['Content-Format', OptionNumber.ContentFormat],
  ['Max-Age', OptionNumber.MaxAge],
  ['Uri-Query', OptionNumber.UriQuery],
  ['Hop-Limit', 16],
  ['Accept', OptionNumber.Accept],
  ['Q-Block1', 19],
  ['Location-Query', OptionNumber.LocationQuery],
  ['Block2', OptionNumber.Block2],
  ['Block1', OptionNumber.Block1],
  ['Size2', OptionNumber.Size2],
  ['Q-Block2', 31],
  ['Proxy-Uri', 35],
  ['Proxy-Scheme', 39],
  ['Size1', OptionNumber.Size1],
  ['No-Response', 258],
  ['OCF-Accept-Content-Format-Version', 2049],
  ['OCF-Content-Format-Version', 2053],
]);

function optionNumber(name: string | number): number {
  if (typeof name === 'number') return name;
  return NAME_TO_NUMBER.get(name) ?? Number.parseInt(name, 10);
}

export function encodeMessage(message: CoapMessage, maxLength_bytes = DEFAULT_MAX_MESSAGE_BYTES): Buffer {
  if (!(Number.isInteger(message.messageId) && message.messageId >= 0 && message.messageId <= 0xffff)) {
    throw new NetError('BAD_REQUEST', `message ID ${message.messageId} must be in [0, 65535]`);
  }
  if (message.token.length > 8) throw new NetError('BAD_REQUEST', `token of ${message.token.length} bytes (at most 8)`);
  try {
    return generate(
      {
        code: message.code,
        messageId: message.messageId,
        token: message.token,
        // the codec sorts this array in place: give it a copy
        options: message.options.map((o) => ({ name: o.number, value: o.value })),
        payload: message.payload,
        confirmable: message.type === 'CON',
        ack: message.type === 'ACK',
        reset: message.type === 'RST',
      },
      maxLength_bytes,
    );
  } catch (err) {
    throw new NetError('BAD_REQUEST', `cannot encode CoAP message: ${(err as Error).message}`);
  }
}

/** Decode a datagram; null when it is not a well-formed CoAP message. */
export function decodeMessage(datagram: Buffer): CoapMessage | null {
  if (datagram.length < 4) return null;
  try {
    const p = parse(datagram);
    const type: CoapType = p.confirmable ? 'CON' : p.ack ? 'ACK' : p.reset ? 'RST' : 'NON';
    if (p.token.length > 8) return null;
    const options: CoapOption[] = [];
    for (const o of p.options) {
      const number = optionNumber(o.name);
      if (!Number.isInteger(number)) return null;
      options.push({ number, value: o.value });
    }
    return { type, code: p.code, messageId: p.messageId, token: p.token, options, payload: p.payload };
  } catch {
    return null;
  }
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
