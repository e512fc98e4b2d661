/**
 * Storage of one flash chip: sparse (a sector never programmed holds no buffer) and copy-on-write
 * (a clone shares sector buffers until one side changes them), so sweeps and fleets can keep many
 * copies of a flash cheaply. No checks here: flash.ts decides what is allowed, this only applies it.
 */
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

export class Chip {
  /** Sector contents; null = fully erased. */
  readonly data: (Uint8Array | null)[];
  /** Per sector, one byte per write block: 1 = programmed since the last erase. null = none. */
  readonly prog: (Uint8Array | null)[];
  /** 1 where this chip alone holds the sector's buffers (else copy before changing them). */
  readonly owned: Uint8Array;
  readonly eraseCounts: Uint32Array;

  constructor(readonly geo: ChipGeometry, from?: Chip) {
    const n = geo.sectorCount;
    if (from) {
      this.data = from.data.slice();
      this.prog = from.prog.slice();
      this.eraseCounts = from.eraseCounts.slice();
      from.owned.fill(0);
    } else {
      this.data = new Array<Uint8Array | null>(n).fill(null);
      this.prog = new Array<Uint8Array | null>(n).fill(null);
      this.eraseCounts = new Uint32Array(n);
    }
    this.owned = new Uint8Array(n);
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
      if (buf) out.set(buf.subarray(off, off + n), outOff + done);
      else out.fill(this.eraseValue, outOff + done, outOff + done + n);
      done += n;
    }
  }

  /** The writable buffers of sector s, materialised and owned. */
  mutable(s: number): { data: Uint8Array; prog: Uint8Array } {
    const geo = this.geo;
    let data = this.data[s] ?? null;
    let prog = this.prog[s] ?? null;
    if (data === null || prog === null) {
      data = new Uint8Array(geo.sectorSize[s]!).fill(this.eraseValue);
      prog = new Uint8Array(Math.ceil(geo.sectorSize[s]! / geo.spec.writeSize));
    } else if (this.owned[s] === 0) {
      data = data.slice();
      prog = prog.slice();
    }
    this.data[s] = data;
    this.prog[s] = prog;
    this.owned[s] = 1;
    return { data, prog };
  }

  /** Whether any write block in [addr, addr+length) was programmed since its erase. */
  firstProgrammed(addr: number, length: number): number {
    const ws = this.geo.spec.writeSize;
    for (let a = addr; a < addr + length; a += ws) {
      const s = this.geo.sectorIndexAt(a);
      const prog = this.prog[s];
      if (prog && prog[(a - this.geo.sectorStart[s]!) / ws] === 1) return a;
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
        else data.set(src.subarray(srcOff + done, srcOff + done + n), off);
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

  /** Erase whole sector s. */
  eraseSector(s: number): void {
    this.data[s] = null;
    this.prog[s] = null;
    this.owned[s] = 0;
    this.eraseCounts[s] = this.eraseCounts[s]! + 1;
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
      this.owned[s] = 0;
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
}

function anySet(flags: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (flags[i] !== 0) return true;
  return false;
}
