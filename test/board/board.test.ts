/**
 * Board profiles: every shipped board loads, the MCUboot-simulator boards carry the sim's exact
 * geometry, overrides work and are re-validated, and every rejection rule names its field.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { boardsDir, bootSectors, deviceSize, findBoardsDir, listBoards, loadBoard, parseBoard, strategyProblem } from '../../src/flash/board.js';
import type { BoardProfile, Strategy } from '../../src/flash/types.js';

const SIM_BOARDS = [
  'stm32f4',
  'stm32f4-spi-flash',
  'stm32f769',
  'k64f',
  'k64f-big',
  'k64f-multi',
  'nrf52840',
  'nrf52840-spi-flash',
  'nrf52840-unequal-slots',
  'nrf52840-unequal-slots-larger-slot1',
  'psoc-edge-e8x',
  'small-pages',
];
const REAL_BOARDS = ['nrf52840dk', 'nrf9160dk', 'esp32', 'stm32l4', 'stm32l0'];
const K = 1024;

/** Run `fn`, expect an InputError, return it. */
function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected an InputError, nothing was thrown');
}

describe('shipped boards', () => {
  it('listBoards returns every shipped profile, sorted', () => {
    const names = listBoards();
    expect(names).toEqual([...SIM_BOARDS, ...REAL_BOARDS].sort());
  });

  it.each([...SIM_BOARDS, ...REAL_BOARDS])('%s loads, is named after its file and has every partition', (name) => {
    const b = loadBoard(name);
    expect(b.name).toBe(name);
    expect(b.source.length).toBeGreaterThan(40);
    for (const p of ['mcuboot', 'slot0', 'slot1', 'ota-state', 'storage'] as const) expect(b.partitions[p], p).toBeDefined();
    // Numbers come out canonical (hex strings parsed) and a loaded profile re-validates unchanged,
    // which is what a flash sidecar relies on.
    expect(typeof b.partitions.slot0.offset).toBe('number');
    expect(parseBoard(b, 'reparse')).toEqual(b);
    // Whatever strategies a board lists, its map must pass the check for each.
    for (const s of b.mcuboot.strategies) expect(strategyProblem(s, b), s).toBeNull();
  });

  it('nrf52840 has exactly the simulator map', () => {
    const b = loadBoard('nrf52840');
    expect(b.flash).toEqual([{ id: 'internal', sectors: [{ size: 4096, count: 128, eraseMs: 85 }], writeSize: 4, eraseValue: 0xff, writeUsPerBlock: 41, enduranceCycles: 10_000 }]);
    expect(b.partitions).toEqual({
      mcuboot: { device: 'internal', offset: 0, size: 0x8000 },
      slot0: { device: 'internal', offset: 0x8000, size: 0x34000 },
      slot1: { device: 'internal', offset: 0x3c000, size: 0x34000 },
      scratch: { device: 'internal', offset: 0x70000, size: 0xd000 },
      'ota-state': { device: 'internal', offset: 0x7d000, size: 0x2000 },
      storage: { device: 'internal', offset: 0x7f000, size: 0x1000 },
    });
    expect(b.mcuboot).toEqual({ maxSectors: 128, maxAlign: 8, validatePrimary: false, strategies: ['swap-scratch', 'overwrite-only', 'swap-move', 'swap-offset'] });
    expect(b.nvCounter).toBeUndefined();
  });

  it('stm32f4 has the mixed-sector map of the simulator', () => {
    const b = loadBoard('stm32f4');
    const dev = b.flash[0]!;
    expect(dev.sectors.map((r) => [r.size / K, r.count])).toEqual([[16, 4], [64, 1], [32, 2], [64, 1], [32, 2], [64, 1], [128, 1]]);
    expect(deviceSize(dev)).toBe(512 * K);
    expect(dev.writeSize).toBe(1);
    expect(dev.sectors.map((r) => r.eraseMs)).toEqual([800, 2400, 1333, 2400, 1333, 2400, 4000]);
    expect(b.partitions.slot0).toEqual({ device: 'internal', offset: 0x20000, size: 0x20000 });
    expect(b.partitions.slot1).toEqual({ device: 'internal', offset: 0x40000, size: 0x20000 });
    expect(b.partitions.scratch).toEqual({ device: 'internal', offset: 0x60000, size: 0x20000 });
    expect(bootSectors(b, 'slot0')).toEqual([32 * K, 32 * K, 64 * K]);
    expect(b.mcuboot.strategies).toEqual(['swap-scratch', 'overwrite-only']);
  });

  it('nrf52840-spi-flash puts slot1 and the scratch on a second device', () => {
    const b = loadBoard('nrf52840-spi-flash');
    expect(b.flash.map((d) => [d.id, d.sectors, d.writeSize, d.eraseValue])).toEqual([
      ['internal', [{ size: 4096, count: 128, eraseMs: 85 }], 4, 0xff],
      ['spi', [{ size: 8192, count: 64, eraseMs: 480 }], 4, 0xff],
    ]);
    expect(b.flash[1]!.writeUsPerBlock).toBe(156.25);
    expect(b.partitions.slot0).toEqual({ device: 'internal', offset: 0x8000, size: 0x68000 });
    expect(b.partitions.slot1).toEqual({ device: 'spi', offset: 0, size: 0x68000 });
    expect(b.partitions.scratch).toEqual({ device: 'spi', offset: 0x68000, size: 0x18000 });
    expect(bootSectors(b, 'slot1')).toHaveLength(52);
  });

  // sim/src/image.rs make_device: per device, the chip sizes and (offset, size, device index) of
  // Image0, Image1 and ImageScratch. Our extra sectors (ota-state/storage room) are only allowed at the end.
  const SIM_GEOMETRY: Record<string, { chips: number[][]; slot0: number[]; slot1: number[]; scratch?: number[]; extendedTo?: number }> = {
    stm32f4: { chips: [[16, 16, 16, 16, 64, 32, 32, 64, 32, 32, 64, 128]], slot0: [0x20000, 0x20000, 0], slot1: [0x40000, 0x20000, 0], scratch: [0x60000, 0x20000, 0] },
    'stm32f4-spi-flash': {
      chips: [[16, 16, 16, 16, 64, 32, 32, 64, 32, 32, 64, 128], Array<number>(64).fill(8)],
      slot0: [0x20000, 0x20000, 0],
      slot1: [0, 0x20000, 1],
      scratch: [0x20000, 0x20000, 1],
    },
    stm32f769: {
      chips: [[16, 16, 16, 16, 64, 128, 128, 128, 128, 128, 128, 128, 16, 16, 16, 16, 64, 128, 128, 128, 128, 128, 128, 128]],
      slot0: [0, 0x80000, 0],
      slot1: [0x100000, 0x80000, 0],
      scratch: [0x80000, 0x20000, 0],
    },
    k64f: { chips: [Array<number>(128).fill(4)], slot0: [0x20000, 0x20000, 0], slot1: [0x40000, 0x20000, 0], scratch: [0x60000, 0x1000, 0] },
    'k64f-big': { chips: [Array<number>(128).fill(4)], slot0: [0x20000, 0x20000, 0], slot1: [0x40000, 0x20000, 0], scratch: [0x60000, 0x20000, 0] },
    'k64f-multi': { chips: [Array<number>(256).fill(4)], slot0: [0x20000, 0x20000, 0], slot1: [0x40000, 0x20000, 0], scratch: [0x60000, 0x1000, 0] },
    nrf52840: { chips: [Array<number>(128).fill(4)], slot0: [0x8000, 0x34000, 0], slot1: [0x3c000, 0x34000, 0], scratch: [0x70000, 0xd000, 0] },
    'nrf52840-spi-flash': { chips: [Array<number>(128).fill(4), Array<number>(64).fill(8)], slot0: [0x8000, 0x68000, 0], slot1: [0, 0x68000, 1], scratch: [0x68000, 0x18000, 1] },
    'nrf52840-unequal-slots': { chips: [Array<number>(128).fill(4)], slot0: [0x8000, 0x3c000, 0], slot1: [0x44000, 0x3b000, 0], extendedTo: 132 },
    'nrf52840-unequal-slots-larger-slot1': { chips: [Array<number>(128).fill(4)], slot0: [0x8000, 0x3b000, 0], slot1: [0x43000, 0x3c000, 0], extendedTo: 132 },
    'psoc-edge-e8x': { chips: [Array<number>(96).fill(4)], slot0: [0x20000, 0x10000, 0], slot1: [0x30000, 0x10000, 0], scratch: [0x40000, 0x2000, 0] },
    'small-pages': { chips: [Array<number>(1024).fill(0.5)], slot0: [0x20000, 0x20000, 0], slot1: [0x40000, 0x20000, 0], scratch: [0x60000, 0x4000, 0] },
  };

  it.each(SIM_BOARDS)('%s matches make_device in MCUboot\'s simulator', (name) => {
    const sim = SIM_GEOMETRY[name]!;
    const b = loadBoard(name);
    expect(b.flash).toHaveLength(sim.chips.length);
    sim.chips.forEach((chip, i) => {
      const ours = b.flash[i]!.sectors.flatMap((r) => Array<number>(r.count).fill(r.size / K));
      if (i === 0 && sim.extendedTo !== undefined) {
        expect(ours).toHaveLength(sim.extendedTo);
        expect(ours.slice(0, chip.length)).toEqual(chip);
      } else {
        expect(ours).toEqual(chip);
      }
    });
    const area = (p: { device: string; offset: number; size: number }): number[] => [p.offset, p.size, b.flash.findIndex((d) => d.id === p.device)];
    expect(area(b.partitions.slot0)).toEqual(sim.slot0);
    expect(area(b.partitions.slot1)).toEqual(sim.slot1);
    if (sim.scratch) expect(area(b.partitions.scratch!)).toEqual(sim.scratch);
    else expect(b.partitions.scratch).toBeUndefined();
    expect(b.mcuboot.maxSectors).toBe(128); // MCUBOOT_MAX_IMG_SECTORS in sim/mcuboot-sys/build.rs
    expect(b.mcuboot.maxAlign).toBe(8);
    expect(b.source).toContain('make_device');
  });

  // The caps each device's make_device reports as unsupported (upgrade strategies only).
  const SIM_UNSUPPORTED: Record<string, Strategy[]> = {
    stm32f4: ['swap-move', 'swap-offset'],
    'stm32f4-spi-flash': ['swap-move', 'swap-offset'],
    stm32f769: ['swap-move', 'swap-offset'],
    k64f: [],
    'k64f-big': ['swap-move', 'swap-offset'],
    'k64f-multi': [],
    nrf52840: [],
    'nrf52840-spi-flash': ['swap-move', 'swap-offset'],
    'nrf52840-unequal-slots': ['swap-scratch', 'overwrite-only', 'swap-offset'],
    'nrf52840-unequal-slots-larger-slot1': ['swap-scratch', 'overwrite-only', 'swap-move'],
    'psoc-edge-e8x': ['swap-scratch', 'overwrite-only', 'swap-move'],
    'small-pages': [],
  };
  const ALL: Strategy[] = ['overwrite-only', 'swap-scratch', 'swap-move', 'swap-offset'];

  it.each(SIM_BOARDS)('%s lists exactly the strategies the simulator runs it with', (name) => {
    const b = loadBoard(name);
    const expected = ALL.filter((s) => !SIM_UNSUPPORTED[name]!.includes(s));
    expect([...b.mcuboot.strategies].sort()).toEqual([...expected].sort());
  });

  it.each(SIM_BOARDS.filter((n) => n !== 'psoc-edge-e8x'))('%s: the map checks reject exactly what the simulator excludes', (name) => {
    // PSOC Edge is excluded by its port (swap-offset only), not by its map, so it is not here.
    const b = loadBoard(name);
    const allowed = ALL.filter((s) => strategyProblem(s, b) === null);
    expect(allowed.sort()).toEqual(ALL.filter((s) => !SIM_UNSUPPORTED[name]!.includes(s)).sort());
  });

  it('real boards have their documented geometry', () => {
    const dk = loadBoard('nrf52840dk');
    expect(dk.flash.map((d) => [d.id, deviceSize(d)])).toEqual([['internal', 1024 * K], ['qspi', 8192 * K]]);
    expect(dk.partitions.slot1.device).toBe('qspi');
    expect(dk.partitions.slot0.size).toBe(dk.partitions.slot1.size);
    const l4 = loadBoard('stm32l4');
    expect([l4.flash[0]!.writeSize, l4.flash[0]!.sectors[0]!.size]).toEqual([8, 2048]);
    const esp = loadBoard('esp32');
    expect([esp.mcuboot.maxAlign, esp.mcuboot.maxSectors, esp.partitions.slot0.offset, esp.partitions.slot1.offset]).toEqual([32, 512, 0x20000, 0x170000]);
    expect(loadBoard('nrf9160dk').nvCounter).toBe(0);
    // The 0x00-erasing part.
    const l0 = loadBoard('stm32l0');
    expect(l0.flash.map((d) => d.eraseValue)).toEqual([0x00]);
    expect(REAL_BOARDS.flatMap((n) => loadBoard(n).flash.map((d) => d.eraseValue)).filter((v) => v === 0)).toHaveLength(1);
  });

  it('logical sectors group small pages (small-pages, k64f-big)', () => {
    expect(bootSectors(loadBoard('small-pages'), 'slot0')).toEqual(Array<number>(32).fill(4096));
    expect(bootSectors(loadBoard('k64f-big'), 'slot0')).toEqual([0x20000]);
    // Without them small-pages would need 256 sectors per slot, over its maxSectors of 128.
    const json = boardJson('small-pages');
    delete (json.mcuboot as Record<string, unknown>)['logicalSectorSize'];
    expect(inputError(() => parseBoard(json, 'x.json')).message).toMatch(/mcuboot\.maxSectors: 128 is smaller than the 256 sectors of slot0/);
  });
});

