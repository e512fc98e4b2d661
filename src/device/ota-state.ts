/**
 * The OTA state store: the agent's durable memory in the board's `ota-state` partition
 * (FORMATS.md "OTA state on flash"). Whole-state records (see ota-state-record.ts for the byte
 * format) are appended to a log; the newest record with a valid CRC is the state.
 *
 * Layout. The partition's sectors are split into two banks of (nearly) equal size: bank 0 = the
 * first sectors, bank 1 = the rest. Records are appended to the active bank. When the next record
 * does not fit, the store compacts: it makes sure the other bank is erased, writes the new state
 * there as its first record (sequence number + 1), and only then erases the used part of the old
 * bank. The newest record always survives until a newer one is complete on flash, so a power cut
 * at any op — before it or inside it (a torn write or a torn erase) — loses at most the record
 * being written: after power-on the state is the last committed one or the one before it, never
 * older, never garbage. Garbage from a torn op is skipped (the scan resynchronises at every write
 * block until it finds a valid frame); old records a torn erase left behind lose to the newer
 * sequence number.
 *
 * Torn writes can leave a write block that reads erased but is programmed (a real NOR cell half
 * charged; the flash model refuses to program it again). So after power-on the store never writes
 * where an interrupted write may have started: it appends one write block past everything that is
 * programmed (the guard), and the first compaction after power-on also erases the other bank's used
 * prefix (at least its first sector) even when it reads erased. Wear: an append costs no erase; a
 * compaction costs one erase op (the old bank's used sectors), plus one more for the first
 * compaction after each power-on.
 *
 * One sector. A partition of one sector has one bank: appends keep the guarantee, but compaction
 * must erase the only copy before rewriting it, so a cut between that erase and the end of the
 * following write leaves no valid record: the store then opens with EMPTY_OTA_STATE (never
 * garbage, never a state older than the one before the interrupted update). Every shipped board
 * has at least two sectors.
 *
 * Principle 1: the store holds nothing that survives a power cut. After a flash op throws (a
 * PowerCut or a driver error) the store refuses further use; after power-on, open it again.
 */
import { InputError } from '../errors.js';
import type { FlashArea } from '../flash/flash.js';
import { EMPTY_OTA_STATE, MAX_RECORD_BYTES, checkOtaState, decodePayload, encodeRecord, parseFrame } from './ota-state-record.js';
import type { OtaState } from './ota-state-record.js';

export * from './ota-state-record.js';

export interface OtaStateBank {
  index: number;
  /** Offset in the partition, bytes. */
  offset: number;
  size_bytes: number;
  /** Sectors of the bank, offsets relative to the bank. */
  sectors: readonly { offset: number; size: number }[];
}

/** One valid frame found on flash (its payload may still fail to decode: `error`). */
export interface DecodedRecord {
  bank: number;
  /** Offset in the partition. */
  offset: number;
  seq: number;
  length_bytes: number;
  state: OtaState | null;
  error: string | null;
}

export interface DecodedBank extends OtaStateBank {
  records: DecodedRecord[];
  /** Programmed bytes that are no valid record (a torn write or erase), offsets in the partition. */
  garbage: { offset: number; length_bytes: number }[];
  /** End of the last programmed byte, relative to the bank (0: the bank reads erased). */
  usedEnd_bytes: number;
}

export interface DecodedOtaState {
  partition: { offset: number; size_bytes: number; writeSize: number; eraseValue: number };
  banks: DecodedBank[];
  /** The record the store would open with (null: none valid, the state is EMPTY_OTA_STATE). */
  latest: DecodedRecord | null;
  state: OtaState;
}

export interface OtaStateStats {
  appends: number;
  compactions: number;
  /** Erase ops issued by this store object. */
  eraseOps: number;
}

/** Split the partition's sectors into two banks of nearly equal size (one bank for one sector). */
export function otaStateBanks(area: FlashArea): OtaStateBank[] {
  const sectors = area.sectors;
  if (sectors.length === 0) throw new InputError('BAD_OTA_STATE', `${area.name}: the partition has no sectors`);
  const sizeOf = (from: number, to: number): number => sectors.slice(from, to).reduce((n, s) => n + s.size, 0);
  const bank = (index: number, from: number, to: number): OtaStateBank => {
    const base = sectors[from]!.offset;
    return { index, offset: base, size_bytes: sizeOf(from, to), sectors: sectors.slice(from, to).map((s) => ({ offset: s.offset - base, size: s.size })) };
  };
  let banks: OtaStateBank[];
  if (sectors.length === 1) {
    banks = [bank(0, 0, 1)];
  } else {
    let split = 1;
    for (let k = 1; k < sectors.length; k++) if (Math.abs(sizeOf(0, k) - sizeOf(k, sectors.length)) < Math.abs(sizeOf(0, split) - sizeOf(split, sectors.length))) split = k;
    banks = [bank(0, 0, split), bank(1, split, sectors.length)];
  }
  const need = Math.ceil(MAX_RECORD_BYTES / area.writeSize) * area.writeSize + area.writeSize;
  for (const b of banks) {
    if (b.size_bytes < need) {
      throw new InputError('BAD_OTA_STATE', `${area.name}: bank ${b.index} of ${b.size_bytes} bytes cannot hold a record of up to ${need} bytes; make the partition larger`);
    }
  }
  return banks;
}

