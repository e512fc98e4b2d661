/**
 * API facade, boards and flash: `loadBoard` (a shipped board name, or a path to a board file in
 * JSON or YAML), `createFlash` (a fresh erased flash for a board, optionally with a factory image
 * programmed into slot0) and `openFlash` (a flash file written by `ota-sim flash`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { programSlot } from '../boot/program.js';
import type { SlotMark } from '../boot/program.js';
import { InputError } from '../errors.js';
import { loadBoard as loadShippedBoard, parseBoard } from '../flash/board.js';
import type { BoardOverrides } from '../flash/board.js';
import { Flash } from '../flash/flash.js';
import type { BoardProfile, Strategy } from '../flash/types.js';

export { openFlash } from '../flash/persist.js';

/**
 * A board profile: a shipped board's name (`nrf52840`, `stm32f4-mixed`, ...) or a path to a
 * board file (`.json`, `.yaml` or `.yml`); `overrides` (write size, erase value) as `--write-size`
 * / `--erase-value` do. Throws InputError UNKNOWN_BOARD / BAD_BOARD.
 */
export function loadBoard(nameOrPath: string, overrides: BoardOverrides = {}): BoardProfile {
  if (typeof nameOrPath !== 'string' || nameOrPath === '') throw new InputError('UNKNOWN_BOARD', `board: expected a board name or a path to a board file, got ${JSON.stringify(nameOrPath)}`);
  if (!/\.ya?ml$/i.test(nameOrPath)) return loadShippedBoard(nameOrPath, overrides);
  // YAML board files: the same fields as the JSON ones (the flash module itself reads JSON only).
  if (!existsSync(nameOrPath)) throw new InputError('UNKNOWN_BOARD', `${nameOrPath}: no such board file`);
  let data: unknown;
  try {
    data = parseYaml(readFileSync(nameOrPath, 'utf8'), { prettyErrors: false });
  } catch (e) {
    throw new InputError('BAD_BOARD', `${nameOrPath}: not valid YAML: ${e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e)}`);
  }
  return parseBoard(data, nameOrPath, overrides);
}

/** A board profile object, or a name / path for loadBoard. */
export type BoardRef = string | BoardProfile;

export function boardOf(board: BoardRef): BoardProfile {
  return typeof board === 'string' ? loadBoard(board) : board;
}

export interface CreateFlashOptions {
  /** Refuse writes to blocks not erased since they were programmed, like real NOR (default true). */
  strict?: boolean;
  /** Keep the op journal (needed by power-cut sweeps and the oracle's recorder; default true). */
  journal?: boolean;
  /** A signed image to program into slot0 (a factory image). */
  image?: Uint8Array;
  /** How the programmed image is marked (default 'confirm'). */
  mark?: SlotMark;
  /** MCUboot strategy the trailer is written for (default 'swap-move'). */
  strategy?: Strategy;
}

/** A fresh, erased flash for a board (name, path or profile); with `image`, slot0 holds it confirmed. */
export function createFlash(board: BoardRef, options: CreateFlashOptions = {}): Flash {
  const profile = boardOf(board);
  const flash = Flash.create(profile, { strict: options.strict ?? true, journal: options.journal ?? true });
  if (options.image !== undefined) programSlot(flash, 'slot0', options.image, options.mark ?? 'confirm', options.strategy ?? 'swap-move');
  return flash;
}