describe('board directory', () => {
  it('is found from src/flash and from dist/src/flash alike', () => {
    const root = dirname(dirname(boardsDir()));
    expect(boardsDir()).toBe(join(root, 'sim-flash', 'boards'));
    expect(findBoardsDir(join(root, 'src', 'flash'))).toBe(boardsDir());
    expect(findBoardsDir(join(root, 'dist', 'src', 'flash'))).toBe(boardsDir());
    expect(findBoardsDir(tmpdir())).toBeNull();
    expect(dirname(fileURLToPath(import.meta.url))).toBe(join(root, 'test', 'board'));
  });
});

// A small valid profile written the way a user would (hex strings), mutated by the rejection tests.
function baseJson(): Record<string, unknown> {
  return {
    name: 'my-board',
    description: 'test',
    source: 'test',
    flash: [
      { id: 'internal', sectors: [{ size: '0x1000', count: 32, eraseMs: 85 }], writeSize: 4, eraseValue: '0xff', writeUsPerBlock: 41, enduranceCycles: 10000 },
      { id: 'spi', sectors: [{ size: '0x1000', count: 16, eraseMs: 240 }], writeSize: 1, eraseValue: '0xFF', writeUsPerBlock: 39, enduranceCycles: 100000 },
    ],
    partitions: {
      mcuboot: { device: 'internal', offset: '0x0', size: '0x4000' },
      slot0: { device: 'internal', offset: '0x4000', size: '0xa000' },
      slot1: { device: 'internal', offset: '0xe000', size: '0xa000' },
      scratch: { device: 'internal', offset: '0x18000', size: '0x2000' },
      'ota-state': { device: 'spi', offset: 0, size: 8192 },
      storage: { device: 'spi', offset: '0x2000', size: '0x4000' },
    },
    mcuboot: { maxSectors: 16, maxAlign: 8, validatePrimary: true, strategies: ['swap-scratch', 'swap-move', 'overwrite-only'] },
  };
}

