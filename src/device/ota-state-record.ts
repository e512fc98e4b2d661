/**
 * The OTA state record: what the agent keeps in the `ota-state` partition (FORMATS.md "OTA state
 * on flash", an extension), its bounds, and its byte encoding. Every record holds the whole state
 * (not a patch), so the latest valid record alone is the state.
 *
 * Record framing (little-endian), one flash write, padded with the erase value to the write size:
 *
 *   off 0   magic    2 bytes  0x4f 0x53 ("OS"; neither byte is 0x00 or 0xff, so a record's first
 *                             write block always reads as programmed)
 *   off 2   format   u8       1
 *   off 3   reserved u8       0
 *   off 4   seq      u32      1, 2, 3, ... (the newest valid record wins)
 *   off 8   length   u16      payload bytes, 1..MAX_PAYLOAD_BYTES
 *   off 10  payload  CBOR     (below)
 *   then    crc      u32      CRC-32 (IEEE 802.3, as zlib) of bytes [0, 10 + length)
 *
 * Payload: one CBOR map (RFC 8949, plain: no cbor-x records, no tags) with small integer keys;
 * an absent key means null / empty:
 *   1 download   map {1 target version (text), 2 artifact SHA-256 (bytes 32), 3 ETag (bytes 0..8),
 *                     4 next block (uint), 5 block size (uint 16..1024), 6 artifact size (uint),
 *                     7 manifest sequence number (uint)}
 *   2 attempts   array of [version (text), attempts (uint)], oldest first, at most 8 entries
 *   3 highest manifest sequence number acted on (uint)
 *   4 last update map {1 target version, 2 version it updated from, 3 result (0 pending-test,
 *                     1 confirmed, 2 failed, 3 reverted, 4 testing, 5 self-test-failed),
 *                     4 reason (Golioth reason code 0..11), 5 reported to the server (bool)}
 *
 * `pending-test` is written before boot_set_pending; `testing` by the new image at the start of
 * its test boot. The old firmware finding `testing` knows its update was booted and reverted;
 * finding `pending-test` with no revert at this boot, it knows the swap never happened: either a
 * cut between the record and the trailer (slot1 still holds the image: nothing was attempted) or
 * the bootloader refused the image (slot1 erased or non-bootable: a failure). `self-test-failed`
 * is written by the test boot when the image itself failed (self-test verdict, rollback timer)
 * just before it reboots unconfirmed: a watchdog reset or a power cut leaves `testing` instead,
 * which the old firmware counts as one attempt and retries, while `self-test-failed` makes it give
 * the version up at once.
 */
import { Decoder, Encoder } from 'cbor-x';

export const RECORD_MAGIC_0 = 0x4f;
export const RECORD_MAGIC_1 = 0x53;
export const RECORD_FORMAT = 1;
export const RECORD_HEADER_BYTES = 10;
export const RECORD_CRC_BYTES = 4;
/** Upper bound of a payload; the bounds below keep every valid state under it (tested). */
export const MAX_PAYLOAD_BYTES = 640;
/** Upper bound of a record before padding. */
export const MAX_RECORD_BYTES = RECORD_HEADER_BYTES + MAX_PAYLOAD_BYTES + RECORD_CRC_BYTES;
export const MAX_VERSION_BYTES = 32;
export const MAX_ETAG_BYTES = 8;
export const SHA256_BYTES = 32;
/** Versions whose attempt count is remembered; the oldest entry is dropped beyond this. */
export const MAX_ATTEMPT_VERSIONS = 8;
export const MAX_ATTEMPTS_PER_VERSION = 0xffff;
export const MAX_SEQ = 0xffff_ffff;
export const MIN_BLOCK_SIZE_BYTES = 16;
export const MAX_BLOCK_SIZE_BYTES = 1024;

export type UpdateResult = 'pending-test' | 'confirmed' | 'failed' | 'reverted' | 'testing' | 'self-test-failed';
// the index is the on-flash code: append only
const RESULTS: readonly UpdateResult[] = ['pending-test', 'confirmed', 'failed', 'reverted', 'testing', 'self-test-failed'];

