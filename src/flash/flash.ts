/**
 * The NOR flash model of one board: one or more chips, a shared op counter, power, journal, wear
 * and timing. It refuses what real flash refuses (unaligned or partial write blocks, writes to
 * programmed blocks in strict mode, erases that are not whole sectors, out-of-range access), and a
 * power cut can be armed before or inside any op: then that op stops where the cut leaves it and
 * every later op throws PowerCut until powerOn().
 */
import { InputError } from '../errors.js';
import { Prng, mixSeed } from '../prng.js';
import { Chip, ChipGeometry } from './chip.js';
import type { ChipSnapshot } from './chip.js';
import type { SectorStore } from './sector-store.js';
import { FlashError, PowerCut } from './errors.js';
import { Journal, OpKind } from './journal.js';
import type { JournalEntry } from './journal.js';
import type { BoardProfile, EraseValue, FlashDeviceSpec, PartitionName } from './types.js';

export interface FlashOptions {
  /** Default true: writing a block programmed since its last erase is refused (NOT_ERASED). */
  strict?: boolean;
  /** Default true: record every op so the flash can be rebuilt at any op index. */
  journal?: boolean;
}

/**
 * Where power goes away. `before`: op `atOp` does not happen. `inside` a write: blocks before
 * `block` land, block `block` is torn (a seeded subset of its bit changes), later ones do not;
 * inside an erase: sectors before `block` are erased, sector `block` keeps a seeded subset of its
 * bits, later ones are untouched. Without `block`, it is chosen from the seed.
 */
export type PowerCutPlan = { atOp: number; kind: 'before' } | { atOp: number; kind: 'inside'; seed: number; block?: number };

export interface FlashArea {
  readonly name: PartitionName;
  readonly flash: Flash;
  readonly deviceId: string;
  readonly offset: number;
  readonly size: number;
  readonly writeSize: number;
  readonly eraseValue: EraseValue;
  /** Sectors of the area, relative to its start. */
  readonly sectors: readonly { offset: number; size: number }[];
  read(off: number, length: number): Uint8Array;
  write(off: number, data: Uint8Array): void;
  erase(off: number, length: number): void;
}

/** Frozen contents of a whole flash (see Flash.freeze). */
export interface FlashSnapshot {
  readonly chips: readonly ChipSnapshot[];
}

/** Frozen contents of some sectors of one device (see Flash.freezeRegion). */
export interface RegionSnapshot {
  readonly deviceId: string;
  readonly snap: ChipSnapshot;
}

export class Flash {
  readonly board: BoardProfile;
  readonly strict: boolean;
  /** Simulated time the ops took, from the board's timings. */
  elapsedUs = 0;
  /** Called after every op with its cost, so a device clock can charge it. */
  onCost: ((cost_us: number) => void) | null = null;

  private readonly chips: Chip[];
  private readonly chipIds: ReadonlyMap<string, number>;
  private _opIndex = 0;
  private _powered = true;
  private cut: PowerCutPlan | null = null;
  /** Ops armed to fail (armFailure); null until one is armed (most flashes never have one). */
  private failures: Set<number> | null = null;
  private journal: Journal | null;
  private journalBase: Flash | null = null;
  private areas = new Map<PartitionName, FlashArea>();

  private constructor(board: BoardProfile, chips: Chip[], strict: boolean, journal: boolean) {
    this.board = board;
    this.chips = chips;
    this.strict = strict;
    let ids = chipIdsCache.get(board);
    if (!ids) {
      ids = new Map(board.flash.map((spec, i) => [spec.id, i]));
      chipIdsCache.set(board, ids);
    }
    this.chipIds = ids;
    this.journal = journal ? new Journal() : null;
  }

  /** A new flash for the board, every chip erased. */
  static create(board: BoardProfile, options: FlashOptions = {}): Flash {
    const chips = board.flash.map((spec) => new Chip(new ChipGeometry(spec)));
    const flash = new Flash(board, chips, options.strict ?? true, options.journal ?? true);
    flash.startJournal();
    return flash;
  }

  get opIndex(): number {
    return this._opIndex;
  }

  get powered(): boolean {
    return this._powered;
  }

  spec(deviceId: string): FlashDeviceSpec {
    return this.chip(deviceId).geo.spec;
  }

  deviceSize(deviceId: string): number {
    return this.chip(deviceId).geo.size;
  }

