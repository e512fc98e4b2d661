/**
 * Property tests of the board validator, checked against an independent, brute-force reading of
 * the map: whatever parseBoard accepts has in-bounds, sector-aligned, non-overlapping partitions,
 * and a map built valid by construction is accepted.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { listBoards, loadBoard, parseBoard } from '../../src/flash/board.js';
import type { BoardProfile, FlashDeviceSpec } from '../../src/flash/types.js';

/** Every sector start of a device, and its end, enumerated sector by sector. */
function boundaries(spec: FlashDeviceSpec): Set<number> {
  const out = new Set<number>([0]);
  let addr = 0;
  for (const run of spec.sectors) {
    for (let k = 0; k < run.count; k++) out.add((addr += run.size));
  }
  return out;
}

/** The invariants, checked byte-range by byte-range without the validator's code. */
function assertSoundMap(b: BoardProfile): void {
  const parts = Object.entries(b.partitions).filter(([, p]) => p !== undefined) as [string, { device: string; offset: number; size: number }][];
  for (const [name, p] of parts) {
    const spec = b.flash.find((d) => d.id === p.device);
    expect(spec, `${b.name}: ${name} is on a known device`).toBeDefined();
    const bounds = boundaries(spec!);
    const end = Math.max(...bounds);
    expect(p.size, `${b.name}: ${name} is not empty`).toBeGreaterThan(0);
    expect(p.offset + p.size, `${b.name}: ${name} fits its device`).toBeLessThanOrEqual(end);
    expect(bounds.has(p.offset), `${b.name}: ${name} starts on a sector`).toBe(true);
    expect(bounds.has(p.offset + p.size), `${b.name}: ${name} ends on a sector`).toBe(true);
  }
  for (const [na, a] of parts) {
    for (const [nb, c] of parts) {
      if (na >= nb || a.device !== c.device) continue;
      const disjoint = a.offset + a.size <= c.offset || c.offset + c.size <= a.offset;
      expect(disjoint, `${b.name}: ${na} and ${nb} do not overlap`).toBe(true);
    }
  }
}

const SIZES = [512, 1024, 2048, 4096, 8192, 16384, 65536];

/**
 * A random board, valid or not: partitions laid out one after another with random gaps that are
 * sometimes negative (overlap), sizes sometimes past the device end, offsets sometimes off a sector.
 */
const randomBoard = fc
  .record({
    devices: fc.array(
      fc.record({
        runs: fc.array(fc.record({ size: fc.constantFrom(...SIZES), count: fc.integer({ min: 8, max: 48 }) }), { minLength: 1, maxLength: 3 }),
        writeSize: fc.constantFrom(1, 2, 4, 8, 16),
      }),
      { minLength: 1, maxLength: 2 },
    ),
    parts: fc.array(
      fc.record({
        device: fc.nat(1),
        gap: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: 2 }) }, { weight: 1, arbitrary: fc.integer({ min: -2, max: -1 }) }),
        sectors: fc.integer({ min: 1, max: 6 }),
        jitter: fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(-512, 256, 512, 1024) }),
        sizeJitter: fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(-512, 512, 1024) }),
      }),
      { minLength: 6, maxLength: 6 },
    ),
    sameSlots: fc.boolean(),
    strategy: fc.constantFrom('overwrite-only', 'swap-move', 'swap-scratch', 'swap-offset'),
  })
  .map(({ devices, parts, sameSlots, strategy }) => {
    const flash = devices.map((d, i) => ({
      id: i === 0 ? 'internal' : 'spi',
      sectors: d.runs.map((r) => ({ size: r.size, count: r.count, eraseMs: 10 })),
      writeSize: d.writeSize,
      eraseValue: 0xff,
      writeUsPerBlock: 10,
      enduranceCycles: 1000,
    }));
    const sectorList = flash.map((dev) => dev.sectors.flatMap((r) => Array<number>(r.count).fill(r.size)));
    const cursor = flash.map(() => 0); // next free sector index per device
    const offsetOf = (dev: number, n: number): number => {
      const list = sectorList[dev]!;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += list[i] ?? list[list.length - 1]!; // past the end: keep counting
      return sum;
    };
    const names = ['mcuboot', 'slot0', 'slot1', 'scratch', 'ota-state', 'storage'];
    const partitions: Record<string, unknown> = {};
    parts.forEach((p, i) => {
      const dev = p.device % flash.length;
      const n = sameSlots && names[i] === 'slot1' ? parts[1]!.sectors : p.sectors;
      const first = Math.max(0, cursor[dev]! + p.gap);
      const offset = Math.max(0, offsetOf(dev, first) + p.jitter);
      const size = Math.max(512, offsetOf(dev, first + n) - offsetOf(dev, first) + p.sizeJitter);
      cursor[dev] = first + n;
      partitions[names[i]!] = { device: flash[dev]!.id, offset, size };
    });
    return {
      name: 'random-board',
      description: 'generated',
      source: 'fast-check',
      flash,
      partitions,
      mcuboot: { maxSectors: 64, maxAlign: 8, validatePrimary: false, strategies: [strategy] },
    };
  });

