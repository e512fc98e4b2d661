/**
 * Block2 (RFC 7959) for artifacts, done here rather than by node-coap: node-coap's own blockwise
 * replaces the ETag with a 2-byte XOR of the payload and answers a block past the end with an
 * empty 4.02. A request may ask for any block number at any size 16..1024 (SZX 0..6).
 */

export interface Block2 {
  num: number;
  /** Block size in bytes: 16 << szx. */
  size_bytes: number;
  szx: number;
}

export type Block2Parse = { ok: true; block: Block2 | null } | { ok: false; error: string };

/** Parse a request's Block2 option value (null: no option). */
export function parseBlock2(value: Buffer | null): Block2Parse {
  if (value === null) return { ok: true, block: null };
  if (value.length > 3) return { ok: false, error: `Block2 option of ${value.length} bytes; at most 3` };
  let v = 0;
  for (const b of value) v = v * 256 + b;
  const szx = v & 7;
  if (szx === 7) return { ok: false, error: 'Block2 SZX 7 (BERT) is not supported; use a block size of 16..1024' };
  return { ok: true, block: { num: v >>> 4, szx, size_bytes: 16 << szx } };
}

/** Encode a Block2 option value in as few bytes as it needs. */
export function encodeBlock2(num: number, more: boolean, szx: number): Buffer {
  const v = num * 16 + (more ? 8 : 0) + szx;
  if (v < 0x100) return Buffer.of(v);
  if (v < 0x10000) return Buffer.of(v >>> 8, v & 0xff);
  return Buffer.of(v >>> 16, (v >>> 8) & 0xff, v & 0xff);
}

/** The largest block number a 3-byte Block2 option can carry. */
export const MAX_BLOCK_NUM = 0xfffff;

/** SZX for a block size (16..1024, a power of two). */
export function szxOf(size_bytes: number): number {
  const szx = Math.log2(size_bytes) - 4;
  if (!Number.isInteger(szx) || szx < 0 || szx > 6) throw new Error(`assertion failed: block size ${size_bytes}`);
  return szx;
}
