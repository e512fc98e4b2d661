/** Bootloader decisions beyond the MCUboot dumps: invalid images, overwrite-only, downgrade, missing partitions. */
import { describe, expect, it } from 'vitest';
import { boot } from '../../src/boot/boot.js';
import { bootSetPending } from '../../src/boot/public.js';
import { InputError } from '../../src/errors.js';
import type { BoardProfile } from '../../src/flash/types.js';
import { flashFromDump, loadDump, nrf52840For, simNrf52840, trustedKey } from './helpers.js';

const keys = [trustedKey()];

function slotBytes(flash: ReturnType<typeof flashFromDump>, name: 'slot0' | 'slot1', length: number): Uint8Array {
  return flash.area(name).read(0, length);
}

describe('boot(): secondary validation', () => {
  it('erases a secondary whose hash does not match and boots the old primary', () => {
    const dump = loadDump('swap-move', 'initial').slice();
    const at = 0x3c000 + 0x1000; // one payload bit of slot1
    dump[at] = dump[at]! ^ 0x01;
    const flash = flashFromDump(nrf52840For('swap-move'), dump);
    const oldPrimary = slotBytes(flash, 'slot0', 204800);
    const r = boot(flash, { strategy: 'swap-move', trustedKeys: keys });
    expect(r.kind).toBe('booted');
    expect(r.action).toBe('none');
    if (r.kind === 'booted') expect(r.header.version).toMatchObject({ major: 0, minor: 0, revision: 1 });
    expect(flash.opIndex).toBe(0x34000 / 4096); // boot_scramble_slot: one erase per sector
    expect(flash.area('slot1').read(0, 0x34000).every((b) => b === 0xff)).toBe(true);
    expect(slotBytes(flash, 'slot0', 204800)).toEqual(oldPrimary);
  });

  it('refuses an image signed by an untrusted key (no trusted keys)', () => {
    const flash = flashFromDump(nrf52840For('swap-scratch'), loadDump('swap-scratch', 'initial'));
    const r = boot(flash, { strategy: 'swap-scratch', trustedKeys: [], validatePrimary: false });
    expect(r.action).toBe('none');
    expect(r.notes.join('\n')).toContain('no valid signature');
  });

  it('refuses an image without a security counter when the board has one (HW rollback protection)', () => {
    const flash = flashFromDump(nrf52840For('swap-move'), loadDump('swap-move', 'initial'));
    const r = boot(flash, { strategy: 'swap-move', trustedKeys: keys, nvCounter: 0, validatePrimary: false });
    expect(r.action).toBe('none');
    expect(r.notes.join('\n')).toContain('SEC_CNT');
  });

  it('boots nothing from an empty flash and says so', () => {
    const flash = flashFromDump(nrf52840For('swap-move'), new Uint8Array(512 * 1024).fill(0xff));
    const r = boot(flash, { strategy: 'swap-move', trustedKeys: keys });
    expect(r.kind).toBe('no-bootable-image');
    expect(flash.opIndex).toBe(0);
  });

  it('a second boot after an upgrade does nothing', () => {
    const flash = flashFromDump(nrf52840For('swap-scratch'), loadDump('swap-scratch', 'final'));
    const r = boot(flash, { strategy: 'swap-scratch', trustedKeys: keys });
    expect(r).toMatchObject({ kind: 'booted', action: 'none', resumed: false });
    expect(flash.opIndex).toBe(0);
    if (r.kind === 'booted') expect(r.header.version.major).toBe(1);
  });
});

describe('boot(): overwrite-only', () => {
  it('copies the whole secondary slot over the primary, erases the secondary ends, cannot revert', () => {
    const flash = flashFromDump(nrf52840For('swap-move'), loadDump('swap-move', 'initial'));
    const upgrade = loadDump('swap-move', 'upgrade-image');
    const r = boot(flash, { strategy: 'overwrite-only', trustedKeys: keys });
    expect(r).toMatchObject({ kind: 'booted', action: 'perm', canRevert: false });
    // 52 sector erases + 208 chunks of 1024 bytes + 2 secondary sector erases.
    expect(flash.opIndex).toBe(52 + 208 + 2);
    expect(slotBytes(flash, 'slot0', upgrade.length)).toEqual(upgrade);
    const slot1 = flash.area('slot1');
    expect(slot1.read(0, 4096).every((b) => b === 0xff)).toBe(true);
    expect(slot1.read(slot1.size - 4096, 4096).every((b) => b === 0xff)).toBe(true);
    const again = boot(flash, { strategy: 'overwrite-only', trustedKeys: keys });
    expect(again.action).toBe('none');
  });

  it('installs a test image for good and reports that no revert is possible', () => {
    const dump = loadDump('swap-move', 'initial').slice();
    dump.fill(0xff, 0x3c000 + 0x34000 - 4096, 0x3c000 + 0x34000); // drop the perm trailer
    const flash = flashFromDump(nrf52840For('swap-move'), dump);
    bootSetPending(flash, false, 'overwrite-only');
    const r = boot(flash, { strategy: 'overwrite-only', trustedKeys: keys });
    expect(r).toMatchObject({ action: 'test', canRevert: false });
    expect(r.notes.join('\n')).toContain('cannot revert');
  });

  it('downgrade prevention erases an older secondary', () => {
    const board = nrf52840For('swap-move');
    const img = new Uint8Array(512 * 1024).fill(0xff);
    img.set(loadDump('swap-move', 'upgrade-image'), 0x8000); // 1.0.1 running
    img.set(loadDump('swap-move', 'primary-image'), 0x3c000); // 0.0.1 offered
    const flash = flashFromDump(board, img);
    bootSetPending(flash, true, 'overwrite-only');
    const before = flash.opIndex;
    const r = boot(flash, { strategy: 'overwrite-only', trustedKeys: keys });
    expect(r.action).toBe('none');
    expect(flash.opIndex - before).toBe(52);
    if (r.kind === 'booted') expect(r.header.version.major).toBe(1);
    expect(r.notes.join('\n')).toContain('downgrade');
  });
});

describe('boot(): partition map checks', () => {
  it('swap-scratch without a scratch partition is an InputError naming it', () => {
    const b = simNrf52840('swap-scratch');
    const { scratch: _s, ...partitions } = b.partitions;
    const board: BoardProfile = { ...b, partitions };
    const flash = flashFromDump(board, loadDump('swap-scratch', 'initial'));
    expect(() => boot(flash, { strategy: 'swap-scratch', trustedKeys: keys })).toThrow(InputError);
    expect(() => boot(flash, { strategy: 'swap-scratch', trustedKeys: keys })).toThrow(/scratch/);
  });
});
