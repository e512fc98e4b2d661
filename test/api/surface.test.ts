/**
 * The package entry alone is enough to sign an image, program a board, cut power mid-swap, boot
 * again and sweep: the test imports nothing but 'ota-sim' (resolved through package.json exports).
 */
import { describe, expect, it } from 'vitest';
import { Flash, PowerCut, boot, generateKey, loadBoard, programSlot, publicKeyOf, signImage, sweep, verifyImage } from 'ota-sim';

describe('the public API', () => {
  it('signs, programs, survives a power cut inside the swap, and sweeps', () => {
    const board = loadBoard('nrf52840');
    const key = generateKey('ed25519');
    const sign = (version: string): Uint8Array =>
      signImage(new Uint8Array(8192).fill(version === '1.0.0' ? 1 : 2), { key, headerSize_bytes: 0x200, padHeader: true, slotSize_bytes: board.partitions.slot0.size, align: 4, version });
    const v1 = sign('1.0.0');
    const v2 = sign('2.0.0');
    expect(verifyImage(v2, [publicKeyOf(key)]).valid).toBe(true);
    const flash = Flash.create(board);
    programSlot(flash, 'slot0', v1, 'confirm', 'swap-move');
    programSlot(flash, 'slot1', v2, 'test', 'swap-move');
    flash.armPowerCut({ atOp: flash.opIndex + 10, kind: 'inside', seed: 3 });
    expect(() => boot(flash, { strategy: 'swap-move', trustedKeys: [publicKeyOf(key)] })).toThrow(PowerCut);
    flash.powerOn();
    const result = boot(flash, { strategy: 'swap-move', trustedKeys: [publicKeyOf(key)] });
    expect(result.kind).toBe('booted');
    if (result.kind === 'booted') {
      expect(result.header.version.major).toBe(2);
      expect(result.resumed).toBe(true);
    }
    const report = sweep({ board: 'nrf52840', strategy: 'swap-move', imageSize_bytes: 8192, phase: 'swap' });
    expect(report.cases).toBeGreaterThan(10);
    expect(report.violations).toEqual([]);
  });
});
