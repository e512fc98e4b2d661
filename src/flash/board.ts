/**
 * Board flash profiles (sim-flash/boards/NAME.json): the zod schema, the loader and the checks that
 * a partition map is one MCUboot could actually run. Every rejection is an InputError whose
 * one-line message names the file, the field path and what was expected (ARCHITECTURE.md "Clear
 * errors"), because a board profile is user-written data like a scenario.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { InputError } from '../errors.js';
import type { BoardProfile, EraseValue, FlashDeviceSpec, Partition, PartitionName, Strategy } from './types.js';

export interface BoardOverrides {
  /** Program granularity for every flash device of the board (1, 2, 4, 8, 16 or 32). */
  writeSize?: number;
  /** Erase value for every flash device of the board. */
  eraseValue?: EraseValue;
}

const WRITE_SIZES = [1, 2, 4, 8, 16, 32] as const;
const MAX_ALIGNS = [8, 16, 32] as const;
const STRATEGIES = ['overwrite-only', 'swap-scratch', 'swap-move', 'swap-offset'] as const satisfies readonly Strategy[];
const PARTITION_NAMES = ['mcuboot', 'slot0', 'slot1', 'scratch', 'ota-state', 'storage'] as const satisfies readonly PartitionName[];
const NAME_RE = /^[a-z0-9][a-z0-9-]*$/;
const HEX_RE = /^0x[0-9a-f]+$/i;

// ---------------------------------------------------------------------------------------------
// Schema. Numbers may be JSON numbers or "0x..." strings: offsets and sizes read better in hex.

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (missing)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** A number field: a JSON number or a hex string, checked against `min` and integrality. */
function numberField(opts: { integer: boolean; min: number; exclusiveMin?: boolean; what?: string }) {
  const what = opts.what ?? (opts.integer ? `a whole number >= ${opts.min}` : `a number ${opts.exclusiveMin ? '>' : '>='} ${opts.min}`);
  return z.unknown().transform((v, ctx): number => {
    let n: number | undefined;
    if (typeof v === 'number' && Number.isFinite(v)) n = v;
    else if (typeof v === 'string' && HEX_RE.test(v)) n = Number.parseInt(v.slice(2), 16);
    const ok =
      n !== undefined &&
      (opts.integer ? Number.isSafeInteger(n) : n <= Number.MAX_SAFE_INTEGER) &&
      (opts.exclusiveMin ? n > opts.min : n >= opts.min);
    if (!ok || n === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected ${what} (a JSON number or a "0x..." hex string), got ${describe(v)}`, input: v });
      return z.NEVER;
    }
    return n;
  });
}

/** A number field restricted to a few values (write size, erase value, max align). */
function oneOf<T extends number>(values: readonly T[], label: (v: T) => string = String) {
  return numberField({ integer: true, min: 0, what: `one of ${values.map(label).join(', ')}` }).transform((n, ctx): T => {
    const hit = values.find((v) => v === n);
    if (hit === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected one of ${values.map(label).join(', ')}, got ${n}`, input: n });
      return z.NEVER;
    }
    return hit;
  });
}

const hex = (v: number): string => `0x${v.toString(16).padStart(2, '0')}`;
const size = numberField({ integer: true, min: 1, what: 'a size in bytes >= 1' });
const offset = numberField({ integer: true, min: 0, what: 'an offset in bytes >= 0' });
const positive = numberField({ integer: false, min: 0, exclusiveMin: true });
const text = z.string({ error: (iss) => `expected a string, got ${describe(iss.input)}` }).min(1, { error: 'expected a non-empty string' });

const sectorRunSchema = z.strictObject({
  size,
  count: numberField({ integer: true, min: 1 }),
  eraseMs: positive,
});

const deviceSchema = z.strictObject({
  id: text.regex(/^[A-Za-z0-9_-]+$/, { error: 'expected an id of letters, digits, "_" or "-"' }),
  sectors: z.array(sectorRunSchema, { error: (iss) => `expected an array of {size, count, eraseMs}, got ${describe(iss.input)}` }).min(1, {
    error: 'expected at least one sector run',
  }),
  writeSize: oneOf(WRITE_SIZES),
  eraseValue: oneOf([0xff, 0x00] as const, hex),
  writeUsPerBlock: positive,
  enduranceCycles: numberField({ integer: true, min: 1 }),
});

const partitionSchema = z.strictObject({ device: text, offset, size });

