import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { Flash } from '../../src/flash/flash.js';
import { openFlash, saveFlash, sidecarPath } from '../../src/flash/persist.js';
import { loadBoard } from '../../src/flash/board.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ota-sim-persist-'));

describe('flash files', () => {
  it('a file written and re-opened gives identical bytes and counters, second chip included', () => {
    const board = loadBoard('nrf52840dk');
    const flash = Flash.create(board);
    flash.erase('internal', 0x1000, 0x2000);
    flash.write('internal', 0x1000, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    flash.erase('qspi', 0, 0x1000);
    flash.write('qspi', 0x10, Uint8Array.of(0xde, 0xad, 0xbe, 0xef));
    const file = join(tmp(), 'dk.bin');
    saveFlash(flash, file);
    expect(readFileSync(file).length).toBe(1024 * 1024);
    expect(readFileSync(`${file}.qspi`).length).toBe(8 * 1024 * 1024);
    const again = openFlash(file);
    expect(again.contentEquals(flash)).toBe(true);
    expect(again.opIndex).toBe(flash.opIndex);
    expect(again.elapsedUs).toBe(flash.elapsedUs);
    expect(Array.from(again.eraseCounts('internal'))).toEqual(Array.from(flash.eraseCounts('internal')));
    expect(Array.from(again.eraseCounts('qspi'))).toEqual(Array.from(flash.eraseCounts('qspi')));
    // Strictness survives too: the programmed block cannot be written again before an erase.
    expect(() => again.write('internal', 0x1000, new Uint8Array(4))).toThrow(/not erased/);
  });

  it('the raw file is the dump a device would give: erased bytes hold the erase value', () => {
    const board = loadBoard('stm32l0');
    const flash = Flash.create(board);
    const file = join(tmp(), 'l0.bin');
    saveFlash(flash, file);
    const raw = readFileSync(file);
    expect(raw.every((b) => b === board.flash[0]!.eraseValue)).toBe(true);
    expect(board.flash[0]!.eraseValue).toBe(0x00);
  });

  it('a raw dump without a sidecar opens when the board is named, with overrides', () => {
    const dir = tmp();
    const file = join(dir, 'dump.bin');
    const bytes = new Uint8Array(512 * 1024).fill(0xff);
    bytes.set([0x3d, 0xb8, 0xf3, 0x96], 0x8000);
    writeFileSync(file, bytes);
    expect(() => openFlash(file)).toThrow(/name its board with --board/);
    const flash = openFlash(file, { board: 'nrf52840', writeSize: 8 });
    expect(flash.spec('internal').writeSize).toBe(8);
    expect(Array.from(flash.read('internal', 0x8000, 4))).toEqual([0x3d, 0xb8, 0xf3, 0x96]);
    expect(flash.opIndex).toBe(0);
    expect(existsSync(sidecarPath(file))).toBe(false);
    expect(() => openFlash(file, { board: 'stm32l4' })).toThrow(InputError);
  });

  it('bad files get typed errors naming the file', () => {
    const dir = tmp();
    expect(() => openFlash(join(dir, 'missing.bin'))).toThrow(/missing\.bin: no such flash file/);
    const file = join(dir, 'x.bin');
    writeFileSync(file, new Uint8Array(10));
    writeFileSync(sidecarPath(file), '{ not json');
    expect(() => openFlash(file)).toThrow(/x\.bin\.json: not valid JSON/);
    writeFileSync(sidecarPath(file), JSON.stringify({ format: 'something-else' }));
    expect(() => openFlash(file)).toThrow(/format: expected "ota-sim-flash\/1"/);
    const good = Flash.create(loadBoard('nrf52840'));
    saveFlash(good, file);
    writeFileSync(file, new Uint8Array(1000));
    expect(() => openFlash(file)).toThrow(/1000 bytes, but nrf52840's internal flash is 524288 bytes/);
  });
});