function scanBank(area: FlashArea, b: OtaStateBank): DecodedBank {
  const ws = area.writeSize;
  const ev = area.eraseValue;
  const buf = area.read(b.offset, b.size_bytes);
  let usedEnd = buf.length;
  while (usedEnd > 0 && buf[usedEnd - 1] === ev) usedEnd--;
  const records: DecodedRecord[] = [];
  const garbage: { offset: number; length_bytes: number }[] = [];
  let garbageStart = -1;
  const closeGarbage = (end: number): void => {
    if (garbageStart >= 0) garbage.push({ offset: b.offset + garbageStart, length_bytes: end - garbageStart });
    garbageStart = -1;
  };
  let pos = 0;
  while (pos < usedEnd) {
    const frame = parseFrame(buf, pos, ws);
    if (frame && pos + frame.length_bytes <= buf.length) {
      closeGarbage(pos);
      const decoded = decodePayload(frame.payload);
      const ok = typeof decoded !== 'string';
      records.push({ bank: b.index, offset: b.offset + pos, seq: frame.seq, length_bytes: frame.length_bytes, state: ok ? decoded : null, error: ok ? null : decoded });
      pos += frame.length_bytes;
      continue;
    }
    if (garbageStart < 0) {
      let programmed = false;
      for (let i = pos; i < pos + ws; i++) if (buf[i] !== ev) programmed = true;
      if (programmed) garbageStart = pos;
    }
    pos += ws;
  }
  closeGarbage(Math.min(buf.length, Math.ceil(usedEnd / ws) * ws));
  return { ...b, records, garbage, usedEnd_bytes: usedEnd };
}

/** Everything on the partition, for `ota-sim flash inspect` (reads only, no flash op). */
export function decodeOtaState(area: FlashArea): DecodedOtaState {
  const banks = otaStateBanks(area).map((b) => scanBank(area, b));
  let latest: DecodedRecord | null = null;
  for (const bank of banks) for (const r of bank.records) if (r.state && (latest === null || r.seq > latest.seq)) latest = r;
  return {
    partition: { offset: area.offset, size_bytes: area.size, writeSize: area.writeSize, eraseValue: area.eraseValue },
    banks,
    latest,
    state: latest?.state ?? EMPTY_OTA_STATE,
  };
}

/** End of the region of a bank that may hold programmed blocks, after power-on (guard included). */
function dirtyEnd(bank: DecodedBank, ws: number): number {
  let end = Math.ceil(bank.usedEnd_bytes / ws) * ws;
  for (const r of bank.records) end = Math.max(end, r.offset - bank.offset + r.length_bytes);
  return Math.min(bank.size_bytes, end + ws);
}

/** The smallest whole-sector prefix of a bank covering [0, end). */
function sectorPrefix(bank: OtaStateBank, end: number): number {
  for (const s of bank.sectors) if (s.offset + s.size >= end) return s.offset + s.size;
  return bank.size_bytes;
}

export class OtaStateStore {
  private _state: OtaState;
  private _seq: number;
  private active: number;
  /** Next append offset in the active bank. */
  private pointer: number;
  /** Banks this store erased itself since it opened (no torn write can hide in them). */
  private readonly knownClean: boolean[];
  private broken: string | null = null;
  readonly stats: OtaStateStats = { appends: 0, compactions: 0, eraseOps: 0 };

  private constructor(
    readonly area: FlashArea,
    readonly banks: readonly OtaStateBank[],
    decoded: DecodedOtaState,
  ) {
    const ws = area.writeSize;
    this._state = decoded.state;
    this._seq = decoded.latest?.seq ?? 0;
    this.active = decoded.latest?.bank ?? 0;
    const activeBank = decoded.banks[this.active]!;
    this.pointer = dirtyEnd(activeBank, ws);
    this.knownClean = banks.map(() => false);
  }

  /** Open the store: read both banks and take the newest valid record (torn data and garbage are skipped). */
  static open(area: FlashArea): OtaStateStore {
    return new OtaStateStore(area, otaStateBanks(area), decodeOtaState(area));
  }

  get state(): OtaState {
    return this._state;
  }

  /** Sequence number of the current state's record (0: none yet). */
  get seq(): number {
    return this._seq;
  }

  /**
   * Append the state with `patch` applied and return it. When this returns, the new state is on
   * flash; when a flash op throws (PowerCut), the store is unusable and flash holds either the new
   * state or the previous one.
   */
  update(patch: Partial<OtaState>): OtaState {
    if (this.broken !== null) throw new Error(`assertion failed: the ota-state store is unusable after "${this.broken}"; open it again after power-on`);
    const next: OtaState = { ...this._state, ...patch };
    checkOtaState(next);
    const area = this.area;
    const record = encodeRecord(this._seq + 1, next, area.writeSize, area.eraseValue);
    try {
      const bank = this.banks[this.active]!;
      if (this.pointer + record.length <= bank.size_bytes) {
        area.write(bank.offset + this.pointer, record);
        this.pointer += record.length;
        this.stats.appends++;
      } else {
        this.compact(record);
      }
    } catch (e) {
      this.broken = e instanceof Error ? e.message : String(e);
      throw e;
    }
    this._state = next;
    this._seq++;
    return next;
  }

  private erase(bank: OtaStateBank, end: number): void {
    this.area.erase(bank.offset, sectorPrefix(bank, end));
    this.stats.eraseOps++;
  }

  private compact(record: Uint8Array): void {
    const area = this.area;
    const ws = area.writeSize;
    const source = this.banks[this.active]!;
    this.stats.compactions++;
    if (this.banks.length === 1) {
      // One bank: the state is only in RAM between this erase and the end of the next write.
      this.erase(source, this.pointer);
      area.write(source.offset, record);
      this.pointer = record.length;
      return;
    }
    const target = this.banks[1 - this.active]!;
    if (!this.knownClean[target.index]) this.erase(target, dirtyEnd(scanBank(area, target), ws));
    area.write(target.offset, record);
    this.knownClean[target.index] = false;
    this.erase(source, this.pointer);
    this.knownClean[source.index] = true;
    this.active = target.index;
    this.pointer = record.length;
  }
}