const partitionsSchema = z.strictObject({
  mcuboot: partitionSchema.optional(),
  slot0: partitionSchema,
  slot1: partitionSchema,
  scratch: partitionSchema.optional(),
  'ota-state': partitionSchema.optional(),
  storage: partitionSchema.optional(),
});

const strategySchema = z.enum(STRATEGIES, { error: (iss) => `expected one of ${STRATEGIES.join(', ')}, got ${describe(iss.input)}` });

const mcubootSchema = z.strictObject({
  maxSectors: numberField({ integer: true, min: 1 }),
  maxAlign: oneOf(MAX_ALIGNS),
  validatePrimary: z.boolean({ error: (iss) => `expected true or false, got ${describe(iss.input)}` }),
  strategies: z.array(strategySchema, { error: (iss) => `expected an array of strategies, got ${describe(iss.input)}` }).min(1, {
    error: 'expected at least one strategy',
  }),
  logicalSectorSize: size.optional(),
});

const boardSchema = z.strictObject({
  name: text.regex(NAME_RE, { error: 'expected a kebab-case name (lowercase letters, digits, "-")' }),
  description: text,
  source: text,
  flash: z.array(deviceSchema, { error: (iss) => `expected an array of flash devices, got ${describe(iss.input)}` }).min(1, {
    error: 'expected at least one flash device',
  }),
  partitions: partitionsSchema,
  mcuboot: mcubootSchema,
  nvCounter: numberField({ integer: true, min: 0 }).optional(),
});

type ParsedBoard = z.output<typeof boardSchema>;

/** "flash[0].writeSize" from zod's path. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(top level)' : out;
}

function formatIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys': {
      const where = issue.path.length > 0 ? `${formatPath(issue.path)}.` : '';
      const allowed = issue.path.length === 1 && issue.path[0] === 'partitions' ? ` (partitions are ${PARTITION_NAMES.join(', ')})` : '';
      return `${where}${issue.keys.join(', ')}: unknown field${issue.keys.length > 1 ? 's' : ''}${allowed}`;
    }
    case 'invalid_type':
      // Our custom `error` functions cover most fields; this is the fallback for objects.
      return `${formatPath(issue.path)}: ${issue.message.startsWith('Invalid input: ') ? `expected ${issue.expected}, got ${describe(issue.input)}` : issue.message}`;
    default:
      return `${formatPath(issue.path)}: ${issue.message}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Geometry helpers (exported: the flash model and the bootloader ask the same questions).

/** Bytes of a flash device. */
export function deviceSize(spec: Pick<FlashDeviceSpec, 'sectors'>): number {
  return spec.sectors.reduce((n, run) => n + run.size * run.count, 0);
}

/** Start offsets of every sector of a device, plus the device end (so boundaries are its members). */
function sectorBoundaries(spec: Pick<FlashDeviceSpec, 'sectors'>): number[] {
  const out = [0];
  let addr = 0;
  for (const run of spec.sectors) {
    for (let k = 0; k < run.count; k++) {
      addr += run.size;
      out.push(addr);
    }
  }
  return out;
}

/** Sizes of the hardware sectors inside [offset, offset+size) of a device (assumed aligned). */
function hardwareSectors(spec: Pick<FlashDeviceSpec, 'sectors'>, offset: number, size: number): number[] {
  const out: number[] = [];
  let addr = 0;
  for (const run of spec.sectors) {
    for (let k = 0; k < run.count; k++) {
      if (addr >= offset && addr < offset + size) out.push(run.size);
      addr += run.size;
    }
  }
  return out;
}

/**
 * The sector sizes the bootloader sees in a partition: the chip's own sectors, or runs of
 * mcuboot.logicalSectorSize when the board sets it (MCUBOOT_LOGICAL_SECTOR_SIZE).
 */
export function bootSectors(board: Pick<BoardProfile, 'flash' | 'partitions' | 'mcuboot'>, name: PartitionName): number[] {
  const part = board.partitions[name];
  if (!part) return [];
  const spec = board.flash.find((d) => d.id === part.device);
  if (!spec) return [];
  const logical = board.mcuboot.logicalSectorSize;
  if (logical !== undefined) return Array.from({ length: Math.floor(part.size / logical) }, () => logical);
  return hardwareSectors(spec, part.offset, part.size);
}

// ---------------------------------------------------------------------------------------------
// Semantic checks: what the schema cannot say. Each returns the first problem as "path: message".