function boardJson(name: string): Record<string, unknown> {
  return JSON.parse(JSON.stringify(loadBoard(name))) as Record<string, unknown>;
}

/** Mutate a copy of baseJson at a dotted path ("flash.0.writeSize"); `undefined` deletes. */
function mutated(path: string, value: unknown): Record<string, unknown> {
  const json = baseJson();
  const keys = path.split('.');
  let obj = json as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) obj = obj[k] as Record<string, unknown>;
  const last = keys[keys.length - 1]!;
  if (value === undefined) delete obj[last];
  else obj[last] = value;
  return json;
}

describe('parseBoard', () => {
  it('accepts hex strings and numbers and returns numbers', () => {
    const b = parseBoard(baseJson(), 'my-board.json');
    expect(b.partitions.slot0).toEqual({ device: 'internal', offset: 0x4000, size: 0xa000 });
    expect(b.partitions['ota-state']).toEqual({ device: 'spi', offset: 0, size: 0x2000 });
    expect(b.flash.map((d) => d.eraseValue)).toEqual([0xff, 0xff]);
    expect(b.flash[0]!.sectors).toEqual([{ size: 4096, count: 32, eraseMs: 85 }]);
  });

  const cases: [string, string, unknown, RegExp][] = [
    ['missing field', 'flash.0.writeSize', undefined, /flash\[0\]\.writeSize: expected one of 1, 2, 4, 8, 16, 32 .*missing/],
    ['wrong type (name)', 'name', 5, /name: expected a string, got 5/],
    ['wrong type (validatePrimary)', 'mcuboot.validatePrimary', 'yes', /mcuboot\.validatePrimary: expected true or false, got "yes"/],
    ['not a hex string', 'partitions.slot0.offset', '0xZZ', /partitions\.slot0\.offset: expected an offset .*"0x\.\.\." hex string\), got "0xZZ"/],
    ['writeSize not allowed', 'flash.0.writeSize', 3, /flash\[0\]\.writeSize: expected one of 1, 2, 4, 8, 16, 32, got 3/],
    ['eraseValue not 0x00/0xff', 'flash.1.eraseValue', '0x80', /flash\[1\]\.eraseValue: expected one of 0xff, 0x00, got 128/],
    ['maxAlign not 8/16/32', 'mcuboot.maxAlign', 4, /mcuboot\.maxAlign: expected one of 8, 16, 32, got 4/],
    ['unknown strategy', 'mcuboot.strategies', ['swap-magic'], /mcuboot\.strategies\[0\]: expected one of overwrite-only, swap-scratch, swap-move, swap-offset, got "swap-magic"/],
    ['empty strategies', 'mcuboot.strategies', [], /mcuboot\.strategies: expected at least one strategy/],
    ['unknown partition', 'partitions.slot2', { device: 'internal', offset: 0, size: 4096 }, /partitions\.slot2: unknown field \(partitions are mcuboot, slot0, slot1, scratch, ota-state, storage\)/],
    ['unknown field in a device', 'flash.0.speed', 3, /flash\[0\]\.speed: unknown field/],
    ['bad name', 'name', 'My Board', /name: expected a kebab-case name/],
    ['negative erase time', 'flash.0.sectors', [{ size: 4096, count: 32, eraseMs: 0 }], /flash\[0\]\.sectors\[0\]\.eraseMs: expected a number > 0/],
    ['partition on unknown device', 'partitions.slot1.device', 'qspi', /partitions\.slot1\.device: unknown flash device "qspi" \(devices: internal, spi\)/],
    ['partition out of the device', 'partitions.storage', { device: 'spi', offset: '0xe000', size: '0x4000' }, /partitions\.storage: 0xe000\+0x4000 runs past the end of device "spi" \(0x10000 bytes\)/],
    ['partition not starting on a sector', 'partitions.slot0.offset', '0x4800', /partitions\.slot0\.offset: 0x4800 is not on a sector boundary of device "internal"/],
    ['partition not ending on a sector', 'partitions.scratch.size', '0x1800', /partitions\.scratch\.size: ends at 0x19800, not on a sector boundary of device "internal"/],
    ['overlapping partitions', 'partitions.scratch.offset', '0x17000', /partitions\.scratch: overlaps partitions\.slot1 on device "internal"/],
    ['maxSectors below a slot', 'mcuboot.maxSectors', 9, /mcuboot\.maxSectors: 9 is smaller than the 10 sectors of slot0; expected >= 10/],
    ['maxAlign below a slot write size', 'flash.0.writeSize', 16, /mcuboot\.maxAlign: 8 is smaller than the write size 16 of device "internal" used by slot0/],
    ['swap-scratch without scratch', 'partitions.scratch', undefined, /mcuboot\.strategies\[0\]: the partition map cannot support swap-scratch: it needs a scratch partition/],
    ['duplicate strategy', 'mcuboot.strategies', ['swap-move', 'swap-move'], /mcuboot\.strategies\[1\]: "swap-move" is listed twice/],
    ['nvCounter negative', 'nvCounter', -1, /nvCounter: expected a whole number >= 0/],
    ['logical sector that does not tile', 'mcuboot.logicalSectorSize', '0x1800', /mcuboot\.logicalSectorSize: 6144 bytes does not tile partitions\.slot0 \(a 4096-byte sector crosses a logical boundary\)/],
    ['logical sector that does not divide a slot', 'mcuboot.logicalSectorSize', '0x3000', /mcuboot\.logicalSectorSize: partitions\.slot0 size 0xa000 is not a multiple of 12288/],
  ];

  it.each(cases)('rejects: %s', (_what, path, value, pattern) => {
    const err = inputError(() => parseBoard(mutated(path, value), 'boards/my-board.json'));
    expect(err.code).toBe('BAD_BOARD');
    expect(err.exitCode).toBe(2);
    expect(err.message.startsWith('boards/my-board.json: ')).toBe(true);
    expect(err.message).not.toContain('\n');
    expect(err.message).toMatch(pattern);
  });

  it('rejects swap-move when slot0 has fewer than two sectors, naming MCUboot\'s rule', () => {
    const json = baseJson();
    const parts = json.partitions as Record<string, Record<string, unknown>>;
    parts['slot0'] = { device: 'internal', offset: '0x4000', size: '0x1000' };
    parts['slot1'] = { device: 'internal', offset: '0x5000', size: '0x1000' };
    (json.mcuboot as Record<string, unknown>)['strategies'] = ['swap-move'];
    expect(inputError(() => parseBoard(json, 'b.json')).message).toBe(
      'b.json: mcuboot.strategies[0]: the partition map cannot support swap-move: slot0 has 1 sector(s), swap-move needs at least 2',
    );
  });

  it('rejects swap-move across different sector sizes and swap-scratch when a sector does not fit the scratch', () => {
    const json = baseJson();
    (json.flash as Record<string, unknown>[])[1]!['sectors'] = [{ size: '0x2000', count: 8, eraseMs: 480 }];
    const parts = json.partitions as Record<string, Record<string, unknown>>;
    parts['slot1'] = { device: 'spi', offset: '0x6000', size: '0xa000' };
    parts['ota-state'] = { device: 'spi', offset: 0, size: '0x4000' };
    delete parts['storage'];
    (json.mcuboot as Record<string, unknown>)['strategies'] = ['swap-move'];
    expect(inputError(() => parseBoard(json, 'b.json')).message).toMatch(/cannot support swap-move: swap-move needs one sector size in both slots/);
    (json.mcuboot as Record<string, unknown>)['strategies'] = ['swap-scratch'];
    parts['scratch'] = { device: 'internal', offset: '0x18000', size: '0x1000' };
    expect(inputError(() => parseBoard(json, 'b.json')).message).toMatch(/cannot support swap-scratch: a 8192-byte sector group does not fit the 0x1000-byte scratch/);
    parts['scratch'] = { device: 'internal', offset: '0x18000', size: '0x2000' };
    expect(parseBoard(json, 'b.json').mcuboot.strategies).toEqual(['swap-scratch']);
  });

  it('rejects overwrite-only and swap-scratch on slots of different sizes', () => {
    const json = boardJson('nrf52840-unequal-slots');
    (json.mcuboot as Record<string, unknown>)['strategies'] = ['overwrite-only'];
    expect(inputError(() => parseBoard(json, 'u.json')).message).toBe(
      'u.json: mcuboot.strategies[0]: the partition map cannot support overwrite-only: slot0 (0x3c000) and slot1 (0x3b000) differ in size',
    );
  });

  it('reports how many more problems there are', () => {
    const json = mutated('name', 5);
    (json.flash as Record<string, unknown>[])[0]!['writeSize'] = 3;
    expect(inputError(() => parseBoard(json, 'b.json')).message).toMatch(/^b\.json: name: expected a string, got 5 \(and 1 more problem\)$/);
  });

  it('rejects a non-object', () => {
    expect(inputError(() => parseBoard([], 'b.json')).message).toMatch(/^b\.json: \(top level\): expected object, got an array/);
  });
});

