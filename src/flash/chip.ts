/**
 * Storage of one flash chip: sparse (a sector never programmed holds no buffer) and copy-on-write
 * (a clone shares sector buffers until one side changes them), so sweeps and fleets can keep many
 * copies of a flash cheaply. No checks here: flash.ts decides what is allowed, this only applies it.
 */
import type { SectorStore } from './sector-store.js';
import type { FlashDeviceSpec } from './types.js';

export interface SectorInfo {
  index: number;
  start: number; // byte address on the chip
  size: number; // bytes
}

/** Geometry derived once from the spec and shared by every clone. */
export class ChipGeometry {
  readonly size: number;
  readonly sectorStart: Uint32Array;
  readonly sectorSize: Uint32Array;
  readonly sectorEraseUs: Float64Array;
  readonly sectorCount: number;
  private readonly uniformSize: number; // 0 if sectors differ

  constructor(readonly spec: FlashDeviceSpec) {
    const count = spec.sectors.reduce((n, run) => n + run.count, 0);
    this.sectorCount = count;
    this.sectorStart = new Uint32Array(count);
    this.sectorSize = new Uint32Array(count);
    this.sectorEraseUs = new Float64Array(count);
    let i = 0;
    let addr = 0;
    for (const run of spec.sectors) {
      for (let k = 0; k < run.count; k++, i++) {
        this.sectorStart[i] = addr;
        this.sectorSize[i] = run.size;
        this.sectorEraseUs[i] = run.eraseMs * 1000;
        addr += run.size;
      }
    }
    this.size = addr;
    const first = spec.sectors[0]?.size ?? 0;
    this.uniformSize = spec.sectors.every((run) => run.size === first) ? first : 0;
  }

  /** Index of the sector holding byte `addr` (addr must be in range). */
  sectorIndexAt(addr: number): number {
    if (this.uniformSize > 0) return Math.floor(addr / this.uniformSize);
    let lo = 0;
    let hi = this.sectorCount - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.sectorStart[mid]! <= addr) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  sector(index: number): SectorInfo {
    return { index, start: this.sectorStart[index]!, size: this.sectorSize[index]! };
  }
}

/** Ownership tags: a chip owns sector s iff ownTag[s] equals its current tag (see Chip.owns). */
let nextTag = 1;

export class Chip {
  /** Sector contents; null = fully erased. */
  readonly data: (Uint8Array | null)[];
  /** Per sector, one byte per write block: 1 = programmed since the last erase. null = none. */
  readonly prog: (Uint8Array | null)[];
  /**
   * Copy-on-write bookkeeping: this chip alone holds sector s's buffers (and may change them in
   * place) iff ownTag[s] === tag. Cloning or freezing gives the chip a new tag, which disowns every
   * sector at once; a disowned buffer is never changed again by anyone (it is copied first).
   */
  private readonly ownTag: number[];
  private tag: number;
  /** Erase counts, shared with clones until one side erases (then copied). */
  private counts: Uint32Array;
  private countsShared: boolean;

  constructor(readonly geo: ChipGeometry, from?: Chip) {
    const n = geo.sectorCount;
    if (from) {
      this.data = from.data.slice();
      this.prog = from.prog.slice();
      this.ownTag = from.ownTag.slice();
      from.tag = nextTag++;
      this.counts = from.counts;
      this.countsShared = true;
      from.countsShared = true;
    } else {
      this.data = new Array<Uint8Array | null>(n).fill(null);
      this.prog = new Array<Uint8Array | null>(n).fill(null);
      this.ownTag = new Array<number>(n).fill(0);
      this.counts = new Uint32Array(n);
      this.countsShared = false;
    }
    this.tag = nextTag++;
  }

  /** Erase counts per sector (read-only view; change them with addEraseCount / setEraseCounts). */
  get eraseCounts(): Readonly<Uint32Array> {
    return this.counts;
  }

  private ownCounts(): Uint32Array {
    if (this.countsShared) {
      this.counts = this.counts.slice();
      this.countsShared = false;
    }
    return this.counts;
  }

  addEraseCount(s: number, delta: number): void {
    const c = this.ownCounts();
    c[s] = c[s]! + delta;
  }

  setEraseCounts(counts: ArrayLike<number>): void {
    this.ownCounts().set(counts);
  }

  /** Whether this chip alone holds sector s's buffers. */
  owns(s: number): boolean {
    return this.ownTag[s] === this.tag;
  }

  get eraseValue(): number {
    return this.geo.spec.eraseValue;
  }

