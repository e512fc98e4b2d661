/**
 * Test-boot faults end to end over DTLS (127.0.0.1, port 0, clock 1:100): a self-test that
 * crashes or hangs ends in a watchdog reset, the bootloader reverts the unconfirmed image and the
 * old firmware reports FIRMWARE_UPDATE_FAILED (r=8) with the failed version, learnt from flash; an
 * image that never reaches the server ({"connect":false}) reverts when the rollback timer expires.
 */
import { describe, expect, it } from 'vitest';
import { bootIsImgConfirmed } from '../../src/boot/public.js';
import { OtaStateStore } from '../../src/device/index.js';
import type { WatchdogCause } from '../../src/device/device.js';
import { accepted, image, offer, rig, waitFor, rigsClosedAfterEach } from './helpers.js';
import type { Rig } from './helpers.js';

const start = rigsClosedAfterEach();

async function expectRolledBack(r: Rig, target: string): Promise<void> {
  await waitFor(() => accepted(r.server).some((x) => x?.r === 8), 'a failure report');
  expect(r.device.image?.version).toBe('1.0.0+0');
  expect(bootIsImgConfirmed(r.flash, 'swap-move')).toBe(true);
  expect(accepted(r.server)).toContainEqual({ s: 0, r: 8, pkg: 'main', v: '1.0.0+0', t: target });
  expect(accepted(r.server).some((x) => x?.r === 1)).toBe(false);
  // the failed version is not downloaded again: the attempt cap is on flash
  await waitFor(() => r.events.filter((e) => e.type === 'state' && e.state === 'idle' && e.version === '1.0.0+0').length >= 2, 'idle again on the old image');
  expect(r.events.filter((e) => e.type === 'download-start')).toHaveLength(1);
  const store = OtaStateStore.open(r.flash.area('ota-state'));
  expect(store.state.lastUpdate).toMatchObject({ targetVersion: target, result: 'reverted', reason: 8, reported: true });
}

describe('test-boot faults roll back over DTLS', () => {
  for (const [selfTest, cause] of [
    ['crash', 'crash'],
    ['hang', 'hang'],
  ] as const) {
    it(`a self-test "${selfTest}" image is reset by the watchdog, reverted, and the old firmware reports r=8`, async () => {
      const r = await start({ transport: 'dtls' });
      const causes: WatchdogCause[] = [];
      const resets: string[] = [];
      r.device.on('watchdog', (e) => causes.push(e.cause));
      r.device.on('reboot', (e) => resets.push(e.reason));
      const target = await offer(r.server, image('1.2.0', { behaviour: { selfTest } }));
      r.device.powerOn();
      await expectRolledBack(r, target);
      expect(causes).toEqual([cause]);
      // one requested reboot into the test image, one watchdog reset back to the old one
      expect(resets).toEqual(['requested', 'watchdog']);
      expect(r.device.reboots).toBe(2);
      expect(r.events.some((e) => e.type === 'confirmed')).toBe(false);
    });
  }

  it('an image that never connects ({"connect":false}) reverts when the rollback timer expires', async () => {
    const r = await start({ transport: 'dtls', agent: { rollbackTimer_ms: 5_000 } });
    const causes: WatchdogCause[] = [];
    r.device.on('watchdog', (e) => causes.push(e.cause));
    const target = await offer(r.server, image('1.2.0', { behaviour: { connect: false } }));
    r.device.powerOn();
    await expectRolledBack(r, target);
    expect(causes).toEqual([]);
    expect(r.device.reboots).toBe(2);
    expect(r.events.some((e) => e.type === 'rollback' && e.version === target)).toBe(true);
    // the test image never reached the server: every accepted report came from 1.0.0
    expect(accepted(r.server).every((x) => x?.v === '1.0.0+0')).toBe(true);
  });
});
