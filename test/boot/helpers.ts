/**
 * Test helpers for the bootloader: the nrf52840 layout of MCUboot's simulator (the board the
 * conformance dumps come from), dump loading, and a flash built from a dump.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Flash } from '../../src/flash/flash.js';
import { loadBoard, listBoards } from '../../src/flash/board.js';
import type { BoardProfile, Strategy } from '../../src/flash/types.js';
import { parseKeyPem } from '../../src/image/keys.js';
import type { PublicKey } from '../../src/image/keys.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'mcuboot');

export interface Layout {
  strategy: Strategy;
  align: number;
  erased_val: number;
  flash_size: number;
  sector_size: number;
  slot0: { offset: number; size: number };
  slot1: { offset: number; size: number };
  scratch: { offset: number; size: number };
  BOOT_MAX_IMG_SECTORS: number;
  BOOT_MAX_ALIGN: number;
  total_flash_ops: number;
}

export function layoutOf(strategy: 'swap-move' | 'swap-scratch'): Layout {
  return JSON.parse(readFileSync(join(FIXTURES, strategy, 'layout.json'), 'utf8')) as Layout;
}

/** MCUboot sim's Nrf52840 as a board profile, built from layout.json (the dumps' own description). */
export function simNrf52840(strategy: 'swap-move' | 'swap-scratch'): BoardProfile {
  const l = layoutOf(strategy);
  return {
    name: 'nrf52840-mcuboot-sim',
    description: "MCUboot simulator's Nrf52840 layout",
    source: 'test/fixtures/mcuboot/*/layout.json',
    flash: [
      {
        id: 'internal',
        sectors: [{ size: l.sector_size, count: l.flash_size / l.sector_size, eraseMs: 85 }],
        writeSize: l.align as 4,
        eraseValue: l.erased_val as 0xff,
        writeUsPerBlock: 41,
        enduranceCycles: 10_000,
      },
    ],
    partitions: {
      mcuboot: { device: 'internal', offset: 0, size: l.slot0.offset },
      slot0: { device: 'internal', offset: l.slot0.offset, size: l.slot0.size },
      slot1: { device: 'internal', offset: l.slot1.offset, size: l.slot1.size },
      scratch: { device: 'internal', offset: l.scratch.offset, size: l.scratch.size },
    },
    mcuboot: { maxSectors: l.BOOT_MAX_IMG_SECTORS, maxAlign: l.BOOT_MAX_ALIGN, validatePrimary: true, strategies: ['swap-move', 'swap-scratch', 'overwrite-only'] },
  };
}

/** The repository's nrf52840 board (write size 4) if it exists and matches the simulator's map, else the sim layout. */
export function nrf52840For(strategy: 'swap-move' | 'swap-scratch'): BoardProfile {
  const sim = simNrf52840(strategy);
  if (!listBoards().includes('nrf52840')) return sim;
  const board = loadBoard('nrf52840', { writeSize: 4, eraseValue: 0xff });
  const same = (a: { offset: number; size: number } | undefined, b: { offset: number; size: number } | undefined): boolean =>
    a !== undefined && b !== undefined && a.offset === b.offset && a.size === b.size;
  const p = board.partitions;
  const ok = same(p.slot0, sim.partitions.slot0) && same(p.slot1, sim.partitions.slot1) && same(p.scratch, sim.partitions.scratch) &&
    board.flash.length === 1 && board.mcuboot.maxSectors === 128 && board.mcuboot.maxAlign === 8;
  return ok ? { ...board, mcuboot: { ...board.mcuboot, strategies: ['swap-move', 'swap-scratch', 'overwrite-only'] } } : sim;
}

const dumpCache = new Map<string, Uint8Array>();

export function loadDump(strategy: 'swap-move' | 'swap-scratch', name: string): Uint8Array {
  const key = `${strategy}/${name}`;
  let d = dumpCache.get(key);
  if (!d) {
    d = new Uint8Array(gunzipSync(readFileSync(join(FIXTURES, strategy, `${name}.bin.gz`))));
    dumpCache.set(key, d);
  }
  return d;
}

export function dumpNames(strategy: 'swap-move' | 'swap-scratch', prefix: string): number[] {
  const re = new RegExp(`^${prefix}(\\d+)\\.bin\\.gz$`);
  return readdirSync(join(FIXTURES, strategy))
    .map((f) => re.exec(f)?.[1])
    .filter((k): k is string => k !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

export function flashFromDump(board: BoardProfile, bytes: Uint8Array, strict = true): Flash {
  const flash = Flash.create(board, { strict });
  flash.loadContents(board.flash[0]!.id, bytes);
  return flash;
}

export function trustedKey(): PublicKey {
  const key = parseKeyPem(readFileSync(join(FIXTURES, 'ed25519.pub.pem'), 'utf8'), 'ed25519.pub.pem');
  if (key.kind !== 'public') throw new Error('expected a public key');
  return key;
}

/** First differing byte between two buffers, or -1. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
