/**
 * Conformance with MCUboot itself: the dumps in test/fixtures/mcuboot were made by MCUboot's
 * simulator running MCUboot's C code. Our boot must reproduce its results byte for byte over the
 * whole device, its flash-op count, and its op order (our state after k ops = MCUboot's cut-(k+1)).
 */
import { describe, expect, it } from 'vitest';
import { boot } from '../../src/boot/boot.js';
import type { BootResult } from '../../src/boot/boot.js';
import { PowerCut } from '../../src/flash/errors.js';
import type { Flash } from '../../src/flash/flash.js';
import { dumpNames, firstDiff, flashFromDump, layoutOf, loadDump, nrf52840For, trustedKey } from './helpers.js';

const STRATEGIES = ['swap-move', 'swap-scratch'] as const;
type S = (typeof STRATEGIES)[number];

function dumpOf(flash: Flash): Uint8Array {
  return flash.dump(flash.board.flash[0]!.id);
}

function expectSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const at = firstDiff(actual, expected);
  expect(at, `${what}: first differing byte at 0x${at.toString(16)}`).toBe(-1);
}

function bootOnce(flash: Flash, strategy: S): BootResult {
  return boot(flash, { strategy, trustedKeys: [trustedKey()] });
}

describe.each(STRATEGIES)('MCUboot conformance: %s', (strategy) => {
  const board = nrf52840For(strategy);
  const layout = layoutOf(strategy);

  it('initial -> final byte-exact, with MCUboot\'s op count', () => {
    const flash = flashFromDump(board, loadDump(strategy, 'initial'));
    const start = flash.opIndex;
    const r = bootOnce(flash, strategy);
    expect(r.kind).toBe('booted');
    expect(r.action).toBe('perm');
    expect(flash.opIndex - start).toBe(layout.total_flash_ops);
    expectSameBytes(dumpOf(flash), loadDump(strategy, 'final'), 'final');
  });

  for (const k of dumpNames(strategy, 'cut-')) {
    it(`cut-${k} completes to final byte-exact`, () => {
      const flash = flashFromDump(board, loadDump(strategy, `cut-${k}`));
      const r = bootOnce(flash, strategy);
      expect(r.kind).toBe('booted');
      expect(r.resumed).toBe(true);
      expectSameBytes(dumpOf(flash), loadDump(strategy, 'final'), `boot on cut-${k}`);
    });
  }

  it('revert-initial -> revert-final byte-exact', () => {
    const flash = flashFromDump(board, loadDump(strategy, 'revert-initial'));
    const r = bootOnce(flash, strategy);
    expect(r.kind).toBe('booted');
    expect(r.action).toBe('revert');
    expectSameBytes(dumpOf(flash), loadDump(strategy, 'revert-final'), 'revert-final');
  });

  for (const k of dumpNames(strategy, 'revert-cut-')) {
    it(`revert-cut-${k} completes to revert-final byte-exact`, () => {
      const flash = flashFromDump(board, loadDump(strategy, `revert-cut-${k}`));
      const r = bootOnce(flash, strategy);
      expect(r.kind).toBe('booted');
      expect(r.resumed).toBe(true);
      expectSameBytes(dumpOf(flash), loadDump(strategy, 'revert-final'), `boot on revert-cut-${k}`);
    });
  }

  /** Replays our clean boot's journal: the flash after k of our ops must be MCUboot's cut-(k+1). */
  function opOrderCheck(initial: string, cutPrefix: string): void {
    const flash = flashFromDump(board, loadDump(strategy, initial));
    bootOnce(flash, strategy);
    const cursor = flash.cursor();
    for (const k of dumpNames(strategy, cutPrefix)) {
      cursor.advance(k - 1 - cursor.position);
      expectSameBytes(dumpOf(cursor.flash), loadDump(strategy, `${cutPrefix}${k}`), `our state after ${k - 1} ops vs MCUboot ${cutPrefix}${k}`);
    }
  }

  it('same op order as MCUboot: our flash after k ops equals cut-(k+1)', () => {
    expect(dumpNames(strategy, 'cut-').length).toBeGreaterThan(0);
    opOrderCheck('initial', 'cut-');
  });

  it('same op order as MCUboot during the revert: our flash after k ops equals revert-cut-(k+1)', () => {
    expect(dumpNames(strategy, 'revert-cut-').length).toBeGreaterThan(0);
    opOrderCheck('revert-initial', 'revert-cut-');
  });

  /**
   * The general rule behind the samples: a cut before any op, then a boot, ends at the final image.
   * Returns the op count and the cut indices whose result differs from `final` only in slot0's
   * swap_info reading PERM: swap-move's fixup_revert makes an interrupted revert start look like a
   * permanent upgrade (swap_move.c), so MCUboot finishes it as PERM. Same image, same flags.
   */
  function everyCut(initial: string, final: string): { total: number; permInsteadOfRevert: number[] } {
    const flash = flashFromDump(board, loadDump(strategy, initial));
    bootOnce(flash, strategy);
    const total = flash.journalLength;
    const want = loadDump(strategy, final);
    const swapInfoAt = board.partitions.slot0.offset + board.partitions.slot0.size - 40;
    const permInsteadOfRevert: number[] = [];
    const cursor = flash.cursor();
    for (let k = 0; k < total; k++) {
      const cut = cursor.flash.clone();
      const r = bootOnce(cut, strategy);
      expect(r.kind, `cut before op ${k}`).toBe('booted');
      const got = dumpOf(cut);
      const at = firstDiff(got, want);
      if (at === swapInfoAt && got[at] === 0x03 && want[at] === 0x04 && firstDiff(got.subarray(at + 1), want.subarray(at + 1)) === -1) {
        permInsteadOfRevert.push(k);
      } else if (at !== -1) {
        expect.fail(`cut before op ${k} (MCUboot cut-${k + 1}): resumed boot differs from ${final} at 0x${at.toString(16)}`);
      }
      cursor.advance(1);
    }
    return { total, permInsteadOfRevert };
  }

  it('a cut before every op of the upgrade resumes to final byte-exact', () => {
    expect(everyCut('initial', 'final')).toEqual({ total: layout.total_flash_ops, permInsteadOfRevert: [] });
  });

  it('a cut before every op of the revert resumes to revert-final byte-exact', () => {
    const { total, permInsteadOfRevert } = everyCut('revert-initial', 'revert-final');
    // No reference count for the revert; MCUboot's revert-cut-K dumps need at least K-1 ops.
    expect(total).toBeGreaterThanOrEqual(Math.max(...dumpNames(strategy, 'revert-cut-')));
    expect(total).toBe(strategy === 'swap-move' ? 911 : 811);
    // swap-move: cuts after fixup_revert wrote the secondary magic (op 3) and before the secondary
    // trailer is erased again (op 9): secondary magic GOOD + image_ok SET reads as PERM.
    expect(permInsteadOfRevert).toEqual(strategy === 'swap-move' ? [4, 5, 6, 7, 8, 9] : []);
  });
});