function checkBoard(b: ParsedBoard, overridden: string): string | null {
  const devices = new Map<string, ParsedBoard['flash'][number]>();
  for (const [i, dev] of b.flash.entries()) {
    if (devices.has(dev.id)) return `flash[${i}].id: duplicate device id "${dev.id}"`;
    devices.set(dev.id, dev);
    for (const [j, run] of dev.sectors.entries()) {
      if (run.size % dev.writeSize !== 0) {
        return `flash[${i}].sectors[${j}].size: ${run.size} is not a multiple of the write size ${dev.writeSize}${overridden}`;
      }
    }
  }

  const parts = Object.entries(b.partitions).filter((e): e is [PartitionName, Partition] => e[1] !== undefined);
  for (const [name, p] of parts) {
    const dev = devices.get(p.device);
    if (!dev) return `partitions.${name}.device: unknown flash device "${p.device}" (devices: ${[...devices.keys()].join(', ')})`;
    const total = deviceSize(dev);
    if (p.offset + p.size > total) {
      return `partitions.${name}: 0x${p.offset.toString(16)}+0x${p.size.toString(16)} runs past the end of device "${dev.id}" (0x${total.toString(16)} bytes)`;
    }
    const bounds = new Set(sectorBoundaries(dev));
    if (!bounds.has(p.offset)) return `partitions.${name}.offset: 0x${p.offset.toString(16)} is not on a sector boundary of device "${dev.id}"`;
    if (!bounds.has(p.offset + p.size)) {
      return `partitions.${name}.size: ends at 0x${(p.offset + p.size).toString(16)}, not on a sector boundary of device "${dev.id}"`;
    }
  }
  for (let i = 0; i < parts.length; i++) {
    for (let j = i + 1; j < parts.length; j++) {
      const [na, a] = parts[i]!;
      const [nb, bb] = parts[j]!;
      if (a.device === bb.device && a.offset < bb.offset + bb.size && bb.offset < a.offset + a.size) {
        return `partitions.${nb}: overlaps partitions.${na} on device "${a.device}"`;
      }
    }
  }

  // The bootloader's areas: trailer alignment and sector bookkeeping apply to these only.
  const bootAreas = (['slot0', 'slot1', 'scratch'] as const).filter((n) => b.partitions[n] !== undefined);
  const mc = b.mcuboot;
  for (const name of bootAreas) {
    const dev = devices.get(b.partitions[name]!.device)!;
    if (mc.maxAlign < dev.writeSize) {
      return `mcuboot.maxAlign: ${mc.maxAlign} is smaller than the write size ${dev.writeSize} of device "${dev.id}" used by ${name}${overridden}; expected one of 8, 16, 32 and >= ${dev.writeSize}`;
    }
  }

  const logical = mc.logicalSectorSize;
  if (logical !== undefined) {
    // MCUboot's boot_verify_logical_sectors: every logical boundary must be a hardware boundary.
    for (const name of bootAreas) {
      const p = b.partitions[name]!;
      const dev = devices.get(p.device)!;
      let fill = 0;
      for (const s of hardwareSectors(dev, p.offset, p.size)) {
        if (s > logical || fill + s > logical) {
          return `mcuboot.logicalSectorSize: ${logical} bytes does not tile partitions.${name} (a ${s}-byte sector crosses a logical boundary)`;
        }
        fill = (fill + s) % logical;
      }
      if (fill !== 0) return `mcuboot.logicalSectorSize: partitions.${name} size 0x${p.size.toString(16)} is not a multiple of ${logical}`;
    }
  }

  const sec0 = bootSectors(b, 'slot0');
  const sec1 = bootSectors(b, 'slot1');
  for (const [name, secs] of [['slot0', sec0], ['slot1', sec1]] as const) {
    if (secs.length > mc.maxSectors) {
      return `mcuboot.maxSectors: ${mc.maxSectors} is smaller than the ${secs.length} sectors of ${name}; expected >= ${secs.length}`;
    }
  }

  const seen = new Set<Strategy>();
  for (const [i, strategy] of mc.strategies.entries()) {
    if (seen.has(strategy)) return `mcuboot.strategies[${i}]: "${strategy}" is listed twice`;
    seen.add(strategy);
    const why = slotsProblem(strategy, b, sec0, sec1);
    if (why) return `mcuboot.strategies[${i}]: the partition map cannot support ${strategy}: ${why}`;
  }
  return null;
}

const uniform = (secs: readonly number[]): boolean => secs.every((s) => s === secs[0]);