  clone(): Chip {
    return new Chip(this.geo, this);
  }

  /** Copy bytes [addr, addr+length) into out[outOff...]. */
  readInto(addr: number, length: number, out: Uint8Array, outOff: number): void {
    const geo = this.geo;
    let done = 0;
    while (done < length) {
      const a = addr + done;
      const s = geo.sectorIndexAt(a);
      const start = geo.sectorStart[s]!;
      const off = a - start;
      const n = Math.min(length - done, geo.sectorSize[s]! - off);
      const buf = this.data[s];
      if (buf) {
        if (n <= 64) for (let i = 0; i < n; i++) out[outOff + done + i] = buf[off + i]!;
        else out.set(buf.subarray(off, off + n), outOff + done);
      } else {
        out.fill(this.eraseValue, outOff + done, outOff + done + n);
      }
      done += n;
    }
  }

  /** The writable buffers of sector s, materialised and owned. */
  mutable(s: number): { data: Uint8Array; prog: Uint8Array } {
    const geo = this.geo;
    let data = this.data[s] ?? null;
    let prog = this.prog[s] ?? null;
    if (data === null || prog === null) {
      data = new Uint8Array(geo.sectorSize[s]!);
      if (this.eraseValue !== 0) data.fill(this.eraseValue);
      prog = new Uint8Array(Math.ceil(geo.sectorSize[s]! / geo.spec.writeSize));
    } else if (this.ownTag[s] !== this.tag) {
      data = data.slice();
      prog = prog.slice();
    }
    this.data[s] = data;
    this.prog[s] = prog;
    this.ownTag[s] = this.tag;
    return { data, prog };
  }

  /** Whether any write block in [addr, addr+length) was programmed since its erase; its address or -1. */
  firstProgrammed(addr: number, length: number): number {
    const geo = this.geo;
    const ws = geo.spec.writeSize;
    const end = addr + length;
    let a = addr;
    while (a < end) {
      const s = geo.sectorIndexAt(a);
      const start = geo.sectorStart[s]!;
      const sEnd = Math.min(end, start + geo.sectorSize[s]!);
      const prog = this.prog[s];
      if (prog) {
        const b1 = Math.ceil((sEnd - start) / ws);
        for (let b = Math.floor((a - start) / ws); b < b1; b++) if (prog[b] === 1) return start + b * ws;
      }
      a = sEnd;
    }
    return -1;
  }

  /**
   * Program bytes: bits only move away from the erase value (AND on 0xff flash, OR on 0x00 flash),
   * which on an erased block simply stores `src`. Marks the blocks programmed.
   */
  program(addr: number, src: Uint8Array, srcOff: number, length: number): void {
    this.applyBytes(addr, src, srcOff, length, true);
  }

  /** Store bytes as they are (the recorded outcome of a torn operation). */
  assign(addr: number, src: Uint8Array, srcOff: number, length: number): void {
    this.applyBytes(addr, src, srcOff, length, false);
  }

  private applyBytes(addr: number, src: Uint8Array, srcOff: number, length: number, programSemantics: boolean): void {
    const geo = this.geo;
    const ws = geo.spec.writeSize;
    const erase0 = this.eraseValue === 0;
    let done = 0;
    while (done < length) {
      const a = addr + done;
      const s = geo.sectorIndexAt(a);
      const off = a - geo.sectorStart[s]!;
      const n = Math.min(length - done, geo.sectorSize[s]! - off);
      const { data, prog } = this.mutable(s);
      const bFirst = Math.floor(off / ws);
      const bEnd = Math.ceil((off + n) / ws);
      if (programSemantics && !anySet(prog, bFirst, bEnd)) {
        // Erased blocks hold the erase value, so programming them stores the bytes as given.
        if (n <= 32) for (let i = 0; i < n; i++) data[off + i] = src[srcOff + done + i]!;
        else data.set(srcOff + done === 0 && n === src.length ? src : src.subarray(srcOff + done, srcOff + done + n), off);
      } else if (programSemantics) {
        for (let i = 0; i < n; i++) {
          const v = src[srcOff + done + i]!;
          data[off + i] = erase0 ? data[off + i]! | v : data[off + i]! & v;
        }
      } else {
        data.set(src.subarray(srcOff + done, srcOff + done + n), off);
      }
      prog.fill(1, bFirst, bEnd);
      done += n;
    }
  }

