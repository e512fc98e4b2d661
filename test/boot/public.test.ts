/** boot_set_pending / boot_set_confirmed / boot_is_img_confirmed / the swap table. */
import { describe, expect, it } from 'vitest';
import { bootIsImgConfirmed, bootSetConfirmed, bootSetPending, swapType, swapTypeFromStates } from '../../src/boot/public.js';
import { SwapType, readSwapState, writeMagic } from '../../src/boot/trailer.js';
import type { SwapState } from '../../src/boot/trailer.js';
import { Flash } from '../../src/flash/flash.js';
import { simNrf52840 } from './helpers.js';

const st = (magic: SwapState['magic'], imageOk: SwapState['imageOk'], copyDone: SwapState['copyDone']): SwapState => ({ magic, imageOk, copyDone, swapType: 1, imageNum: 0 });

describe('swap table after PR 2100', () => {
  it('maps trailer states to swap types in row order', () => {
    expect(swapTypeFromStates(st('good', 'set', 'set'), st('good', 'unset', 'unset'))).toBe(SwapType.TEST);
    expect(swapTypeFromStates(st('unset', 'unset', 'unset'), st('good', 'set', 'unset'))).toBe(SwapType.PERM);
    expect(swapTypeFromStates(st('good', 'unset', 'set'), st('unset', 'unset', 'unset'))).toBe(SwapType.REVERT);
    // PR 2100: a torn (BAD) secondary magic still reverts...
    expect(swapTypeFromStates(st('good', 'unset', 'set'), st('bad', 'unset', 'unset'))).toBe(SwapType.REVERT);
    // ...which the pre-2100 table (the defect) does not: no row matches, NONE.
    expect(swapTypeFromStates(st('good', 'unset', 'set'), st('bad', 'unset', 'unset'), true)).toBe(SwapType.NONE);
    expect(swapTypeFromStates(st('good', 'set', 'set'), st('unset', 'unset', 'unset'))).toBe(SwapType.NONE);
    expect(swapTypeFromStates(st('good', 'unset', 'unset'), st('unset', 'unset', 'unset'))).toBe(SwapType.NONE);
  });
});

describe('application API', () => {
  it('boot_set_pending(test) writes magic then swap_info TEST; (perm) also image_ok', () => {
    const flash = Flash.create(simNrf52840('swap-move'));
    expect(bootSetPending(flash, false, 'swap-move')).toBe('ok');
    expect(flash.opIndex).toBe(2);
    expect(readSwapState(flash.area('slot1'), { maxAlign: 8, maxSectors: 128, strategy: 'swap-move' })).toMatchObject({ magic: 'good', imageOk: 'unset', swapType: SwapType.TEST });
    expect(swapType(flash, 'swap-move')).toBe(SwapType.TEST);
    // Already pending: nothing written.
    expect(bootSetPending(flash, true, 'swap-move')).toBe('already-pending');
    expect(flash.opIndex).toBe(2);

    const perm = Flash.create(simNrf52840('swap-move'));
    bootSetPending(perm, true, 'swap-move');
    expect(perm.opIndex).toBe(3);
    expect(swapType(perm, 'swap-move')).toBe(SwapType.PERM);
  });

  it('boot_set_confirmed writes image_ok once on a good primary trailer', () => {
    const flash = Flash.create(simNrf52840('swap-move'));
    // No magic on the primary: nothing to confirm (MCUboot returns 0 and writes nothing).
    expect(bootSetConfirmed(flash, 'swap-move')).toBe('ok');
    expect(flash.opIndex).toBe(0);
    expect(bootIsImgConfirmed(flash, 'swap-move')).toBe(false);
    const cfg = { maxAlign: 8, maxSectors: 128, strategy: 'swap-move' as const };
    writeMagic(flash.area('slot0'), cfg);
    expect(bootSetConfirmed(flash, 'swap-move')).toBe('ok');
    expect(flash.opIndex).toBe(2);
    expect(bootIsImgConfirmed(flash, 'swap-move')).toBe(true);
    expect(bootSetConfirmed(flash, 'swap-move')).toBe('ok');
    expect(flash.opIndex).toBe(2);
  });

  it('refuses a slot with a bad magic', () => {
    const flash = Flash.create(simNrf52840('swap-move'));
    const slot1 = flash.area('slot1');
    slot1.write(slot1.size - 16, new Uint8Array(16).fill(0x12));
    expect(bootSetPending(flash, true, 'swap-move')).toBe('bad-image');
  });
});