  /** Sectors of a chip as absolute {start, size}. */
  sectors(deviceId: string): { start: number; size: number }[] {
    const geo = this.chip(deviceId).geo;
    return Array.from({ length: geo.sectorCount }, (_, i) => ({ start: geo.sectorStart[i]!, size: geo.sectorSize[i]! }));
  }

  eraseCounts(deviceId: string): Uint32Array {
    return this.chip(deviceId).eraseCounts.slice();
  }

  read(deviceId: string, addr: number, length: number): Uint8Array {
    const out = allocRead(length);
    this.readInto(deviceId, addr, length, out, 0);
    return out;
  }

  readInto(deviceId: string, addr: number, length: number, out: Uint8Array, outOff: number): void {
    this.checkPowered();
    const chip = this.chip(deviceId);
    this.checkRange(chip, deviceId, addr, length, 'read');
    chip.readInto(addr, length, out, outOff);
  }

  /** A copy of a whole chip, as a flash dump would show it. */
  dump(deviceId: string): Uint8Array {
    const chip = this.chip(deviceId);
    const out = new Uint8Array(chip.geo.size);
    chip.readInto(0, chip.geo.size, out, 0);
    return out;
  }

  write(deviceId: string, addr: number, data: Uint8Array): void {
    this.checkPowered();
    const chipIndex = this.chipIndex(deviceId);
    const chip = this.chips[chipIndex]!;
    const ws = chip.geo.spec.writeSize;
    this.checkRange(chip, deviceId, addr, data.length, 'write');
    if (data.length === 0 || addr % ws !== 0 || data.length % ws !== 0) {
      throw new FlashError('UNALIGNED', `${deviceId}: write of ${data.length} bytes at 0x${addr.toString(16)} is not whole ${ws}-byte write blocks`);
    }
    if (this.strict) {
      const bad = chip.firstProgrammed(addr, data.length);
      if (bad >= 0) throw new FlashError('NOT_ERASED', `${deviceId}: write at 0x${bad.toString(16)} to a block not erased since it was programmed`);
    }
    const op = this.beginOp(chipIndex, addr, data.length);
    if (op === 'failed') return;
    const blocks = data.length / ws;
    const cost = blocks * chip.geo.spec.writeUsPerBlock;
    const cut = this.cut;
    if (cut && cut.atOp === this._opIndex && cut.kind === 'inside') {
      this.tearWrite(chipIndex, addr, data, cut);
      this.charge(cost);
      this.powerOff(true);
    }
    chip.program(addr, data, 0, data.length);
    this.journal?.record(OpKind.Write, chipIndex, addr, data.length, data);
    this._opIndex++;
    this.charge(cost);
  }

  erase(deviceId: string, addr: number, length: number): void {
    this.checkPowered();
    const chipIndex = this.chipIndex(deviceId);
    const chip = this.chips[chipIndex]!;
    const geo = chip.geo;
    this.checkRange(chip, deviceId, addr, length, 'erase');
    const first = geo.sectorIndexAt(addr);
    const last = length > 0 ? geo.sectorIndexAt(addr + length - 1) : -1;
    if (length === 0 || geo.sectorStart[first] !== addr || geo.sectorStart[last]! + geo.sectorSize[last]! !== addr + length) {
      throw new FlashError('PARTIAL_SECTOR', `${deviceId}: erase of ${length} bytes at 0x${addr.toString(16)} does not cover whole sectors`);
    }
    const op = this.beginOp(chipIndex, addr, length);
    if (op === 'failed') return;
    let cost = 0;
    for (let s = first; s <= last; s++) cost += geo.sectorEraseUs[s]!;
    const cut = this.cut;
    if (cut && cut.atOp === this._opIndex && cut.kind === 'inside') {
      this.tearErase(chipIndex, first, last, cut);
      this.charge(cost);
      this.powerOff(true);
    }
    for (let s = first; s <= last; s++) chip.eraseSector(s);
    this.journal?.record(OpKind.Erase, chipIndex, addr, length, null);
    this._opIndex++;
    this.charge(cost);
  }

