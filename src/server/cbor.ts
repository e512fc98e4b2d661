/**
 * CBOR for the update protocol (cbor-x, plain RFC 8949: no record extensions, no typed-array
 * tags). Manifests are integer-keyed maps (FORMATS.md); reports are text-keyed maps. Decoding
 * refuses trailing bytes and anything that is not one well-formed item.
 */
import { Decoder, Encoder } from 'cbor-x';

const encoder = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: false });

export function encodeCbor(value: unknown): Buffer {
  return Buffer.from(encoder.encode(value));
}

export type CborDecoded = { ok: true; value: unknown } | { ok: false; error: string };

/** Decode exactly one CBOR item (maps come back as Map). */
export function decodeCbor(bytes: Uint8Array): CborDecoded {
  if (bytes.length === 0) return { ok: false, error: 'empty payload: expected a CBOR map' };
  try {
    return { ok: true, value: decoder.decode(bytes) as unknown };
  } catch (e) {
    return { ok: false, error: `malformed CBOR: ${e instanceof Error ? e.message : String(e)}` };
  }
}
