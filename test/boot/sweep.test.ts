/** The power-cut sweep finds nothing on the faithful model and finds every seeded defect. */
import { describe, expect, it } from 'vitest';
import { BOOT_DEFECTS } from '../../src/boot/context.js';
import { sweepBoot } from '../../src/boot/sweep.js';
import { flashFromDump, loadDump, nrf52840For, trustedKey } from './helpers.js';

const keys = [trustedKey()];

describe('sweepBoot', () => {
  it('torn: the faithful model survives torn writes/erases in the revert fixup window', () => {
    const flash = flashFromDump(nrf52840For('swap-move'), loadDump('swap-move', 'revert-initial'));
    const r = sweepBoot(flash, { strategy: 'swap-move', trustedKeys: keys, phase: 'revert', torn: true, fromOp: 0, toOp: 12 });
    expect(r.cases).toBeGreaterThan(12);
    expect(r.violations).toEqual([]);
  });

  it('between ops: no violation over the whole swap-move upgrade (907 ops)', () => {
    const flash = flashFromDump(nrf52840For('swap-move'), loadDump('swap-move', 'initial'));
    const r = sweepBoot(flash, { strategy: 'swap-move', trustedKeys: keys, phase: 'swap' });
    expect(r.ops).toBe(907);
    expect(r.cases).toBe(908);
    expect(r.violations).toEqual([]);
  });

  it('between ops: no violation over the swap-scratch revert', () => {
    const flash = flashFromDump(nrf52840For('swap-scratch'), loadDump('swap-scratch', 'revert-initial'));
    const r = sweepBoot(flash, { strategy: 'swap-scratch', trustedKeys: keys, phase: 'revert' });
    expect(r.violations).toEqual([]);
  });

  it.each(BOOT_DEFECTS)('finds the seeded defect %s, with op index and replay command', (defect) => {
    const phase = defect === 'revert-skipped' || defect === 'revert-requires-secondary-unset' ? 'revert' : 'swap';
    const flash = flashFromDump(nrf52840For('swap-move'), loadDump('swap-move', phase === 'revert' ? 'revert-initial' : 'initial'));
    // The pre-PR-2100 table only bricks on a torn secondary magic: only a torn sweep finds it.
    const torn = defect === 'revert-requires-secondary-unset';
    // Torn: the window of fixup_revert's secondary trailer writes (ops 0..12) keeps the test fast.
    const r = sweepBoot(flash, { strategy: 'swap-move', trustedKeys: keys, phase, defects: [defect], torn, ...(torn ? { fromOp: 0, toOp: 12 } : {}) });
    expect(r.violations.length).toBeGreaterThan(0);
    const v = r.violations[0]!;
    expect(v.replay).toContain(`--defect ${defect}`);
    if (defect !== 'revert-skipped') expect(v.opIndex).not.toBeNull();
    if (torn) {
      // mcuboot issue 1966: the torn secondary magic of fixup_revert (op 3); cuts between ops never show it.
      expect(v.opIndex).toBe(3);
      const between = sweepBoot(flash, { strategy: 'swap-move', trustedKeys: keys, phase, defects: [defect] });
      expect(between.violations).toEqual([]);
    }
  });
});
