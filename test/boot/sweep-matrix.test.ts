/**
 * The matrix MCUboot's simulator runs (its layouts × 4 alignments × 2 erase values), on every
 * shipped board and every strategy it offers, with a small image and cuts between ops: the
 * faithful bootloader model must survive every cut everywhere — slot1 on a second flash device
 * (nrf52840-spi-flash, stm32f4-spi-flash, nrf52840dk) and unequal slots included.
 */
import { describe, expect, it } from 'vitest';
import { listBoards } from '../../src/flash/board.js';
import { sweepMatrix } from '../../src/boot/sweep.js';
import type { MatrixResult } from '../../src/boot/sweep.js';

/** 4 KiB images: one or two sectors on most boards, 32 on stm32l0's 128-byte pages. */
const IMAGE = 4096;

function summary(m: MatrixResult): string[] {
  return m.reports.flatMap((r) => r.violations.slice(0, 2).map((v) => `${r.board} ${r.strategy} ws${r.writeSize} ev${r.eraseValue}: ${v.invariant} ${v.detail} | ${v.replay}`));
}

describe('sweep matrix (between ops, small image)', () => {
  it.each(['swap', 'revert'] as const)('every board × strategy × write size {1,2,4,8} × erase value {0xff,0x00}: no violation (phase %s)', (phase) => {
    const m = sweepMatrix({ phase, imageSize_bytes: IMAGE });
    expect(summary(m)).toEqual([]);
    const ran = new Set(m.reports.map((r) => `${r.board}/${r.strategy}`));
    for (const must of [
      'nrf52840/swap-move', 'nrf52840/swap-scratch', 'nrf52840/overwrite-only',
      'nrf52840-spi-flash/swap-scratch', 'nrf52840-spi-flash/overwrite-only',
      'stm32f4-spi-flash/swap-scratch', 'nrf52840dk/swap-move', 'nrf52840dk/overwrite-only',
      'nrf52840-unequal-slots/swap-move', 'stm32l0/swap-move', 'small-pages/swap-move', 'k64f-big/swap-scratch', 'esp32/swap-move',
    ]) {
      expect(ran.has(must), must).toBe(true);
    }
    // Every board ran something, except those that only offer swap-offset (not modelled yet).
    for (const board of listBoards()) {
      const some = m.reports.some((r) => r.board === board);
      const why = m.skipped.filter((s) => s.board === board).map((s) => s.why);
      if (!some) expect(why.every((w) => /swap-offset is not modelled/.test(w)), board).toBe(true);
    }
    // Each configuration ran with all four write sizes and both erase values.
    for (const r of m.reports.filter((x) => x.board === 'nrf52840' && x.strategy === 'swap-move')) expect(r.cases).toBeGreaterThan(1);
    expect(new Set(m.reports.map((r) => `${r.writeSize}/${r.eraseValue}`)).size).toBe(8);
    expect(m.skipped.every((s) => s.why.length > 0)).toBe(true);
  }, 120_000);
});