  /**
   * Content-addressed sharing: every sector this chip alone holds (changed since it was last
   * interned or cloned) is replaced by the store's buffers with the same bytes and flags, and
   * disowned, so the next write to it copies first. Returns how many sectors were looked up.
   */
  intern(store: SectorStore): number {
    let n = 0;
    for (let s = 0; s < this.geo.sectorCount; s++) {
      const data = this.data[s] ?? null;
      const prog = this.prog[s] ?? null;
      if (data === null || prog === null || this.ownTag[s] !== this.tag) continue;
      const stored = store.intern(data, prog);
      this.data[s] = stored.data;
      this.prog[s] = stored.prog;
      this.ownTag[s] = 0;
      n++;
    }
    return n;
  }

  /** Add this chip's sector data buffers to `into` (counting distinct storage across flashes). */
  collectBuffers(into: Set<Uint8Array>): void {
    for (const b of this.data) if (b) into.add(b);
  }

  /** Erase whole sector s. */
  eraseSector(s: number): void {
    this.data[s] = null;
    this.prog[s] = null;
    this.ownTag[s] = 0;
    this.addEraseCount(s, 1);
  }

  /**
   * After a torn erase stored its bytes with assign(): a block that reads fully erased counts as
   * erased again, any other as programmed (it must be erased before it can be written).
   */
  recomputeProgrammed(s: number): void {
    const { data, prog } = this.mutable(s);
    const ws = this.geo.spec.writeSize;
    const ev = this.eraseValue;
    let any = false;
    for (let b = 0; b < prog.length; b++) {
      let erased = true;
      for (let i = b * ws; i < (b + 1) * ws && i < data.length; i++) {
        if (data[i] !== ev) {
          erased = false;
          break;
        }
      }
      prog[b] = erased ? 0 : 1;
      any ||= !erased;
    }
    if (!any) {
      this.data[s] = null;
      this.prog[s] = null;
      this.ownTag[s] = 0;
    }
  }

  sectorEquals(other: Chip, s: number): boolean {
    const a = this.data[s] ?? null;
    const b = other.data[s] ?? null;
    if (a === b) return true;
    const ev = this.eraseValue;
    if (a === null) return b!.every((v) => v === ev);
    if (b === null) return a.every((v) => v === ev);
    return Buffer.compare(a, b) === 0;
  }

  /** The sector buffers as they are now, frozen: this chip copies a sector before changing it again. */
  freeze(first = 0, last = this.geo.sectorCount - 1): ChipSnapshot {
    if (first === 0 && last === this.geo.sectorCount - 1) this.tag = nextTag++;
    else for (let s = first; s <= last; s++) this.ownTag[s] = 0;
    return { first, data: this.data.slice(first, last + 1), prog: this.prog.slice(first, last + 1) };
  }

  /**
   * Whether sectors of `snap` hold what this chip holds now (bytes and programmed flags). Where a
   * sector matches by bytes but not by buffer, the snapshot adopts this chip's buffer if nobody can
   * change it any more (not owned), so that the next comparison is one identity check.
   */
  sameAs(snap: ChipSnapshot): boolean {
    const ev = this.eraseValue;
    const data = snap.data as (Uint8Array | null)[];
    const prog = snap.prog as (Uint8Array | null)[];
    for (let i = 0; i < data.length; i++) {
      const s = snap.first + i;
      const a = this.data[s] ?? null;
      const b = data[i] ?? null;
      const pa = this.prog[s] ?? null;
      const pb = prog[i] ?? null;
      if (a === b && pa === pb) continue;
      if (!bytesEqualOrFill(a, b, ev) || !bytesEqualOrFill(pa, pb, 0)) return false;
      if (this.ownTag[s] !== this.tag) {
        data[i] = a;
        prog[i] = pa;
      }
    }
    return true;
  }
}

function anySet(flags: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (flags[i] !== 0) return true;
  return false;
}

/** Frozen sector buffers of a chip (sectors first..first+data.length-1). */
export interface ChipSnapshot {
  readonly first: number;
  readonly data: readonly (Uint8Array | null)[];
  readonly prog: readonly (Uint8Array | null)[];
}

/** a and b hold the same bytes, null standing for `fill` everywhere. */
function bytesEqualOrFill(a: Uint8Array | null, b: Uint8Array | null, fill: number): boolean {
  if (a === b) return true;
  if (a === null) return allEqual(b!, fill);
  if (b === null) return allEqual(a, fill);
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function allEqual(a: Uint8Array, v: number): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== v) return false;
  return true;
}
