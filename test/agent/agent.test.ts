/**
 * The OTA agent end to end over real sockets (127.0.0.1, port 0): an nrf52840 device (swap-move,
 * 16 KiB images, clock scaled 1:100) against the embedded update server over UDP and DTLS:
 * update + confirm + success report; a self-test failure rolls back and the reverted firmware
 * reports FIRMWARE_UPDATE_FAILED from flash; bad signature and wrong board are refused and never
 * booted; a power cut during the download resumes (ota-sim) or restarts at block 0 (golioth).
 */
import { describe, expect, it } from 'vitest';
import { agentStateNames } from '../../src/agent/index.js';
import { bootIsImgConfirmed } from '../../src/boot/public.js';
import { OtaStateStore } from '../../src/device/index.js';
import { accepted, image, offer, otherKey, rig, waitFor, rigsClosedAfterEach } from './helpers.js';

const start = rigsClosedAfterEach();

describe('the agent statechart', () => {
  it('has the states the issue asks for', () => {
    const names = agentStateNames();
    for (const s of ['booting', 'connecting', 'idle', 'downloading', 'downloaded', 'verifying', 'staging', 'rebooting', 'testing', 'testing.confirming', 'reporting', 'connectBackoff', 'downloadBackoff', 'rollingBack']) {
      expect(names).toContain(s);
    }
  });
});

for (const transport of ['udp', 'dtls'] as const) {
  describe(`update over ${transport}`, () => {
    it('downloads, verifies, stages, reboots, self-tests, confirms and reports success', async () => {
      const r = await start({ transport });
      const target = await offer(r.server, image('1.1.0'));
      r.device.powerOn();
      await waitFor(() => accepted(r.server).some((x) => x?.s === 3 && x.r === 1), 'a success report');
      expect(r.device.image?.version).toBe('1.1.0+0');
      expect(bootIsImgConfirmed(r.flash, 'swap-move')).toBe(true);
      const reports = accepted(r.server);
      expect(reports).toContainEqual({ s: 3, r: 1, pkg: 'main', v: '1.1.0+0', t: target });
      expect(reports).toContainEqual({ s: 1, r: 0, pkg: 'main', v: '1.0.0+0', t: target });
      expect(reports).toContainEqual({ s: 3, r: 0, pkg: 'main', v: '1.0.0+0', t: target });
      await waitFor(() => r.events.some((e) => e.type === 'state' && e.state === 'idle' && e.version === '1.1.0+0'), 'idle on the new image');
      const store = OtaStateStore.open(r.flash.area('ota-state'));
      expect(store.state.lastUpdate).toMatchObject({ targetVersion: target, fromVersion: '1.0.0+0', result: 'confirmed', reported: true });
      expect(store.state.download).toBeNull();
      expect(r.device.reboots).toBe(1);
    });
  });
}

describe('rollback and refusals over DTLS', () => {
  it('a self-test "fail" image rolls back; the reverted firmware reports FIRMWARE_UPDATE_FAILED with the failed version', async () => {
    const r = await start({ transport: 'dtls' });
    const target = await offer(r.server, image('1.2.0', { behaviour: { selfTest: 'fail' } }));
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.r === 8), 'a failure report');
    expect(r.device.image?.version).toBe('1.0.0+0');
    expect(bootIsImgConfirmed(r.flash, 'swap-move')).toBe(true);
    expect(accepted(r.server)).toContainEqual({ s: 0, r: 8, pkg: 'main', v: '1.0.0+0', t: target });
    expect(accepted(r.server).some((x) => x?.r === 1)).toBe(false);
    expect(r.events.some((e) => e.type === 'rollback' && e.version === target)).toBe(true);
    // the failed version is not downloaded again (ota-sim profile: attempt cap on flash)
    await waitFor(() => r.events.filter((e) => e.type === 'state' && e.state === 'idle' && e.version === '1.0.0+0').length >= 2, 'idle again on the old image');
    expect(r.events.filter((e) => e.type === 'download-start')).toHaveLength(1);
    const store = OtaStateStore.open(r.flash.area('ota-state'));
    expect(store.state.lastUpdate).toMatchObject({ targetVersion: target, result: 'reverted', reason: 8, reported: true });
  });

  for (const [label, bytes, reason] of [
    ['a bad signature (another key)', image('1.3.0', { signWith: otherKey }), 5],
    ['a wrong board', image('1.3.0', { board: 'stm32f4' }), 6],
  ] as const) {
    it(`${label} is refused with reason ${reason} and never booted`, async () => {
      const r = await start({ transport: 'dtls' });
      const target = await offer(r.server, bytes);
      r.device.powerOn();
      await waitFor(() => accepted(r.server).some((x) => x?.r === reason), `a report with reason ${reason}`);
      expect(accepted(r.server)).toContainEqual({ s: 0, r: reason, pkg: 'main', v: '1.0.0+0', t: target });
      expect(r.device.reboots).toBe(0);
      expect(r.device.image?.version).toBe('1.0.0+0');
      expect(r.events.some((e) => e.type === 'refused' && e.reason === reason)).toBe(true);
    });
  }
});

describe('power cut during the download', () => {
  for (const [profile, resumes] of [
    ['ota-sim', true],
    ['golioth', false],
  ] as const) {
    it(`${profile}: after a cut at block 20 or later the download ${resumes ? 'resumes at the recorded block' : 'restarts at block 0'}`, async () => {
      const r = await start({ transport: 'udp', cutAfterBlock: 20, agent: { profile, persistEvery_blocks: 4 } });
      await offer(r.server, image('1.1.0'));
      r.device.powerOn();
      await waitFor(() => r.events.some((e) => e.type === 'block' && e.block >= 20) && r.device.phase === 'off', 'the cut after block 20');
      const written = Math.max(...r.events.map((e) => (e.type === 'block' ? e.block : -1)));
      const before = r.events.length;
      r.device.powerOn();
      await waitFor(() => accepted(r.server).some((x) => x?.s === 3 && x.r === 1), 'a success report');
      const starts = r.events.slice(before).filter((e) => e.type === 'download-start');
      expect(written).toBeGreaterThanOrEqual(20);
      expect(starts).toHaveLength(1);
      const startBlock = starts[0]!.type === 'download-start' ? starts[0]!.startBlock : -1;
      if (resumes) {
        expect(startBlock).toBeGreaterThan(0);
        expect(startBlock).toBeLessThanOrEqual(written + 1);
      } else expect(startBlock).toBe(0);
      expect(r.device.image?.version).toBe('1.1.0+0');
    });
  }
});