/** Where a download stands: enough to resume it after a power cut. */
export interface DownloadProgress {
  targetVersion: string;
  /** SHA-256 of the artifact, from the manifest (32 bytes). */
  sha256: Uint8Array;
  /** The server's ETag for the artifact (a new ETag restarts the download); null if none was sent. */
  etag: Uint8Array | null;
  /** The Block2 number to request next (everything before it is in slot1). */
  nextBlock: number;
  blockSize_bytes: number;
  size_bytes: number;
  /** Sequence number of the manifest that started the download. */
  manifestSeq: number;
}

export interface VersionAttempts {
  version: string;
  attempts: number;
}

/** The outcome of the last update, so a reverted firmware learns from flash what happened. */
export interface LastUpdate {
  targetVersion: string;
  fromVersion: string;
  result: UpdateResult;
  /** Golioth reason code (FORMATS.md), 0..11: e.g. 1 FIRMWARE_UPDATED_SUCCESSFULLY, 8 FIRMWARE_UPDATE_FAILED. */
  reason: number;
  /** Whether the outcome reached the server (false: report it after the next connect). */
  reported: boolean;
}

export interface OtaState {
  download: DownloadProgress | null;
  /** Attempts per target version, oldest first, at most MAX_ATTEMPT_VERSIONS. */
  attempts: readonly VersionAttempts[];
  /** Highest manifest sequence number acted on; null before the first. */
  highestSeq: number | null;
  lastUpdate: LastUpdate | null;
}

export const EMPTY_OTA_STATE: Readonly<OtaState> = Object.freeze({ download: null, attempts: Object.freeze([]), highestSeq: null, lastUpdate: null });

/** The state with `version`'s attempt count raised by one (a new version evicts the oldest entry). */
export function withAttempt(state: OtaState, version: string): OtaState {
  const current = state.attempts.find((a) => a.version === version)?.attempts ?? 0;
  const others = state.attempts.filter((a) => a.version !== version);
  const next = [...others, { version, attempts: Math.min(MAX_ATTEMPTS_PER_VERSION, current + 1) }];
  return { ...state, attempts: next.slice(Math.max(0, next.length - MAX_ATTEMPT_VERSIONS)) };
}

/** How often `version` was attempted (0 if never, or forgotten). */
export function attemptsOf(state: OtaState, version: string): number {
  return state.attempts.find((a) => a.version === version)?.attempts ?? 0;
}

export function otaStatesEqual(a: OtaState, b: OtaState): boolean {
  return stateToJson(a) === stateToJson(b);
}

/** A stable JSON view of a state (bytes as hex), for inspection output and comparisons. */
export function stateToJson(s: OtaState): string {
  return JSON.stringify(s, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
}

// --- validation -------------------------------------------------------------------------------

const utf8 = new TextEncoder();

function uint(v: number, max: number, what: string): void {
  if (!(Number.isInteger(v) && v >= 0 && v <= max)) throw new RangeError(`ota-state: ${what} must be a whole number 0..${max}, got ${v}`);
}

function version(v: string, what: string): void {
  const n = utf8.encode(v).length;
  if (n < 1 || n > MAX_VERSION_BYTES) throw new RangeError(`ota-state: ${what} must be 1..${MAX_VERSION_BYTES} bytes of UTF-8, got ${n}`);
}

/** Check every bound; throws RangeError naming the field (a programming error of the caller). */
export function checkOtaState(s: OtaState): void {
  const d = s.download;
  if (d) {
    version(d.targetVersion, 'download.targetVersion');
    if (d.sha256.length !== SHA256_BYTES) throw new RangeError(`ota-state: download.sha256 must be ${SHA256_BYTES} bytes, got ${d.sha256.length}`);
    if (d.etag && d.etag.length > MAX_ETAG_BYTES) throw new RangeError(`ota-state: download.etag must be 0..${MAX_ETAG_BYTES} bytes, got ${d.etag.length}`);
    uint(d.nextBlock, MAX_SEQ, 'download.nextBlock');
    uint(d.blockSize_bytes, MAX_BLOCK_SIZE_BYTES, 'download.blockSize_bytes');
    if (d.blockSize_bytes < MIN_BLOCK_SIZE_BYTES) throw new RangeError(`ota-state: download.blockSize_bytes must be ${MIN_BLOCK_SIZE_BYTES}..${MAX_BLOCK_SIZE_BYTES}`);
    uint(d.size_bytes, MAX_SEQ, 'download.size_bytes');
    uint(d.manifestSeq, MAX_SEQ, 'download.manifestSeq');
  }
  if (s.attempts.length > MAX_ATTEMPT_VERSIONS) throw new RangeError(`ota-state: at most ${MAX_ATTEMPT_VERSIONS} attempt entries, got ${s.attempts.length}`);
  for (const a of s.attempts) {
    version(a.version, 'attempts.version');
    uint(a.attempts, MAX_ATTEMPTS_PER_VERSION, 'attempts.attempts');
  }
  if (new Set(s.attempts.map((a) => a.version)).size !== s.attempts.length) throw new RangeError('ota-state: attempts lists a version twice');
  if (s.highestSeq !== null) uint(s.highestSeq, MAX_SEQ, 'highestSeq');
  const u = s.lastUpdate;
  if (u) {
    version(u.targetVersion, 'lastUpdate.targetVersion');
    version(u.fromVersion, 'lastUpdate.fromVersion');
    if (!RESULTS.includes(u.result)) throw new RangeError(`ota-state: lastUpdate.result must be one of ${RESULTS.join(', ')}`);
    uint(u.reason, 11, 'lastUpdate.reason');
  }
}

// --- payload (CBOR) ---------------------------------------------------------------------------

const encoder = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: false });