  /** The partition as MCUboot's flash_area: offsets relative to its start, bounds checked. */
  area(name: PartitionName): FlashArea {
    const cached = this.areas.get(name);
    if (cached) return cached;
    const part = this.board.partitions[name];
    if (!part) throw new InputError('NO_PARTITION', `board ${this.board.name} has no "${name}" partition`);
    const flash = this;
    const spec = this.spec(part.device);
    // The sector list depends on the board only: computed once per board profile and partition.
    let perBoard = areaSectorsCache.get(this.board);
    if (!perBoard) {
      perBoard = new Map();
      areaSectorsCache.set(this.board, perBoard);
    }
    let sectors = perBoard.get(name);
    if (!sectors) {
      const physical = this.sectors(part.device)
        .filter((s) => s.start >= part.offset && s.start < part.offset + part.size)
        .map((s) => ({ offset: s.start - part.offset, size: s.size }));
      // MCUBOOT_LOGICAL_SECTOR_SIZE: the bootloader sees its areas as bigger sectors, each erased in one op.
      const logical = this.board.mcuboot.logicalSectorSize;
      sectors = Object.freeze(
        (logical !== undefined && (name === 'slot0' || name === 'slot1' || name === 'scratch') ? groupSectors(physical, logical) : physical).map((x) => Object.freeze(x)),
      );
      perBoard.set(name, sectors);
    }
    const check = (off: number, length: number, what: string): void => {
      if (!(off >= 0 && length >= 0 && off + length <= part.size)) {
        throw new FlashError('OUT_OF_RANGE', `${name}: ${what} of ${length} bytes at offset 0x${off.toString(16)} is outside the partition (0x${part.size.toString(16)} bytes)`);
      }
    };
    const area: FlashArea = {
      name,
      flash,
      deviceId: part.device,
      offset: part.offset,
      size: part.size,
      writeSize: spec.writeSize,
      eraseValue: spec.eraseValue,
      sectors,
      read(off, length) {
        check(off, length, 'read');
        return flash.read(part.device, part.offset + off, length);
      },
      write(off, data) {
        check(off, data.length, 'write');
        flash.write(part.device, part.offset + off, data);
      },
      erase(off, length) {
        check(off, length, 'erase');
        flash.erase(part.device, part.offset + off, length);
      },
    };
    this.areas.set(name, area);
    return area;
  }

  hasPartition(name: PartitionName): boolean {
    return this.board.partitions[name] !== undefined;
  }

  /** Arm a power cut; it fires once, at op `atOp` (ops already done are not affected). */
  armPowerCut(plan: PowerCutPlan): void {
    if (!(Number.isInteger(plan.atOp) && plan.atOp >= 0)) throw new InputError('BAD_CUT', `power cut op index must be a whole number >= 0, got ${plan.atOp}`);
    this.cut = plan;
  }

  disarmPowerCut(): void {
    this.cut = null;
  }

  /** Make op `atOp` fail as a driver error (DEVICE_FAILURE) without changing the flash. */
  armFailure(atOp: number): void {
    (this.failures ??= new Set()).add(atOp);
  }

  /** Power returns: the flash keeps its contents; a fired cut is gone. */
  powerOn(): void {
    this._powered = true;
  }

  /** Power goes away now, between ops (a cut not tied to an op index). */
  powerOffNow(): void {
    this.cut = null;
    this._powered = false;
  }

  /** A copy-on-write copy: contents, wear and counters; its journal starts here. */
  clone(options: FlashOptions = {}): Flash {
    const copy = new Flash(this.board, this.chips.map((c) => c.clone()), options.strict ?? this.strict, options.journal ?? this.journal !== null);
    copy._opIndex = this._opIndex;
    copy.elapsedUs = this.elapsedUs;
    copy._powered = this._powered;
    if (copy.journal) copy.journalBase = this.journalBaseFor(copy);
    return copy;
  }

  /**
   * Share sectors by content (see SectorStore): every sector changed since the last intern or
   * clone is swapped for the store's identical buffers. Contents, flags and rules are unchanged.
   * Returns how many sectors were looked up.
   */
  intern(store: SectorStore): number {
    return this.chips.reduce((n, c) => n + c.intern(store), 0);
  }

  /** Add every sector data buffer this flash holds to `into` (identity, not content). */
  collectSectorBuffers(into: Set<Uint8Array>): void {
    for (const c of this.chips) c.collectBuffers(into);
  }

  /** Same bytes on every chip (wear and counters aside). */
  contentEquals(other: Flash): boolean {
    if (other.chips.length !== this.chips.length) return false;
    return this.chips.every((chip, i) => {
      const o = other.chips[i]!;
      if (o.geo.size !== chip.geo.size) return false;
      for (let s = 0; s < chip.geo.sectorCount; s++) if (!chip.sectorEquals(o, s)) return false;
      return true;
    });
  }

