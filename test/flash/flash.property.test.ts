/**
 * Property tests: random op sequences against a trivially correct reference model, torn ops that
 * stay inside their range, and journal replay equal to the live state at every op index.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlashError, PowerCut } from '../../src/flash/errors.js';
import { Flash } from '../../src/flash/flash.js';
import type { BoardProfile, EraseValue, SectorRun } from '../../src/flash/types.js';
import { testBoard } from '../helpers/boards.js';

type Op = { kind: 'write'; addr: number; data: number[] } | { kind: 'erase'; first: number; count: number };

/** The obvious model: one byte array, one "programmed" flag per write block, nothing clever. */
class Reference {
  bytes: Uint8Array;
  programmed: Uint8Array;
  starts: number[] = [];
  sizes: number[] = [];
  constructor(
    readonly board: BoardProfile,
    readonly strict: boolean,
  ) {
    const spec = board.flash[0]!;
    let addr = 0;
    for (const run of spec.sectors) for (let i = 0; i < run.count; i++) {
      this.starts.push(addr);
      this.sizes.push(run.size);
      addr += run.size;
    }
    this.bytes = new Uint8Array(addr).fill(spec.eraseValue);
    this.programmed = new Uint8Array(addr / spec.writeSize);
  }
  apply(op: Op): string | null {
    const spec = this.board.flash[0]!;
    const ws = spec.writeSize;
    if (op.kind === 'write') {
      if (op.addr + op.data.length > this.bytes.length) return 'OUT_OF_RANGE';
      if (op.data.length === 0 || op.addr % ws || op.data.length % ws) return 'UNALIGNED';
      if (this.strict) for (let b = op.addr / ws; b < (op.addr + op.data.length) / ws; b++) if (this.programmed[b]) return 'NOT_ERASED';
      op.data.forEach((v, i) => {
        const old = this.bytes[op.addr + i]!;
        this.bytes[op.addr + i] = spec.eraseValue === 0xff ? old & v : old | v;
      });
      for (let b = op.addr / ws; b < (op.addr + op.data.length) / ws; b++) this.programmed[b] = 1;
      return null;
    }
    const start = this.starts[op.first]!;
    const end = this.starts[op.first + op.count - 1]! + this.sizes[op.first + op.count - 1]!;
    this.bytes.fill(spec.eraseValue, start, end);
    this.programmed.fill(0, start / ws, end / ws);
    return null;
  }
}

const boards = fc.record({
  writeSize: fc.constantFrom(1, 2, 4, 8, 16, 32) as fc.Arbitrary<1 | 2 | 4 | 8 | 16 | 32>,
  eraseValue: fc.constantFrom(0xff, 0x00) as fc.Arbitrary<EraseValue>,
  sectors: fc.constantFrom<SectorRun[]>(
    [{ size: 1024, count: 8, eraseMs: 10 }],
    [{ size: 512, count: 4, eraseMs: 5 }, { size: 2048, count: 2, eraseMs: 20 }, { size: 1024, count: 1, eraseMs: 10 }],
  ),
});

function sectorCount(sectors: SectorRun[]): number {
  return sectors.reduce((n, r) => n + r.count, 0);
}

function totalSize(sectors: SectorRun[]): number {
  return sectors.reduce((n, r) => n + r.count * r.size, 0);
}

const opsFor = (sectors: SectorRun[], ws: number): fc.Arbitrary<Op[]> => {
  const size = totalSize(sectors);
  const n = sectorCount(sectors);
  const write = fc
    .record({
      block: fc.integer({ min: 0, max: size / ws - 1 }),
      blocks: fc.integer({ min: 1, max: 6 }),
      misalign: fc.constantFrom(0, 0, 0, 0, 1),
      seed: fc.integer(),
    })
    .map(({ block, blocks, misalign, seed }): Op => {
      const addr = block * ws + (ws > 1 ? misalign : 0);
      const data = Array.from({ length: blocks * ws }, (_, i) => ((seed >>> (i % 24)) + i * 37) & 0xff);
      return { kind: 'write', addr, data };
    });
  const erase = fc
    .record({ first: fc.integer({ min: 0, max: n - 1 }), count: fc.integer({ min: 1, max: 2 }) })
    .map(({ first, count }): Op => ({ kind: 'erase', first, count: Math.min(count, n - first) }));
  return fc.array(fc.oneof({ arbitrary: write, weight: 4 }, { arbitrary: erase, weight: 1 }), { maxLength: 60 });
};