describe('loadBoard', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ota-sim-board-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rejects an unknown board, listing the known ones', () => {
    const err = inputError(() => loadBoard('nrf99999'));
    expect(err.code).toBe('UNKNOWN_BOARD');
    expect(err.message).toBe(`unknown board "nrf99999"; known boards: ${listBoards().join(', ')}`);
  });

  it('loads a path and rejects a missing one', () => {
    const file = join(dir, 'mine.json');
    writeFileSync(file, JSON.stringify(baseJson()));
    expect(loadBoard(file).name).toBe('my-board');
    const err = inputError(() => loadBoard(join(dir, 'absent.json')));
    expect(err.code).toBe('UNKNOWN_BOARD');
    expect(err.message).toContain('absent.json: no such board file');
  });

  it('names the file in a malformed-JSON error', () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ "name": "x", ');
    const err = inputError(() => loadBoard(file));
    expect(err.code).toBe('BAD_BOARD');
    expect(err.message).toMatch(/broken\.json: malformed JSON: /);
    expect(err.message).not.toContain('\n');
  });

  it('names a user file by the path it was given', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify(mutated('mcuboot.maxAlign', 12)));
    expect(inputError(() => loadBoard(file)).message).toBe(`${file}: mcuboot.maxAlign: expected one of 8, 16, 32, got 12`);
  });
});