  /** Freeze the current contents (copy-on-write: this flash copies a sector before changing it again). */
  freeze(): FlashSnapshot {
    return { chips: this.chips.map((c) => c.freeze()) };
  }

  /** Whether this flash holds exactly what `snap` froze (bytes and programmed flags, every chip). */
  sameContent(snap: FlashSnapshot): boolean {
    if (snap.chips.length !== this.chips.length) return false;
    return this.chips.every((c, i) => c.sameAs(snap.chips[i]!));
  }

  /** Freeze the sectors holding [addr, addr+length) of a device. */
  freezeRegion(deviceId: string, addr: number, length: number): RegionSnapshot {
    const chip = this.chip(deviceId);
    const [first, last] = this.sectorRange(chip, addr, length);
    return { deviceId, snap: chip.freeze(first, last) };
  }

  /** Whether the region frozen in `snap` holds the same bytes and flags here now. */
  sameRegion(snap: RegionSnapshot): boolean {
    return this.chip(snap.deviceId).sameAs(snap.snap);
  }

  private sectorRange(chip: Chip, addr: number, length: number): [number, number] {
    this.checkRange(chip, chip.geo.spec.id, addr, length, 'freeze');
    const geo = chip.geo;
    return [geo.sectorIndexAt(addr), length > 0 ? geo.sectorIndexAt(addr + length - 1) : geo.sectorIndexAt(addr)];
  }

  /** Forget the journal so far; from now on it records from the current state. */
  startJournal(): void {
    if (!this.journal) return;
    this.journal.clear();
    this.journalBase = this.journalBaseFor(this);
  }

  /** Ops recorded since the journal started. */
  get journalLength(): number {
    return this.journal?.length ?? 0;
  }

  /** The flash as it was after the first `k` recorded ops (a new, independent flash). */
  rebuild(k: number): Flash {
    const cursor = this.cursor();
    cursor.advance(k);
    return cursor.flash.clone({ journal: true });
  }

  /** Walks the journal forward op by op; `flash` is the state after `position` ops. */
  cursor(): JournalCursor {
    const journal = this.journal;
    const base = this.journalBase;
    if (!journal || !base) throw new Error('assertion failed: cursor() on a flash without a journal');
    return new JournalCursor(base.clone({ journal: false }), journal);
  }

  /**
   * Set a chip's whole contents (a dump read from a file), as factory programming would: not an
   * op, not journalled. Blocks that differ from the erase value count as programmed.
   */
  loadContents(deviceId: string, bytes: Uint8Array): void {
    const chip = this.chip(deviceId);
    const geo = chip.geo;
    if (bytes.length !== geo.size) throw new InputError('BAD_DUMP', `${deviceId}: dump is ${bytes.length} bytes, the chip has ${geo.size}`);
    for (let s = 0; s < geo.sectorCount; s++) {
      const start = geo.sectorStart[s]!;
      const part = bytes.subarray(start, start + geo.sectorSize[s]!);
      chip.eraseSector(s);
      chip.addEraseCount(s, -1);
      if (part.some((v) => v !== geo.spec.eraseValue)) {
        chip.assign(start, part, 0, part.length);
        chip.recomputeProgrammed(s);
      }
    }
    this.startJournal();
  }

  /** Restore counters saved beside a dump (persistence). */
  restoreCounters(counters: { opIndex: number; elapsedUs: number; eraseCounts: Record<string, number[]> }): void {
    this._opIndex = counters.opIndex;
    this.elapsedUs = counters.elapsedUs;
    for (const [id, counts] of Object.entries(counters.eraseCounts)) {
      const chip = this.chip(id);
      if (counts.length !== chip.geo.sectorCount) throw new InputError('BAD_SIDECAR', `eraseCounts.${id}: expected ${chip.geo.sectorCount} numbers, got ${counts.length}`);
      chip.setEraseCounts(counts);
    }
    this.startJournal();
  }

