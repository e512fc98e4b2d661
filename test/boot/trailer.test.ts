/** Trailer layout, encoding and decoding against MCUboot's definitions and real MCUboot dumps. */
import { describe, expect, it } from 'vitest';
import { inspectSwap } from '../../src/boot/inspect.js';
import {
  SwapType,
  decodeMagic,
  decodeStatusEntries,
  magicBytes,
  readSwapSize,
  readSwapState,
  scratchTrailerSize,
  trailerOffsets,
  trailerSize,
  writeImageOk,
  writeMagic,
  writeSwapInfo,
  writeSwapSize,
} from '../../src/boot/trailer.js';
import type { TrailerConfig } from '../../src/boot/trailer.js';
import { Flash } from '../../src/flash/flash.js';
import type { BoardProfile } from '../../src/flash/types.js';
import { flashFromDump, loadDump, nrf52840For, simNrf52840 } from './helpers.js';

const CFG8: TrailerConfig = { maxAlign: 8, maxSectors: 128, strategy: 'swap-move' };

function boardWith(writeSize: 1 | 2 | 4 | 8, eraseValue: 0xff | 0x00, maxAlign: number): BoardProfile {
  const b = simNrf52840('swap-move');
  return { ...b, flash: [{ ...b.flash[0]!, writeSize, eraseValue }], mcuboot: { ...b.mcuboot, maxAlign } };
}

describe('trailer layout (bootutil_priv.h, bootutil_misc.h)', () => {
  it('places the fields from the slot end with BOOT_MAX_ALIGN 8', () => {
    const size = 0x34000;
    const o = trailerOffsets(size, CFG8);
    expect([size - o.magic, size - o.imageOk, size - o.copyDone, size - o.swapInfo, size - o.swapSize]).toEqual([16, 24, 32, 40, 48]);
    // 128 sectors x 3 entries x 4-byte writes + 4 x 8 + 16
    expect(trailerSize(CFG8, 4)).toBe(128 * 3 * 4 + 48);
    expect(scratchTrailerSize({ ...CFG8, strategy: 'swap-scratch' }, 4)).toBe(3 * 4 + 48);
  });

  it('pads the magic to BOOT_MAX_ALIGN 32 and moves the flags down', () => {
    const cfg: TrailerConfig = { maxAlign: 32, maxSectors: 128, strategy: 'swap-move' };
    const o = trailerOffsets(0x34000, cfg);
    expect(0x34000 - o.magicWrite).toBe(32);
    expect(0x34000 - o.imageOk).toBe(64);
    expect(0x34000 - o.swapSize).toBe(160);
    const m = magicBytes(32);
    expect(Array.from(m.subarray(0, 4))).toEqual([0x20, 0x00, 0x2d, 0xe1]);
    expect(Array.from(magicBytes(8).subarray(0, 4))).toEqual([0x77, 0xc2, 0x95, 0xf3]);
  });

  it('writes each field as one write padded with the erase value to the write size', () => {
    for (const [ws, ev] of [[1, 0xff], [8, 0x00], [4, 0x00]] as const) {
      const flash = Flash.create(boardWith(ws, ev, 8));
      const slot = flash.area('slot1');
      const before = flash.opIndex;
      writeMagic(slot, CFG8);
      writeImageOk(slot, CFG8);
      writeSwapInfo(slot, SwapType.TEST, 0, CFG8);
      writeSwapSize(slot, 0x32000, CFG8);
      expect(flash.opIndex - before).toBe(4);
      const o = trailerOffsets(slot.size, CFG8);
      expect(Array.from(slot.read(o.imageOk, ws))).toEqual([1, ...Array<number>(ws - 1).fill(ev)]);
      expect(slot.read(o.imageOk + ws, 8 - ws).every((b) => b === ev)).toBe(true);
      const st = readSwapState(slot, CFG8);
      expect(st).toEqual({ magic: 'good', swapType: SwapType.TEST, imageNum: 0, copyDone: 'unset', imageOk: 'set' });
      expect(readSwapSize(slot, CFG8)).toBe(0x32000);
    }
  });

  it('decodes magic erased / good / bad per erase value', () => {
    expect(decodeMagic(new Uint8Array(16).fill(0xff), 0xff, 8)).toBe('unset');
    expect(decodeMagic(new Uint8Array(16).fill(0x00), 0x00, 8)).toBe('unset');
    expect(decodeMagic(new Uint8Array(16).fill(0x00), 0xff, 8)).toBe('bad');
    expect(decodeMagic(magicBytes(8), 0xff, 8)).toBe('good');
    const torn = magicBytes(8).slice();
    torn[15] = 0xff;
    expect(decodeMagic(torn, 0xff, 8)).toBe('bad');
  });
});

describe('decoding MCUboot mid-swap dumps as MCUboot does', () => {
  it('swap-move cut-75: in the move phase, status in the primary', () => {
    const flash = flashFromDump(nrf52840For('swap-move'), loadDump('swap-move', 'cut-75'));
    // 74 ops done: 6 to set up trailers, then 11 sectors moved (6 ops each) + 2 ops of the 12th.
    const dec = decodeStatusEntries(flash.area('slot0'), false, CFG8, 4);
    expect(dec.position).toEqual({ op: 'move', idx: 12, state: 1 });
    const ins = inspectSwap(flash, 'swap-move');
    expect(ins.source).toBe('primary');
    expect(ins.interrupted).toMatchObject({ op: 'move', idx: 12, state: 1, swapType: 'perm', swapSize_bytes: 204800 });
  });

  it('swap-move cut-453: in the swap phase at sector 13', () => {
    const flash = flashFromDump(nrf52840For('swap-move'), loadDump('swap-move', 'cut-453'));
    // 452 ops: 6 + 300 (move) + 12 sectors x 12 ops + 2.
    const ins = inspectSwap(flash, 'swap-move');
    expect(ins.interrupted).toMatchObject({ op: 'swap', idx: 13, state: 1, swapType: 'perm' });
    expect(ins.summary).toContain('idx 13');
  });

  it('swap-scratch cut-135: the swap state lives only in the scratch trailer', () => {
    const flash = flashFromDump(nrf52840For('swap-scratch'), loadDump('swap-scratch', 'cut-135'));
    const ins = inspectSwap(flash, 'swap-scratch');
    expect(ins.slot0.magic).toBe('unset');
    expect(ins.scratch?.magic).toBe('good');
    expect(ins.source).toBe('scratch');
    // 134 ops = chunk 1 states 0 (69 ops) and 1 (65 ops) done: resume at state 3 (STATE_2).
    expect(ins.interrupted).toMatchObject({ op: 'swap', idx: 1, state: 3, swapType: 'perm', swapSize_bytes: 211408 });
  });

  it('final dumps: swap done, nothing pending', () => {
    for (const s of ['swap-move', 'swap-scratch'] as const) {
      const ins = inspectSwap(flashFromDump(nrf52840For(s), loadDump(s, 'final')), s);
      expect(ins.interrupted).toBeNull();
      expect(ins.pending).toBe('none');
      expect(ins.slot0).toMatchObject({ magic: 'good', imageOk: 'set', copyDone: 'set', swapTypeName: 'perm' });
    }
    const rev = inspectSwap(flashFromDump(nrf52840For('swap-move'), loadDump('swap-move', 'revert-initial')), 'swap-move');
    expect(rev.pending).toBe('revert');
  });
});
