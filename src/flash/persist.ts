/**
 * Flash files: the first chip as a raw dump (every byte as the device would read it, erased bytes
 * at the erase value), each further chip in FILE.<id>, and a small JSON sidecar FILE.json with the
 * board profile and the counters (op index, simulated time, erase counts per sector). A raw dump
 * without a sidecar — from a real device or MCUboot's simulator — opens when the board is named.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { EnvironmentError, InputError } from '../errors.js';
import { loadBoard, parseBoard } from './board.js';
import { Flash } from './flash.js';
import type { BoardProfile, EraseValue } from './types.js';

export const SIDECAR_FORMAT = 'ota-sim-flash/1';

export interface Sidecar {
  format: typeof SIDECAR_FORMAT;
  board: BoardProfile;
  devices: { id: string; file: string }[];
  strict: boolean;
  opIndex: number;
  elapsedUs: number;
  eraseCounts: Record<string, number[]>;
}

export interface OpenOptions {
  /** Board name or profile path; required for a dump without a sidecar. */
  board?: string;
  writeSize?: number;
  eraseValue?: EraseValue;
  strict?: boolean;
}

export function sidecarPath(file: string): string {
  return `${file}.json`;
}

/** File holding chip `index` of a flash saved at `file`. */
export function chipPath(file: string, deviceId: string, index: number): string {
  return index === 0 ? file : `${file}.${deviceId}`;
}

export function saveFlash(flash: Flash, file: string): void {
  const devices = flash.board.flash.map((spec, i) => ({ id: spec.id, file: chipPath(file, spec.id, i) }));
  const sidecar: Sidecar = {
    format: SIDECAR_FORMAT,
    board: flash.board,
    devices: devices.map((d) => ({ id: d.id, file: baseName(d.file) })),
    strict: flash.strict,
    opIndex: flash.opIndex,
    elapsedUs: flash.elapsedUs,
    eraseCounts: Object.fromEntries(flash.board.flash.map((spec) => [spec.id, Array.from(flash.eraseCounts(spec.id))])),
  };
  for (const d of devices) atomicWrite(d.file, flash.dump(d.id));
  atomicWrite(sidecarPath(file), Buffer.from(JSON.stringify(sidecar, null, 1) + '\n'));
}

export function openFlash(file: string, options: OpenOptions = {}): Flash {
  if (!existsSync(file)) throw new InputError('NO_FILE', `${file}: no such flash file`);
  const side = sidecarPath(file);
  let board: BoardProfile;
  let sidecar: Sidecar | null = null;
  if (existsSync(side)) {
    sidecar = readSidecar(side);
    board = sidecar.board;
    if (options.board !== undefined && options.board !== board.name) {
      throw new InputError('BOARD_MISMATCH', `${file}: made for board ${board.name}, not ${options.board} (its sidecar ${side} says so)`);
    }
    if (options.writeSize !== undefined || options.eraseValue !== undefined) {
      board = parseBoard(applyOverrides(board, options), side);
    }
  } else {
    if (options.board === undefined) {
      throw new InputError('NO_BOARD', `${file}: a raw dump without a sidecar (${side}); name its board with --board`);
    }
    const overrides: { writeSize?: number; eraseValue?: EraseValue } = {};
    if (options.writeSize !== undefined) overrides.writeSize = options.writeSize;
    if (options.eraseValue !== undefined) overrides.eraseValue = options.eraseValue;
    board = loadBoard(options.board, overrides);
  }
  const flash = Flash.create(board, { strict: options.strict ?? sidecar?.strict ?? true });
  board.flash.forEach((spec, i) => {
    const path = chipPath(file, spec.id, i);
    if (i > 0 && !existsSync(path)) return; // a chip never saved is erased
    const bytes = readFileSync(path);
    if (bytes.length !== flash.deviceSize(spec.id)) {
      throw new InputError('BAD_DUMP', `${path}: ${bytes.length} bytes, but ${board.name}'s ${spec.id} flash is ${flash.deviceSize(spec.id)} bytes`);
    }
    flash.loadContents(spec.id, bytes);
  });
  if (sidecar) flash.restoreCounters(sidecar);
  return flash;
}

function applyOverrides(board: BoardProfile, options: OpenOptions): BoardProfile {
  return {
    ...board,
    flash: board.flash.map((spec) => ({
      ...spec,
      writeSize: (options.writeSize ?? spec.writeSize) as typeof spec.writeSize,
      eraseValue: options.eraseValue ?? spec.eraseValue,
    })),
  };
}

function readSidecar(path: string): Sidecar {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InputError('BAD_SIDECAR', `${path}: not valid JSON (${(err as Error).message})`);
  }
  const obj = json as Partial<Sidecar> | null;
  if (!obj || typeof obj !== 'object' || obj.format !== SIDECAR_FORMAT) {
    throw new InputError('BAD_SIDECAR', `${path}: format: expected "${SIDECAR_FORMAT}"`);
  }
  const board = parseBoard(obj.board, `${path} (board)`);
  const num = (v: unknown, field: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new InputError('BAD_SIDECAR', `${path}: ${field}: expected a number >= 0`);
    return v;
  };
  const counts = obj.eraseCounts;
  if (!counts || typeof counts !== 'object') throw new InputError('BAD_SIDECAR', `${path}: eraseCounts: expected an object of arrays`);
  for (const [id, list] of Object.entries(counts)) {
    if (!Array.isArray(list) || !list.every((n) => Number.isInteger(n) && n >= 0)) {
      throw new InputError('BAD_SIDECAR', `${path}: eraseCounts.${id}: expected an array of whole numbers`);
    }
  }
  return {
    format: SIDECAR_FORMAT,
    board,
    devices: obj.devices ?? [],
    strict: obj.strict !== false,
    opIndex: num(obj.opIndex, 'opIndex'),
    elapsedUs: num(obj.elapsedUs, 'elapsedUs'),
    eraseCounts: counts,
  };
}

function atomicWrite(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (err) {
    throw new EnvironmentError('WRITE_FAILED', `${path}: cannot write (${(err as Error).message})`);
  }
}

function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i >= 0 ? path.slice(i + 1) : path;
}