  /** Apply one journal entry (no checks, no counting beyond the op index). */
  applyEntry(entry: { kind: OpKind; chip: number; addr: number; length: number; data: Uint8Array | null }): void {
    const chip = this.chips[entry.chip]!;
    const geo = chip.geo;
    switch (entry.kind) {
      case OpKind.Write:
        chip.program(entry.addr, entry.data!, 0, entry.length);
        break;
      case OpKind.Erase: {
        const last = geo.sectorIndexAt(entry.addr + entry.length - 1);
        for (let s = geo.sectorIndexAt(entry.addr); s <= last; s++) chip.eraseSector(s);
        break;
      }
      case OpKind.TornWrite:
        chip.assign(entry.addr, entry.data!, 0, entry.length);
        break;
      case OpKind.TornErase: {
        const last = geo.sectorIndexAt(entry.addr + entry.length - 1);
        chip.assign(entry.addr, entry.data!, 0, entry.length);
        for (let s = geo.sectorIndexAt(entry.addr); s <= last; s++) {
          chip.addEraseCount(s, 1);
          chip.recomputeProgrammed(s);
        }
        break;
      }
      case OpKind.Failed:
        break;
    }
    this._opIndex++;
  }

  // --- internals -------------------------------------------------------------------------

  private chipIndex(deviceId: string): number {
    const i = this.chipIds.get(deviceId);
    if (i === undefined) throw new FlashError('UNKNOWN_DEVICE', `board ${this.board.name} has no flash device "${deviceId}" (it has ${[...this.chipIds.keys()].join(', ')})`);
    return i;
  }

  private chip(deviceId: string): Chip {
    return this.chips[this.chipIndex(deviceId)]!;
  }

  private checkPowered(): void {
    if (!this._powered) throw new PowerCut(this._opIndex, false);
  }

  private checkRange(chip: Chip, deviceId: string, addr: number, length: number, what: string): void {
    if (!(Number.isInteger(addr) && Number.isInteger(length) && addr >= 0 && length >= 0 && addr + length <= chip.geo.size)) {
      throw new FlashError('OUT_OF_RANGE', `${deviceId}: ${what} of ${length} bytes at 0x${addr.toString(16)} is outside the chip (0x${chip.geo.size.toString(16)} bytes)`);
    }
  }

  /**
   * Common start of an op: a cut armed before it fires; worn-out sectors and injected failures
   * make the op fail (it still counts: the silicon was asked).
   */
  private beginOp(chipIndex: number, addr: number, length: number): 'ok' | 'failed' {
    const cut = this.cut;
    if (cut && cut.atOp === this._opIndex && cut.kind === 'before') this.powerOff(false);
    const chip = this.chips[chipIndex]!;
    const geo = chip.geo;
    const endurance = geo.spec.enduranceCycles;
    const last = geo.sectorIndexAt(addr + length - 1);
    let worn = -1;
    for (let s = geo.sectorIndexAt(addr); s <= last; s++) {
      if (chip.eraseCounts[s]! >= endurance) {
        worn = s;
        break;
      }
    }
    const injected = this.failures !== null && this.failures.has(this._opIndex);
    if (worn < 0 && !injected) return 'ok';
    this.journal?.record(OpKind.Failed, chipIndex, addr, length, null);
    const op = this._opIndex++;
    if (injected) {
      this.failures!.delete(op);
      throw new FlashError('DEVICE_FAILURE', `${geo.spec.id}: flash op ${op} failed (injected driver error)`);
    }
    throw new FlashError('WORN_OUT', `${geo.spec.id}: sector ${worn} at 0x${geo.sectorStart[worn]!.toString(16)} is worn out after ${chip.eraseCounts[worn]} erases (endurance ${endurance})`);
  }

  private powerOff(inside: boolean): never {
    const op = this._opIndex;
    this.cut = null;
    this._powered = false;
    if (inside) this._opIndex++;
    throw new PowerCut(op, inside);
  }

  private charge(cost_us: number): void {
    this.elapsedUs += cost_us;
    this.onCost?.(cost_us);
  }

  /** Store the torn outcome of a write and journal it. */
  private tearWrite(chipIndex: number, addr: number, data: Uint8Array, cut: { seed: number; block?: number }): void {
    const chip = this.chips[chipIndex]!;
    const ws = chip.geo.spec.writeSize;
    const blocks = data.length / ws;
    const rng = new Prng(mixSeed(cut.seed, this._opIndex));
    const torn = cut.block !== undefined ? Math.min(Math.max(0, cut.block), blocks - 1) : rng.below(blocks);
    const length = (torn + 1) * ws;
    const result = new Uint8Array(length);
    chip.readInto(addr, length, result, 0);
    const erase0 = chip.eraseValue === 0;
    for (let i = 0; i < length; i++) {
      const old = result[i]!;
      const target = erase0 ? old | data[i]! : old & data[i]!;
      if (i < torn * ws) {
        result[i] = target;
      } else {
        // A seeded subset of the bits that programming would change.
        const changing = old ^ target;
        const keep = changing & (rng.nextU32() & 0xff);
        result[i] = old ^ keep;
      }
    }
    chip.assign(addr, result, 0, length);
    this.journal?.record(OpKind.TornWrite, chipIndex, addr, length, result);
  }