/**
 * Why MCUboot would refuse `strategy` on this board's partition map (its boot_slots_compatible for
 * that strategy), or null if the map allows it. A board lists the strategies its map allows and its
 * port offers; this answers for the map alone.
 */
export function strategyProblem(strategy: Strategy, board: Pick<BoardProfile, 'flash' | 'partitions' | 'mcuboot'>): string | null {
  return slotsProblem(strategy, board, bootSectors(board, 'slot0'), bootSectors(board, 'slot1'));
}

function slotsProblem(strategy: Strategy, b: Pick<BoardProfile, 'partitions'>, sec0: number[], sec1: number[]): string | null {
  switch (strategy) {
    case 'overwrite-only':
    case 'swap-scratch': {
      const scratch = b.partitions.scratch;
      if (strategy === 'swap-scratch' && !scratch) return 'it needs a scratch partition';
      // swap_scratch.c: the two slots must pair up into groups where several sectors of one side
      // fill exactly one sector of the other; each group must fit the scratch; totals must match.
      if (b.partitions.slot0.size !== b.partitions.slot1.size) {
        return `slot0 (0x${b.partitions.slot0.size.toString(16)}) and slot1 (0x${b.partitions.slot1.size.toString(16)}) differ in size`;
      }
      let i = 0;
      let j = 0;
      while (i < sec0.length || j < sec1.length) {
        let a = sec0[i++] ?? 0;
        let c = sec1[j++] ?? 0;
        const smallerIsPrimary = a < c;
        while (a !== c) {
          if (a < c && smallerIsPrimary && i < sec0.length) a += sec0[i++]!;
          else if (c < a && !smallerIsPrimary && j < sec1.length) c += sec1[j++]!;
          else return 'slot0 and slot1 sectors do not pair up (sector sizes are not multiples of each other in order)';
        }
        if (strategy === 'swap-scratch' && a > scratch!.size) {
          return `a ${a}-byte sector group does not fit the 0x${scratch!.size.toString(16)}-byte scratch`;
        }
      }
      return null;
    }
    case 'swap-move': {
      // MCUboot needs slot0 larger than the image by one sector (the move room); we require at
      // least two sectors and let slot0 have the same count as slot1 or exactly one more.
      if (sec0.length < 2) return `slot0 has ${sec0.length} sector(s), swap-move needs at least 2`;
      if (!uniform(sec0) || !uniform(sec1) || sec0[0] !== sec1[0]) return 'swap-move needs one sector size in both slots';
      if (sec0.length !== sec1.length && sec0.length !== sec1.length + 1) {
        return `slot0 has ${sec0.length} sectors, slot1 ${sec1.length}; swap-move needs slot0 = slot1 or slot1 + 1`;
      }
      return null;
    }
    case 'swap-offset': {
      // The mirror image of swap-move: slot1 holds the image one sector in.
      if (sec1.length < 2) return `slot1 has ${sec1.length} sector(s), swap-offset needs at least 2`;
      if (!uniform(sec0) || !uniform(sec1) || sec0[0] !== sec1[0]) return 'swap-offset needs one sector size in both slots';
      if (sec1.length !== sec0.length && sec1.length !== sec0.length + 1) {
        return `slot1 has ${sec1.length} sectors, slot0 ${sec0.length}; swap-offset needs slot1 = slot0 or slot0 + 1`;
      }
      return null;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Public API.

/**
 * Validate a board profile (the parsed JSON of a board file, or a BoardProfile object) and return
 * it in canonical form (numbers, not hex strings). `sourceName` names it in error messages.
 * Overrides, if given, replace every device's write size / erase value before the checks.
 */
export function parseBoard(json: unknown, sourceName: string, overrides: BoardOverrides = {}): BoardProfile {
  const fail = (msg: string): never => {
    throw new InputError('BAD_BOARD', `${sourceName}: ${msg}`);
  };
  const result = boardSchema.safeParse(json, { reportInput: true });
  if (!result.success) {
    const issues = result.error.issues;
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
    return fail(`${formatIssue(issues[0]!)}${more}`);
  }
  const board = result.data;

  const notes: string[] = [];
  if (overrides.writeSize !== undefined) {
    const ws = WRITE_SIZES.find((w) => w === overrides.writeSize);
    if (ws === undefined) fail(`overrides.writeSize: expected one of ${WRITE_SIZES.join(', ')}, got ${describe(overrides.writeSize)}`);
    // Timings stay per write block: the override models another programming mode of the same part.
    for (const dev of board.flash) dev.writeSize = ws!;
    notes.push(`writeSize=${ws}`);
  }
  if (overrides.eraseValue !== undefined) {
    const ev: unknown = overrides.eraseValue;
    if (ev !== 0x00 && ev !== 0xff) fail(`overrides.eraseValue: expected 0x00 or 0xff, got ${describe(ev)}`);
    for (const dev of board.flash) dev.eraseValue = overrides.eraseValue;
    notes.push(`eraseValue=${hex(overrides.eraseValue)}`);
  }
  const problem = checkBoard(board, notes.length > 0 ? ` (after overrides ${notes.join(', ')})` : '');
  if (problem) fail(problem);

  // Rebuild in the documented key order, dropping absent optionals (no `undefined` members).
  const partitions = {} as BoardProfile['partitions'];
  for (const name of PARTITION_NAMES) {
    const p = board.partitions[name];
    if (p) partitions[name] = { device: p.device, offset: p.offset, size: p.size };
  }
  const profile: BoardProfile = {
    name: board.name,
    description: board.description,
    source: board.source,
    flash: board.flash.map((d) => ({
      id: d.id,
      sectors: d.sectors.map((r) => ({ size: r.size, count: r.count, eraseMs: r.eraseMs })),
      writeSize: d.writeSize,
      eraseValue: d.eraseValue,
      writeUsPerBlock: d.writeUsPerBlock,
      enduranceCycles: d.enduranceCycles,
    })),
    partitions,
    mcuboot: {
      maxSectors: board.mcuboot.maxSectors,
      maxAlign: board.mcuboot.maxAlign,
      validatePrimary: board.mcuboot.validatePrimary,
      strategies: [...board.mcuboot.strategies],
      ...(board.mcuboot.logicalSectorSize !== undefined ? { logicalSectorSize: board.mcuboot.logicalSectorSize } : {}),
    },
    ...(board.nvCounter !== undefined ? { nvCounter: board.nvCounter } : {}),
  };
  return profile;
}

/**
 * The package's sim-flash/boards, found by walking up from `start` to the first directory with a
 * package.json and that folder. Walking (not a fixed "../..") is what makes the same code work
 * from src/flash/ (vitest) and from dist/src/flash/ (after tsc). Null if there is none.
 */
export function findBoardsDir(start: string): string | null {
  let dir = start;
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, 'sim-flash', 'boards');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

let boardsDirCache: string | null = null;

/** sim-flash/boards of this package (the shipped board profiles). */
export function boardsDir(): string {
  if (boardsDirCache !== null) return boardsDirCache;
  const here = dirname(fileURLToPath(import.meta.url));
  const found = findBoardsDir(here);
  if (found === null) throw new InputError('NO_BOARDS_DIR', `cannot find sim-flash/boards in any folder above ${here}`);
  boardsDirCache = found;
  return found;
}

/** Names of the shipped boards, sorted. */
export function listBoards(): string[] {
  return readdirSync(boardsDir())
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/**
 * Load a board: a bare name (`nrf52840`) from sim-flash/boards, or a path (ends in .json or has a
 * slash) to the user's own profile. Overrides set the write size / erase value of every device.
 */
export function loadBoard(nameOrPath: string, overrides: BoardOverrides = {}): BoardProfile {
  const isPath = nameOrPath.endsWith('.json') || nameOrPath.includes('/') || nameOrPath.includes('\\');
  let file: string;
  let shown: string;
  if (isPath) {
    file = nameOrPath;
    shown = nameOrPath;
    if (!existsSync(file)) throw new InputError('UNKNOWN_BOARD', `${shown}: no such board file`);
  } else {
    const known = listBoards();
    if (!NAME_RE.test(nameOrPath) || !known.includes(nameOrPath)) {
      throw new InputError('UNKNOWN_BOARD', `unknown board "${nameOrPath}"; known boards: ${known.join(', ')}`);
    }
    file = join(boardsDir(), `${nameOrPath}.json`);
    // Show the path as the repository has it, not the absolute one of this machine.
    shown = relative(dirname(dirname(boardsDir())), file) || basename(file);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError('UNKNOWN_BOARD', `${shown}: cannot read board file (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError('BAD_BOARD', `${shown}: malformed JSON: ${(e as Error).message}`);
  }
  return parseBoard(json, shown, overrides);
}
