/**
 * DTLS record layer framing (RFC 6347 §4.1): split a datagram into records and write record
 * headers. Protection (AEAD) lives in cipher-suites.ts; epochs and replay state in the session.
 * A datagram may carry several records; a malformed one ends parsing, because its length field
 * can no longer be trusted to find the next record (§4.1.2.7: invalid records are discarded).
 */
import { MAX_RECORD_FRAGMENT_BYTES, MAX_RECORD_SEQ, RECORD_HEADER_BYTES } from './constants.js';

export interface DtlsRecord {
  type: number;
  version: number;
  epoch: number;
  /** 48-bit sequence number (exact in a double). */
  seq: number;
  /** The record's fragment, a view into the datagram. */
  fragment: Buffer;
}

/** Upper bound on records taken from one datagram (a 64 KiB datagram of empty records is 5041). */
export const MAX_RECORDS_PER_DATAGRAM = 64;

const KNOWN_TYPES = new Set([20, 21, 22, 23]);

/** Records of a datagram, in order; stops at the first malformed one. Never throws. */
export function parseRecords(datagram: Buffer): DtlsRecord[] {
  const records: DtlsRecord[] = [];
  let pos = 0;
  while (datagram.length - pos >= RECORD_HEADER_BYTES && records.length < MAX_RECORDS_PER_DATAGRAM) {
    const type = datagram.readUInt8(pos);
    const version = datagram.readUInt16BE(pos + 1);
    const epoch = datagram.readUInt16BE(pos + 3);
    const seq = datagram.readUIntBE(pos + 5, 6);
    const length = datagram.readUInt16BE(pos + 11);
    // Only DTLS versions (0xfeXX) are records at all; anything else is garbage.
    if (!KNOWN_TYPES.has(type) || version >>> 8 !== 0xfe || length > MAX_RECORD_FRAGMENT_BYTES) break;
    const start = pos + RECORD_HEADER_BYTES;
    if (start + length > datagram.length) break;
    records.push({ type, version, epoch, seq, fragment: datagram.subarray(start, start + length) });
    pos = start + length;
  }
  return records;
}

/** The 13-byte record header. */
export function encodeRecordHeader(type: number, version: number, epoch: number, seq: number, length_bytes: number): Buffer {
  if (!(seq >= 0 && seq <= MAX_RECORD_SEQ)) throw new Error(`assertion failed: record seq ${seq} out of range`);
  const h = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  h.writeUInt8(type, 0);
  h.writeUInt16BE(version, 1);
  h.writeUInt16BE(epoch, 3);
  h.writeUIntBE(seq, 5, 6);
  h.writeUInt16BE(length_bytes, 11);
  return h;
}

/** A whole record: header and fragment. */
export function encodeRecord(type: number, version: number, epoch: number, seq: number, fragment: Buffer): Buffer {
  return Buffer.concat([encodeRecordHeader(type, version, epoch, seq, fragment.length), fragment]);
}

/** Pack records into as few datagrams as fit in `mtu_bytes` (a record larger than that goes alone). */
export function packDatagrams(records: readonly Buffer[], mtu_bytes: number): Buffer[] {
  const datagrams: Buffer[] = [];
  let current: Buffer[] = [];
  let size = 0;
  for (const r of records) {
    if (current.length > 0 && size + r.length > mtu_bytes) {
      datagrams.push(Buffer.concat(current));
      current = [];
      size = 0;
    }
    current.push(r);
    size += r.length;
  }
  if (current.length > 0) datagrams.push(Buffer.concat(current));
  return datagrams;
}