  /** Store the torn outcome of an erase and journal it. */
  private tearErase(chipIndex: number, first: number, last: number, cut: { seed: number; block?: number }): void {
    const chip = this.chips[chipIndex]!;
    const geo = chip.geo;
    const count = last - first + 1;
    const rng = new Prng(mixSeed(cut.seed, this._opIndex, 0xe7a5e));
    const tornRel = cut.block !== undefined ? Math.min(Math.max(0, cut.block), count - 1) : rng.below(count);
    const torn = first + tornRel;
    const start = geo.sectorStart[first]!;
    const length = geo.sectorStart[torn]! + geo.sectorSize[torn]! - start;
    const result = new Uint8Array(length);
    chip.readInto(start, length, result, 0);
    const ev = chip.eraseValue;
    const tornStart = geo.sectorStart[torn]! - start;
    result.fill(ev, 0, tornStart);
    for (let i = tornStart; i < length; i++) {
      const old = result[i]!;
      // Bits not at the erase value return to it with probability 1/2 each.
      const notErased = old ^ ev;
      result[i] = old ^ (notErased & (rng.nextU32() & 0xff));
    }
    chip.assign(start, result, 0, length);
    for (let s = first; s <= torn; s++) {
      chip.addEraseCount(s, 1);
      chip.recomputeProgrammed(s);
    }
    this.journal?.record(OpKind.TornErase, chipIndex, start, length, result);
  }

  private journalBaseFor(flash: Flash): Flash {
    const base = new Flash(flash.board, flash.chips.map((c) => c.clone()), flash.strict, false);
    base._opIndex = flash._opIndex;
    base.elapsedUs = flash.elapsedUs;
    return base;
  }
}

/**
 * Buffers for reads. A typed array above 64 bytes gets its own off-heap backing store, which costs
 * more than the read itself; mid-sized reads (the bootloader's 1 KiB copy chunks, its status area)
 * are carved out of shared slabs instead. Memory is never reused: a slab lives as long as any read
 * taken from it, each read owns its bytes.
 */
const SLAB_BYTES = 256 * 1024;
const SLAB_MAX_READ = 16 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

function allocRead(length: number): Uint8Array {
  if (length <= 64 || length > SLAB_MAX_READ) return new Uint8Array(length);
  if (slabUsed + length > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + length);
  slabUsed += (length + 7) & ~7;
  return out;
}

const chipIdsCache = new WeakMap<BoardProfile, ReadonlyMap<string, number>>();
const areaSectorsCache = new WeakMap<BoardProfile, Map<PartitionName, readonly { offset: number; size: number }[]>>();

/** Merge consecutive physical sectors into logical sectors of `size` bytes (a whole number of them). */
function groupSectors(physical: { offset: number; size: number }[], size: number): { offset: number; size: number }[] {
  const out: { offset: number; size: number }[] = [];
  for (const s of physical) {
    const last = out[out.length - 1];
    if (last && last.size < size) last.size += s.size;
    else out.push({ offset: s.offset, size: s.size });
  }
  if (!out.every((s) => s.size === size || s.size % size === 0)) throw new InputError('BAD_BOARD', `logical sector size ${size} does not divide the partition's sectors evenly`);
  return out;
}

/** A flash advanced op by op along a journal (used by sweeps: clone it at each cut point). */
export class JournalCursor {
  position = 0;
  constructor(
    readonly flash: Flash,
    private readonly journal: Journal,
  ) {}

  get length(): number {
    return this.journal.length;
  }

  /** The next journal entry (the op `advance(1)` would apply), or null at the end. */
  peek(): JournalEntry | null {
    return this.position < this.journal.length ? this.journal.entry(this.position) : null;
  }

  advance(ops = 1): void {
    const end = this.position + ops;
    if (!(end <= this.journal.length)) throw new Error(`assertion failed: journal has ${this.journal.length} ops, asked for ${end}`);
    for (; this.position < end; this.position++) this.flash.applyEntry(this.journal.entry(this.position));
  }
}