function runOp(flash: Flash, ref: Reference, op: Op): string | null {
  try {
    if (op.kind === 'write') flash.write('internal', op.addr, Uint8Array.from(op.data));
    else {
      const start = ref.starts[op.first]!;
      const end = ref.starts[op.first + op.count - 1]! + ref.sizes[op.first + op.count - 1]!;
      flash.erase('internal', start, end - start);
    }
    return null;
  } catch (err) {
    if (err instanceof FlashError) return err.code;
    throw err;
  }
}

describe('flash model against a reference model', () => {
  it('random op sequences give the same bytes and the same refusals', () => {
    fc.assert(
      fc.property(
        boards.chain((b) => fc.tuple(fc.constant(b), fc.boolean(), opsFor(b.sectors, b.writeSize))),
        ([b, strict, ops]) => {
          const board = testBoard(b);
          const flash = Flash.create(board, { strict });
          const ref = new Reference(board, strict);
          let applied = 0;
          for (const op of ops) {
            const want = ref.apply(op);
            expect(runOp(flash, ref, op)).toBe(want);
            if (want === null) applied++;
          }
          expect(Buffer.compare(flash.dump('internal'), ref.bytes)).toBe(0);
          expect(flash.opIndex).toBe(applied);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('the journal replayed to k equals the state after k ops, for every k', () => {
    fc.assert(
      fc.property(
        boards.chain((b) => fc.tuple(fc.constant(b), opsFor(b.sectors, b.writeSize), fc.integer({ min: 0, max: 40 }), fc.integer())),
        ([b, ops, cutAt, seed]) => {
          const board = testBoard(b);
          const flash = Flash.create(board, { strict: false });
          const ref = new Reference(board, false);
          flash.armPowerCut({ atOp: cutAt, kind: 'inside', seed });
          const states: Buffer[] = [Buffer.from(flash.dump('internal'))];
          for (const op of ops) {
            try {
              if (runOp(flash, ref, op) === null) states.push(Buffer.from(flash.dump('internal')));
            } catch (err) {
              expect(err).toBeInstanceOf(PowerCut);
              flash.powerOn();
              states.push(Buffer.from(flash.dump('internal')));
            }
          }
          expect(flash.journalLength).toBe(states.length - 1);
          const cursor = flash.cursor();
          for (let k = 0; k < states.length; k++) {
            expect(Buffer.compare(Buffer.from(cursor.flash.dump('internal')), states[k]!)).toBe(0);
            if (k < states.length - 1) cursor.advance();
          }
          const k = Math.floor(states.length / 2);
          expect(Buffer.compare(Buffer.from(flash.rebuild(k).dump('internal')), states[k]!)).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a torn op never changes bytes outside its range, and inside it moves only the bits the op would', () => {
    fc.assert(
      fc.property(
        boards.chain((b) => fc.tuple(fc.constant(b), opsFor(b.sectors, b.writeSize), fc.integer(), fc.boolean())),
        ([b, ops, seed, tornIsErase]) => {
          const board = testBoard(b);
          const ev = b.eraseValue;
          const flash = Flash.create(board, { strict: false });
          const ref = new Reference(board, false);
          for (const op of ops) if (ref.apply(op) === null) runOp(flash, new Reference(board, false), op);
          const before = flash.dump('internal');
          const size = before.length;
          flash.armPowerCut({ atOp: flash.opIndex, kind: 'inside', seed });
          let lo: number;
          let hi: number;
          let target: Uint8Array;
          if (tornIsErase) {
            const first = Math.abs(seed) % ref.starts.length;
            lo = ref.starts[first]!;
            hi = lo + ref.sizes[first]!;
            target = new Uint8Array(size).fill(ev);
            expect(() => flash.erase('internal', lo, hi - lo)).toThrow(PowerCut);
          } else {
            const ws = b.writeSize;
            lo = ((Math.abs(seed) % (size / ws)) * ws) % (size - 8 * ws);
            hi = lo + 8 * ws;
            const data = new Uint8Array(8 * ws).map((_, i) => (i * 91 + seed) & 0xff);
            target = before.slice();
            data.forEach((v, i) => (target[lo + i] = ev === 0xff ? before[lo + i]! & v : before[lo + i]! | v));
            expect(() => flash.write('internal', lo, data)).toThrow(PowerCut);
          }
          flash.powerOn();
          const after = flash.dump('internal');
          expect(Buffer.compare(after.subarray(0, lo), before.subarray(0, lo))).toBe(0);
          expect(Buffer.compare(after.subarray(hi), before.subarray(hi))).toBe(0);
          // Every bit is either as before or as the op would leave it.
          let strayBits = 0;
          for (let i = lo; i < hi; i++) strayBits |= (after[i]! ^ before[i]!) & ~(before[i]! ^ target[i]!) & 0xff;
          expect(strayBits).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
