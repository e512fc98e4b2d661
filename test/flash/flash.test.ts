import { describe, expect, it } from 'vitest';
import { FlashError, PowerCut } from '../../src/flash/errors.js';
import { Flash } from '../../src/flash/flash.js';
import { testBoard } from '../helpers/boards.js';

const codeOf = (fn: () => void): string | null => {
  try {
    fn();
    return null;
  } catch (err) {
    if (err instanceof FlashError) return err.code;
    if (err instanceof PowerCut) return 'POWER_CUT';
    throw err;
  }
};

describe('flash refuses what NOR flash refuses', () => {
  it('starts erased, programs erased blocks and reads back', () => {
    const flash = Flash.create(testBoard());
    expect(flash.read('internal', 0, 8)).toEqual(new Uint8Array(8).fill(0xff));
    flash.write('internal', 8, Uint8Array.of(1, 2, 3, 4));
    expect(Array.from(flash.read('internal', 6, 8))).toEqual([0xff, 0xff, 1, 2, 3, 4, 0xff, 0xff]);
    expect(flash.opIndex).toBe(1);
  });

  it('refuses unaligned and partial write blocks', () => {
    const flash = Flash.create(testBoard({ writeSize: 8 }));
    expect(codeOf(() => flash.write('internal', 4, new Uint8Array(8)))).toBe('UNALIGNED');
    expect(codeOf(() => flash.write('internal', 0, new Uint8Array(12)))).toBe('UNALIGNED');
    expect(codeOf(() => flash.write('internal', 0, new Uint8Array(0)))).toBe('UNALIGNED');
    expect(flash.opIndex).toBe(0);
  });

  it('strict mode refuses writing a programmed block, even with the erase value', () => {
    const flash = Flash.create(testBoard());
    flash.write('internal', 0, Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    expect(codeOf(() => flash.write('internal', 0, Uint8Array.of(0, 0, 0, 0)))).toBe('NOT_ERASED');
    flash.erase('internal', 0, 4096);
    flash.write('internal', 0, Uint8Array.of(0, 0, 0, 0));
    expect(Array.from(flash.read('internal', 0, 4))).toEqual([0, 0, 0, 0]);
  });

  it('lenient mode only moves bits away from the erase value (AND on 0xff, OR on 0x00)', () => {
    const ff = Flash.create(testBoard(), { strict: false });
    ff.write('internal', 0, Uint8Array.of(0xf0, 0xff, 0x0f, 0xaa));
    ff.write('internal', 0, Uint8Array.of(0x3c, 0x00, 0xff, 0xff));
    expect(Array.from(ff.read('internal', 0, 4))).toEqual([0x30, 0x00, 0x0f, 0xaa]);
    const zero = Flash.create(testBoard({ eraseValue: 0x00 }), { strict: false });
    expect(zero.read('internal', 0, 1)[0]).toBe(0);
    zero.write('internal', 0, Uint8Array.of(0xf0, 0x00, 0x0f, 0xaa));
    zero.write('internal', 0, Uint8Array.of(0x3c, 0x01, 0x00, 0x00));
    expect(Array.from(zero.read('internal', 0, 4))).toEqual([0xfc, 0x01, 0x0f, 0xaa]);
  });

  it('refuses erases that are not whole sectors, and out-of-range access', () => {
    const flash = Flash.create(testBoard({ sectors: [{ size: 16384, count: 2, eraseMs: 200 }, { size: 65536, count: 1, eraseMs: 500 }] }));
    expect(codeOf(() => flash.erase('internal', 0, 4096))).toBe('PARTIAL_SECTOR');
    expect(codeOf(() => flash.erase('internal', 16384, 16384 + 4096))).toBe('PARTIAL_SECTOR');
    expect(codeOf(() => flash.erase('internal', 16384, 16384 + 65536))).toBeNull();
    expect(codeOf(() => flash.read('internal', 98304 - 2, 4))).toBe('OUT_OF_RANGE');
    expect(codeOf(() => flash.write('internal', 98304, new Uint8Array(4)))).toBe('OUT_OF_RANGE');
    expect(codeOf(() => flash.write('nope', 0, new Uint8Array(4)))).toBe('UNKNOWN_DEVICE');
  });

  it('charges board timings per op: write µs per block, erase ms per sector kind', () => {
    const flash = Flash.create(testBoard({ sectors: [{ size: 16384, count: 2, eraseMs: 200 }, { size: 65536, count: 1, eraseMs: 500 }] }));
    const charged: number[] = [];
    flash.onCost = (us) => charged.push(us);
    flash.write('internal', 0, new Uint8Array(16));
    flash.erase('internal', 16384, 16384 + 65536);
    expect(charged).toEqual([4 * 41, 700_000]);
    expect(flash.elapsedUs).toBe(700_164);
  });
});

describe('power cuts', () => {
  it('before op N: ops 0..N-1 happen, then everything throws PowerCut until power returns', () => {
    const flash = Flash.create(testBoard());
    flash.armPowerCut({ atOp: 2, kind: 'before' });
    flash.write('internal', 0, new Uint8Array(4).fill(1));
    flash.write('internal', 4, new Uint8Array(4).fill(2));
    expect(codeOf(() => flash.write('internal', 8, new Uint8Array(4).fill(3)))).toBe('POWER_CUT');
    expect(flash.powered).toBe(false);
    expect(codeOf(() => flash.read('internal', 0, 4))).toBe('POWER_CUT');
    expect(codeOf(() => flash.erase('internal', 0, 4096))).toBe('POWER_CUT');
    flash.powerOn();
    expect(Array.from(flash.read('internal', 0, 12))).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 0xff, 0xff, 0xff, 0xff]);
    expect(flash.opIndex).toBe(2);
  });

  it('inside a write: earlier blocks land, the torn block holds a subset of its bit changes, later ones nothing', () => {
    const flash = Flash.create(testBoard());
    flash.armPowerCut({ atOp: 0, kind: 'inside', seed: 7, block: 2 });
    const data = new Uint8Array(32).fill(0x00);
    expect(codeOf(() => flash.write('internal', 64, data))).toBe('POWER_CUT');
    flash.powerOn();
    const got = flash.read('internal', 64, 32);
    expect(Array.from(got.subarray(0, 8))).toEqual(new Array(8).fill(0));
    expect(Array.from(got.subarray(12))).toEqual(new Array(20).fill(0xff));
    const torn = got.subarray(8, 12);
    // A seeded subset: neither all of the change nor none of it, for this seed.
    expect(torn.some((v) => v !== 0x00)).toBe(true);
    expect(torn.some((v) => v !== 0xff)).toBe(true);
    // The torn block counts as programmed: it cannot be written again before an erase.
    expect(codeOf(() => flash.write('internal', 72, new Uint8Array(4)))).toBe('NOT_ERASED');
    expect(flash.opIndex).toBe(1);
  });

  it('the same seed tears the same bits', () => {
    const run = (seed: number): number[] => {
      const flash = Flash.create(testBoard());
      flash.armPowerCut({ atOp: 0, kind: 'inside', seed });
      codeOf(() => flash.write('internal', 0, new Uint8Array(64)));
      flash.powerOn();
      return Array.from(flash.read('internal', 0, 64));
    };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
  });

  it('inside an erase: earlier sectors erased, the torn one partly back to the erase value', () => {
    const flash = Flash.create(testBoard({ eraseValue: 0x00 }));
    for (let s = 0; s < 3; s++) flash.write('internal', s * 4096, new Uint8Array(4096).fill(0xff));
    flash.armPowerCut({ atOp: 3, kind: 'inside', seed: 1, block: 1 });
    expect(codeOf(() => flash.erase('internal', 0, 3 * 4096))).toBe('POWER_CUT');
    flash.powerOn();
    expect(flash.read('internal', 0, 4096).every((v) => v === 0)).toBe(true);
    const torn = flash.read('internal', 4096, 4096);
    expect(torn.some((v) => v === 0xff || v !== 0)).toBe(true);
    expect(torn.some((v) => v !== 0xff)).toBe(true);
    expect(flash.read('internal', 8192, 4096).every((v) => v === 0xff)).toBe(true);
    expect(Array.from(flash.eraseCounts('internal').subarray(0, 3))).toEqual([1, 1, 0]);
  });
});