export function encodePayload(s: OtaState): Uint8Array {
  checkOtaState(s);
  const top = new Map<number, unknown>();
  const d = s.download;
  if (d) {
    const m = new Map<number, unknown>([
      [1, d.targetVersion],
      [2, d.sha256],
    ]);
    if (d.etag) m.set(3, d.etag);
    m.set(4, d.nextBlock);
    m.set(5, d.blockSize_bytes);
    m.set(6, d.size_bytes);
    m.set(7, d.manifestSeq);
    top.set(1, m);
  }
  if (s.attempts.length > 0) top.set(2, s.attempts.map((a) => [a.version, a.attempts]));
  if (s.highestSeq !== null) top.set(3, s.highestSeq);
  const u = s.lastUpdate;
  if (u) {
    top.set(
      4,
      new Map<number, unknown>([
        [1, u.targetVersion],
        [2, u.fromVersion],
        [3, RESULTS.indexOf(u.result)],
        [4, u.reason],
        [5, u.reported],
      ]),
    );
  }
  const bytes = Uint8Array.from(encoder.encode(top));
  if (bytes.length > MAX_PAYLOAD_BYTES) throw new Error(`assertion failed: ota-state payload of ${bytes.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
  return bytes;
}

class PayloadError extends Error {}

function need<T>(ok: boolean, v: T, what: string): T {
  if (!ok) throw new PayloadError(what);
  return v;
}
const isMap = (v: unknown): v is Map<unknown, unknown> => v instanceof Map;
const text = (v: unknown, what: string): string => need(typeof v === 'string', v as string, `${what}: expected text`);
const num = (v: unknown, what: string): number => need(typeof v === 'number' && Number.isInteger(v) && v >= 0, v as number, `${what}: expected a uint`);
const bytes = (v: unknown, what: string): Uint8Array => need(v instanceof Uint8Array, v as Uint8Array, `${what}: expected a byte string`);

/** Decode and validate a payload; a string says what is wrong. */
export function decodePayload(payload: Uint8Array): OtaState | string {
  try {
    const top: unknown = decoder.decode(payload);
    if (!isMap(top)) return 'payload: expected a CBOR map';
    const dm = top.get(1);
    let download: DownloadProgress | null = null;
    if (dm !== undefined) {
      if (!isMap(dm)) return 'download: expected a map';
      const etag = dm.get(3);
      download = {
        targetVersion: text(dm.get(1), 'download.1'),
        sha256: Uint8Array.from(bytes(dm.get(2), 'download.2')),
        etag: etag === undefined ? null : Uint8Array.from(bytes(etag, 'download.3')),
        nextBlock: num(dm.get(4), 'download.4'),
        blockSize_bytes: num(dm.get(5), 'download.5'),
        size_bytes: num(dm.get(6), 'download.6'),
        manifestSeq: num(dm.get(7), 'download.7'),
      };
    }
    const am = top.get(2);
    const attempts: VersionAttempts[] = [];
    if (am !== undefined) {
      if (!Array.isArray(am)) return 'attempts: expected an array';
      for (const e of am as unknown[]) {
        if (!Array.isArray(e) || e.length !== 2) return 'attempts: expected [version, count] pairs';
        attempts.push({ version: text(e[0], 'attempts.version'), attempts: num(e[1], 'attempts.count') });
      }
    }
    const hs = top.get(3);
    const um = top.get(4);
    let lastUpdate: LastUpdate | null = null;
    if (um !== undefined) {
      if (!isMap(um)) return 'lastUpdate: expected a map';
      const result = RESULTS[num(um.get(3), 'lastUpdate.3')];
      if (result === undefined) return 'lastUpdate.3: unknown result';
      const reported = um.get(5);
      if (typeof reported !== 'boolean') return 'lastUpdate.5: expected a bool';
      lastUpdate = { targetVersion: text(um.get(1), 'lastUpdate.1'), fromVersion: text(um.get(2), 'lastUpdate.2'), result, reason: num(um.get(4), 'lastUpdate.4'), reported };
    }
    const state: OtaState = { download, attempts, highestSeq: hs === undefined ? null : num(hs, 'highestSeq'), lastUpdate };
    checkOtaState(state);
    return state;
  } catch (e) {
    return e instanceof PayloadError || e instanceof RangeError ? e.message : `malformed CBOR: ${e instanceof Error ? e.message : String(e)}`;
  }
}

// --- framing ----------------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, reflected, as zlib's crc32) of bytes[start, end). */
export function crc32(data: Uint8Array, start = 0, end = data.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A whole record for `seq` and `state`, padded with `eraseValue` to a multiple of `writeSize`. */
export function encodeRecord(seq: number, state: OtaState, writeSize: number, eraseValue: number): Uint8Array {
  uint(seq, MAX_SEQ, 'record seq');
  const payload = encodePayload(state);
  const length = RECORD_HEADER_BYTES + payload.length + RECORD_CRC_BYTES;
  const out = new Uint8Array(Math.ceil(length / writeSize) * writeSize).fill(eraseValue);
  const view = new DataView(out.buffer);
  out[0] = RECORD_MAGIC_0;
  out[1] = RECORD_MAGIC_1;
  out[2] = RECORD_FORMAT;
  out[3] = 0;
  view.setUint32(4, seq, true);
  view.setUint16(8, payload.length, true);
  out.set(payload, RECORD_HEADER_BYTES);
  view.setUint32(RECORD_HEADER_BYTES + payload.length, crc32(out, 0, RECORD_HEADER_BYTES + payload.length), true);
  return out;
}

export interface FramedRecord {
  seq: number;
  /** Bytes the record occupies, padding included. */
  length_bytes: number;
  payload: Uint8Array;
}

/** The record framed at `pos`, if magic, format, length and CRC hold; null otherwise. */
export function parseFrame(buf: Uint8Array, pos: number, writeSize: number): FramedRecord | null {
  if (pos + RECORD_HEADER_BYTES + RECORD_CRC_BYTES > buf.length) return null;
  if (buf[pos] !== RECORD_MAGIC_0 || buf[pos + 1] !== RECORD_MAGIC_1 || buf[pos + 2] !== RECORD_FORMAT) return null;
  const len = buf[pos + 8]! | (buf[pos + 9]! << 8);
  if (len < 1 || len > MAX_PAYLOAD_BYTES) return null;
  const end = pos + RECORD_HEADER_BYTES + len;
  if (end + RECORD_CRC_BYTES > buf.length) return null;
  const stored = (buf[end]! | (buf[end + 1]! << 8) | (buf[end + 2]! << 16) | (buf[end + 3]! << 24)) >>> 0;
  if (stored !== crc32(buf, pos, end)) return null;
  const seq = (buf[pos + 4]! | (buf[pos + 5]! << 8) | (buf[pos + 6]! << 16) | (buf[pos + 7]! << 24)) >>> 0;
  const total = RECORD_HEADER_BYTES + len + RECORD_CRC_BYTES;
  return { seq, length_bytes: Math.ceil(total / writeSize) * writeSize, payload: buf.subarray(pos + RECORD_HEADER_BYTES, end) };
}