describe('board validator properties', () => {
  it('shipped boards have sound maps, at every write size and erase value the simulator uses', () => {
    for (const name of listBoards()) {
      assertSoundMap(loadBoard(name));
      for (const writeSize of [1, 2, 4, 8]) {
        for (const eraseValue of [0x00, 0xff] as const) {
          try {
            assertSoundMap(loadBoard(name, { writeSize, eraseValue }));
          } catch (e) {
            // A write size may be refused by a board (never below what its map allows), but only as an InputError.
            if (!(e instanceof InputError)) throw e;
          }
        }
      }
    }
  });

  it('whatever parseBoard accepts has in-bounds, sector-aligned, non-overlapping partitions', () => {
    let accepted = 0;
    let rejected = 0;
    fc.assert(
      fc.property(randomBoard, (json) => {
        let board: BoardProfile;
        try {
          board = parseBoard(json, 'random.json');
        } catch (e) {
          // Rejections must be clean one-line InputErrors naming the file.
          expect(e).toBeInstanceOf(InputError);
          expect((e as Error).message.startsWith('random.json: ')).toBe(true);
          expect((e as Error).message).not.toContain('\n');
          rejected++;
          return;
        }
        accepted++;
        assertSoundMap(board);
      }),
      { numRuns: 600, seed: 0x0b0a2d },
    );
    // The generator must exercise both sides, or the property says nothing.
    expect(accepted).toBeGreaterThan(20);
    expect(rejected).toBeGreaterThan(20);
  });

  it('a map valid by construction is accepted, and moving a partition by half a sector is not', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(512, 2048, 4096, 8192),
        fc.integer({ min: 2, max: 40 }), // slot sectors
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 4, maxLength: 4 }), // mcuboot, scratch, ota-state, storage
        fc.array(fc.nat(3), { minLength: 7, maxLength: 7 }), // gaps between partitions, in sectors
        fc.constantFrom(1, 2, 4, 8),
        (sector, slotSectors, [mcuSectors, scratchSectors, stateSectors, storageSectors], gaps, writeSize) => {
          const order: [string, number][] = [
            ['mcuboot', mcuSectors!],
            ['slot0', slotSectors],
            ['slot1', slotSectors],
            ['scratch', scratchSectors!],
            ['ota-state', stateSectors!],
            ['storage', storageSectors!],
          ];
          const partitions: Record<string, { device: string; offset: string; size: string }> = {};
          let at = gaps[0]!;
          order.forEach(([name, n], i) => {
            partitions[name] = { device: 'internal', offset: `0x${(at * sector).toString(16)}`, size: `0x${(n * sector).toString(16)}` };
            at += n + gaps[i + 1]!;
          });
          const json = {
            name: 'constructed',
            description: 'd',
            source: 's',
            flash: [{ id: 'internal', sectors: [{ size: sector, count: at + 1, eraseMs: 1 }], writeSize, eraseValue: '0xff', writeUsPerBlock: 1, enduranceCycles: 1 }],
            partitions,
            mcuboot: { maxSectors: slotSectors, maxAlign: 8, validatePrimary: true, strategies: ['overwrite-only', 'swap-scratch', 'swap-move', 'swap-offset'] },
          };
          const board = parseBoard(json, 'constructed.json');
          assertSoundMap(board);
          expect(board.partitions.slot1.offset - board.partitions.slot0.offset).toBeGreaterThanOrEqual(slotSectors * sector);

          // Shift the storage partition by half a sector: no longer aligned, must be refused.
          const shifted = structuredClone(json);
          const st = shifted.partitions['storage']!;
          st.offset = `0x${(Number.parseInt(st.offset, 16) + sector / 2).toString(16)}`;
          expect(() => parseBoard(shifted, 'constructed.json')).toThrow(/partitions\.storage\.offset: .* is not on a sector boundary/);
        },
      ),
      { numRuns: 300, seed: 42 },
    );
  });
});