describe('wear and driver failures', () => {
  it('a sector past its endurance fails its erases and writes; other sectors still work', () => {
    const flash = Flash.create(testBoard({ endurance: 3 }));
    for (let i = 0; i < 3; i++) flash.erase('internal', 0, 4096);
    expect(codeOf(() => flash.erase('internal', 0, 4096))).toBe('WORN_OUT');
    expect(codeOf(() => flash.write('internal', 0, new Uint8Array(4)))).toBe('WORN_OUT');
    flash.write('internal', 4096, new Uint8Array(4));
    expect(flash.eraseCounts('internal')[0]).toBe(3);
    expect(flash.opIndex).toBe(6);
  });

  it('an injected failure fails that op alone, without changing the flash', () => {
    const flash = Flash.create(testBoard());
    flash.armFailure(1);
    flash.write('internal', 0, new Uint8Array(4));
    expect(codeOf(() => flash.write('internal', 4, new Uint8Array(4)))).toBe('DEVICE_FAILURE');
    expect(Array.from(flash.read('internal', 4, 4))).toEqual([0xff, 0xff, 0xff, 0xff]);
    flash.write('internal', 4, new Uint8Array(4));
    expect(flash.opIndex).toBe(3);
  });
});

describe('clones and the journal', () => {
  it('a clone is independent in both directions (copy-on-write)', () => {
    const a = Flash.create(testBoard({ second: true }));
    a.write('internal', 0, Uint8Array.of(1, 2, 3, 4));
    const b = a.clone();
    b.write('internal', 4, Uint8Array.of(5, 6, 7, 8));
    a.write('spi', 0, Uint8Array.of(9));
    expect(Array.from(a.read('internal', 0, 8))).toEqual([1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff]);
    expect(Array.from(b.read('internal', 0, 8))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(b.read('spi', 0, 1)[0]).toBe(0xff);
    expect(a.contentEquals(b)).toBe(false);
    b.erase('internal', 0, 4096);
    a.erase('internal', 0, 4096);
    a.erase('spi', 0, 4096);
    expect(a.contentEquals(b)).toBe(true);
  });

  it('rebuild(k) gives the state after k ops, torn ops included', () => {
    const flash = Flash.create(testBoard());
    const dumps: Uint8Array[] = [flash.dump('internal')];
    flash.write('internal', 0, new Uint8Array(8).fill(0x11));
    dumps.push(flash.dump('internal'));
    flash.erase('internal', 0, 4096);
    dumps.push(flash.dump('internal'));
    flash.armPowerCut({ atOp: 3, kind: 'inside', seed: 3 });
    flash.write('internal', 16, new Uint8Array(8).fill(0x22));
    dumps.push(flash.dump('internal'));
    expect(() => flash.write('internal', 32, new Uint8Array(16).fill(0x33))).toThrow(PowerCut);
    flash.powerOn();
    dumps.push(flash.dump('internal'));
    flash.write('internal', 64, new Uint8Array(4).fill(0x44));
    dumps.push(flash.dump('internal'));
    expect(flash.journalLength).toBe(5);
    for (let k = 0; k <= 5; k++) {
      const rebuilt = flash.rebuild(k);
      expect(Buffer.compare(rebuilt.dump('internal'), dumps[k]!)).toBe(0);
      expect(rebuilt.opIndex).toBe(k);
    }
  });
});

describe('partitions as the bootloader sees them', () => {
  it('groups pages into MCUBOOT_LOGICAL_SECTOR_SIZE sectors for the slots, erased in one op', async () => {
    const { loadBoard } = await import('../../src/flash/board.js');
    const board = loadBoard('small-pages');
    const flash = Flash.create(board);
    const slot0 = flash.area('slot0');
    expect(board.mcuboot.logicalSectorSize).toBe(4096);
    expect(slot0.sectors.every((s) => s.size === 4096)).toBe(true);
    expect(slot0.sectors.length * 4096).toBe(slot0.size);
    const before = flash.opIndex;
    slot0.erase(slot0.sectors[1]!.offset, 4096);
    expect(flash.opIndex - before).toBe(1);
    expect(flash.area('storage').sectors[0]!.size).toBe(512);
  });
});