describe('overrides', () => {
  it('apply to every device of the board', () => {
    const b = loadBoard('nrf52840-spi-flash', { writeSize: 8, eraseValue: 0x00 });
    expect(b.flash.map((d) => [d.writeSize, d.eraseValue])).toEqual([
      [8, 0x00],
      [8, 0x00],
    ]);
    // Everything else is untouched, and the unmodified board is not affected (no shared state).
    expect(b.partitions).toEqual(loadBoard('nrf52840-spi-flash').partitions);
    expect(loadBoard('nrf52840-spi-flash').flash.map((d) => d.writeSize)).toEqual([4, 4]);
  });

  it.each([1, 2, 4, 8])('run every simulator board at write size %i with both erase values, as MCUboot\'s simulator does', (ws) => {
    for (const name of SIM_BOARDS) {
      for (const ev of [0x00, 0xff] as const) {
        const b = loadBoard(name, { writeSize: ws, eraseValue: ev });
        expect(b.flash.every((d) => d.writeSize === ws && d.eraseValue === ev)).toBe(true);
      }
    }
  });

  it('are validated themselves', () => {
    expect(inputError(() => loadBoard('nrf52840', { writeSize: 3 })).message).toBe('sim-flash/boards/nrf52840.json: overrides.writeSize: expected one of 1, 2, 4, 8, 16, 32, got 3');
    expect(inputError(() => loadBoard('nrf52840', { eraseValue: 0x12 as unknown as 0xff })).message).toBe('sim-flash/boards/nrf52840.json: overrides.eraseValue: expected 0x00 or 0xff, got 18');
  });

  it('must leave a valid board: a write size above maxAlign is refused, naming the override', () => {
    const err = inputError(() => loadBoard('nrf52840', { writeSize: 16 }));
    expect(err.message).toBe(
      'sim-flash/boards/nrf52840.json: mcuboot.maxAlign: 8 is smaller than the write size 16 of device "internal" used by slot0 (after overrides writeSize=16); expected one of 8, 16, 32 and >= 16',
    );
    // esp32 runs MCUboot with BOOT_MAX_ALIGN 32, so 32-byte writes (flash encryption) are fine there.
    expect(loadBoard('esp32', { writeSize: 32 }).flash[0]!.writeSize).toBe(32);
  });

  it('keep the board as it was when empty', () => {
    const plain: BoardProfile = loadBoard('stm32l0');
    expect(loadBoard('stm32l0', {})).toEqual(plain);
  });
});
