/**
 * TLV areas: `{u16 magic; u16 total_len}` then `{u16 type; u16 len; data}` entries. Decoding applies
 * the bounds checks of bootutil's tlv.c (an entry may not run past its own area), so a crafted
 * length can never make us read outside the image.
 */
import { ImageError } from './errors.js';
import { TLV_ENTRY_HEADER_SIZE_BYTES, TLV_INFO_SIZE_BYTES, tlvName } from './format.js';

export interface TlvEntry {
  type: number;
  /** In the protected area (covered by the image hash and signature). */
  protected: boolean;
  /** Absolute offset of the value in the image. */
  offset: number;
  /** View into the parsed buffer (not a copy). */
  value: Uint8Array;
}

export interface TlvInput {
  type: number;
  value: Uint8Array;
}

const U16_MAX = 0xffff;

/** One TLV area with its info header; imgtool writes nothing at all for an area without entries. */
export function encodeTlvArea(magic: number, entries: readonly TlvInput[]): Uint8Array {
  if (entries.length === 0) return new Uint8Array(0);
  let total_bytes = TLV_INFO_SIZE_BYTES;
  for (const e of entries) {
    if (e.value.length > U16_MAX) {
      throw new ImageError('BAD_OPTION', `TLV ${tlvName(e.type)} is ${e.value.length} bytes, more than a TLV can hold (${U16_MAX})`);
    }
    total_bytes += TLV_ENTRY_HEADER_SIZE_BYTES + e.value.length;
  }
  if (total_bytes > U16_MAX) {
    throw new ImageError('BAD_OPTION', `TLV area would be ${total_bytes} bytes, more than its 16-bit length field allows`);
  }
  const out = new Uint8Array(total_bytes);
  const view = new DataView(out.buffer);
  view.setUint16(0, magic, true);
  view.setUint16(2, total_bytes, true);
  let off = TLV_INFO_SIZE_BYTES;
  for (const e of entries) {
    view.setUint16(off, e.type, true);
    view.setUint16(off + 2, e.value.length, true);
    out.set(e.value, off + TLV_ENTRY_HEADER_SIZE_BYTES);
    off += TLV_ENTRY_HEADER_SIZE_BYTES + e.value.length;
  }
  return out;
}

/** Read the info header `{magic, total_len}` at `offset`; the caller checks the magic. */
export function readTlvInfo(bytes: Uint8Array, offset: number): { magic: number; total_bytes: number } {
  if (offset + TLV_INFO_SIZE_BYTES > bytes.length) {
    throw new ImageError('TLV_OVERRUN', `TLV info header at offset ${offset} is past the end of the data (${bytes.length} bytes)`);
  }
  return {
    magic: bytes[offset]! | (bytes[offset + 1]! << 8),
    total_bytes: bytes[offset + 2]! | (bytes[offset + 3]! << 8),
  };
}

/** Decode the entries of the area spanning [areaStart, areaEnd), after its info header. */
export function decodeTlvEntries(bytes: Uint8Array, areaStart: number, areaEnd: number, isProtected: boolean): TlvEntry[] {
  const which = isProtected ? 'protected' : 'unprotected';
  if (areaEnd - areaStart < TLV_INFO_SIZE_BYTES) {
    throw new ImageError('TLV_OVERRUN', `${which} TLV area length ${areaEnd - areaStart} at offset ${areaStart} is shorter than its own 4-byte info header`);
  }
  if (areaEnd > bytes.length) {
    throw new ImageError('TLV_OVERRUN', `${which} TLV area at offset ${areaStart} claims ${areaEnd - areaStart} bytes, past the end of the data (${bytes.length} bytes)`);
  }
  const entries: TlvEntry[] = [];
  let off = areaStart + TLV_INFO_SIZE_BYTES;
  while (off < areaEnd) {
    if (TLV_ENTRY_HEADER_SIZE_BYTES > areaEnd - off) {
      throw new ImageError('TLV_OVERRUN', `${which} TLV entry header at offset ${off} runs past the area end ${areaEnd}`);
    }
    const type = bytes[off]! | (bytes[off + 1]! << 8);
    const len = bytes[off + 2]! | (bytes[off + 3]! << 8);
    const valueStart = off + TLV_ENTRY_HEADER_SIZE_BYTES;
    if (len > areaEnd - valueStart) {
      throw new ImageError('TLV_OVERRUN', `${which} TLV ${tlvName(type)} at offset ${off} has length ${len}, running past the area end ${areaEnd}`);
    }
    entries.push({ type, protected: isProtected, offset: valueStart, value: bytes.subarray(valueStart, valueStart + len) });
    off = valueStart + len;
  }
  return entries;
}
