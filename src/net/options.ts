/**
 * CoAP option numbers and value codecs used by the request layer: unsigned integers (RFC 7252
 * §3.2), Block1/Block2 (RFC 7959 §2.2), Observe (RFC 7641), Uri-Path splitting. Option values
 * are Buffers exactly as on the wire.
 */
import { NetError } from './errors.js';

export const OptionNumber = {
  IfMatch: 1,
  UriHost: 3,
  ETag: 4,
  IfNoneMatch: 5,
  Observe: 6,
  UriPort: 7,
  LocationPath: 8,
  UriPath: 11,
  ContentFormat: 12,
  MaxAge: 14,
  UriQuery: 15,
  Accept: 17,
  LocationQuery: 20,
  Block2: 23,
  Block1: 27,
  Size2: 28,
  Size1: 60,
} as const;

export interface CoapOption {
  number: number;
  value: Buffer;
}

/** Largest block size RFC 7959 allows (SZX 6); SZX 7 is reserved (BERT over TCP only). */
export const MAX_BLOCK_SIZE_BYTES = 1024;
export const MIN_BLOCK_SIZE_BYTES = 16;

/** Minimal big-endian encoding of an unsigned integer (0 is the empty value). */
export function encodeUint(value: number): Buffer {
  if (!(Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff)) {
    throw new NetError('BAD_REQUEST', `option value ${value} must be an integer in [0, 2^32)`);
  }
  if (value === 0) return Buffer.alloc(0);
  const bytes = value < 0x100 ? 1 : value < 0x1_0000 ? 2 : value < 0x100_0000 ? 3 : 4;
  const out = Buffer.alloc(bytes);
  out.writeUIntBE(value, 0, bytes);
  return out;
}

/** Decode an unsigned integer option (up to 4 bytes); null when longer. */
export function decodeUint(value: Buffer): number | null {
  if (value.length > 4) return null;
  if (value.length === 0) return 0;
  return value.readUIntBE(0, value.length);
}

export interface BlockValue {
  /** Block number (NUM), up to 2^20 − 1. */
  num: number;
  /** M: more blocks follow (Block2 in a response) / more to come (Block1). */
  more: boolean;
  /** Block size: 2^(SZX + 4) bytes, 16..1024. */
  size_bytes: number;
}

/** SZX for a block size; throws unless it is a power of two in 16..1024. */
export function blockSzx(size_bytes: number): number {
  const szx = Math.log2(size_bytes) - 4;
  if (!(Number.isInteger(szx) && szx >= 0 && szx <= 6)) {
    throw new NetError('BAD_REQUEST', `block size ${size_bytes} must be a power of two in ${MIN_BLOCK_SIZE_BYTES}..${MAX_BLOCK_SIZE_BYTES}`);
  }
  return szx;
}

export const MAX_BLOCK_NUM = 0xf_ffff;

export function encodeBlock(block: BlockValue): Buffer {
  if (!(Number.isInteger(block.num) && block.num >= 0 && block.num <= MAX_BLOCK_NUM)) {
    throw new NetError('BAD_REQUEST', `block number ${block.num} must be in [0, ${MAX_BLOCK_NUM}]`);
  }
  return encodeUint(block.num * 16 + (block.more ? 8 : 0) + blockSzx(block.size_bytes));
}

/** Decode a Block1/Block2 value; null when malformed (longer than 3 bytes or SZX 7). */
export function decodeBlock(value: Buffer): BlockValue | null {
  if (value.length > 3) return null;
  const raw = decodeUint(value);
  if (raw === null) return null;
  const szx = raw & 7;
  if (szx === 7) return null;
  return { num: Math.floor(raw / 16), more: (raw & 8) !== 0, size_bytes: 2 ** (szx + 4) };
}

/** First option with this number, or undefined. */
export function findOption(options: readonly CoapOption[], number: number): CoapOption | undefined {
  return options.find((o) => o.number === number);
}

export function uintOption(options: readonly CoapOption[], number: number): number | null {
  const o = findOption(options, number);
  return o ? decodeUint(o.value) : null;
}

/** "/a/b" or "a/b" → Uri-Path options (empty segments dropped, as CoAP has no empty path segment but the root). */
export function uriPathOptions(path: string): CoapOption[] {
  const [pathPart = ''] = path.split('?', 1);
  return pathPart
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => ({ number: OptionNumber.UriPath, value: Buffer.from(decodeURIComponent(s), 'utf8') }));
}

/** "a=1&b" → Uri-Query options (from the part after '?', if any). */
export function uriQueryOptions(path: string): CoapOption[] {
  const q = path.indexOf('?');
  if (q < 0) return [];
  return path
    .slice(q + 1)
    .split('&')
    .filter((s) => s.length > 0)
    .map((s) => ({ number: OptionNumber.UriQuery, value: Buffer.from(decodeURIComponent(s), 'utf8') }));
}
