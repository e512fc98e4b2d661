/**
 * Regression tests for four agent bugs the scenario oracle and sweeps found (issue 7/8), end to
 * end over UDP on 127.0.0.1 (port 0, clock 1:100) unless a flash-only check is enough:
 * 1. versions compare semantically ("2.0.0" from the manifest is the image's "2.0.0+0");
 * 2. a power cut during a good image's test boot (before the confirm) is retried, not given up;
 * 3. an injected flash driver error during the download fails that attempt (r=10), which is retried;
 * 4. an image the bootloader refuses (non-bootable) is reported failed (r=8) and given up.
 */
import { describe, expect, it } from 'vitest';
import { resolveAgentConfig } from '../../src/agent/index.js';
import { AgentRuntime } from '../../src/agent/runtime.js';
import { programSlot } from '../../src/boot/program.js';
import { bootIsImgConfirmed } from '../../src/boot/public.js';
import { ScaledClock } from '../../src/clock.js';
import { Device, OtaStateStore } from '../../src/device/index.js';
import type { FirmwareContext } from '../../src/device/device.js';
import { Flash } from '../../src/flash/index.js';
import { behaviourTlv, boardTlv, createTrustStore, publicKeyOf, sameVersionText, signImage } from '../../src/image/index.js';
import { Prng } from '../../src/prng.js';
import { accepted, board, image, key, offer, rigsClosedAfterEach, waitFor } from './helpers.js';

const start = rigsClosedAfterEach();

describe('version texts', () => {
  it('compares versions semantically, falling back to text', () => {
    expect(sameVersionText('2.0.0', '2.0.0+0')).toBe(true);
    expect(sameVersionText('2.0', '2.0.0+0')).toBe(true);
    expect(sameVersionText('2.0.0', '2.0.0+1')).toBe(false);
    expect(sameVersionText('2.0.1', '2.0.0')).toBe(false);
    expect(sameVersionText('x', 'x')).toBe(true);
    expect(sameVersionText('x', '2.0.0')).toBe(false);
  });

  it('the test boot of "2.0.0" (header 2.0.0+0) records `testing` on flash', async () => {
    const flash = Flash.create(board);
    programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
    programSlot(flash, 'slot1', image('2.0.0'), 'test', 'swap-move');
    const store = OtaStateStore.open(flash.area('ota-state'));
    store.update({ lastUpdate: { targetVersion: '2.0.0', fromVersion: '1.0.0+0', result: 'pending-test', reason: 0, reported: false } });
    const cfg = resolveAgentConfig({ server: { kind: 'udp', host: '127.0.0.1', port: 9, identity: 'x' }, board: 'nrf52840', strategy: 'swap-move', trust: createTrustStore([publicKeyOf(key)]), seed: 1 });
    let inspected: Promise<unknown> | null = null;
    let running = '';
    const device = new Device({
      flash,
      strategy: 'swap-move',
      trustedKeys: [publicKeyOf(key)],
      clock: new ScaledClock(0.01),
      firmware: () => ({
        start(ctx: FirmwareContext) {
          running = ctx.image.version;
          const rt = new AgentRuntime(cfg, ctx, 1);
          inspected = rt.guarded(() => rt.inspectBoot());
        },
        stop() {},
      }),
    });
    device.powerOn();
    await waitFor(() => inspected !== null, 'the firmware to start');
    await inspected;
    expect(running).toBe('2.0.0+0');
    expect(OtaStateStore.open(flash.area('ota-state')).state.lastUpdate).toMatchObject({ targetVersion: '2.0.0', result: 'testing' });
    device.powerOff();
  });
});

describe('agent fixes end to end', () => {
  it('a power cut during the test boot of a good image, before the confirm, is retried and ends confirmed on it', async () => {
    const r = await start({ transport: 'udp' });
    let cut = false;
    r.device.on('booted', (e) => {
      // the first test boot of the target: its first flash op records `testing`, the next one
      // (boot_set_confirmed) loses the power
      if (!cut && e.version === '1.2.0+0' && !e.confirmed) {
        cut = true;
        r.flash.armPowerCut({ atOp: r.flash.opIndex + 1, kind: 'before' });
      }
    });
    const target = await offer(r.server, image('1.2.0'));
    r.device.powerOn();
    await waitFor(() => cut && r.device.phase === 'off', 'the cut in the test boot');
    expect(r.events.some((e) => e.type === 'confirmed')).toBe(false);
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.r === 1), 'a success report', 40_000);
    expect(r.device.image?.version).toBe('1.2.0+0');
    expect(bootIsImgConfirmed(r.flash, 'swap-move')).toBe(true);
    // the revert cost one attempt: downloaded again once, not given up
    expect(r.events.filter((e) => e.type === 'download-start')).toHaveLength(2);
    expect(accepted(r.server).at(-1)).toEqual({ s: 3, r: 1, pkg: 'main', v: '1.2.0+0', t: target });
  });

  it('an injected flash driver error during the download fails that attempt (r=10 IO), and the retry converges', async () => {
    const r = await start({ transport: 'udp' });
    let armed = false;
    r.events.length = 0;
    const target = await offer(r.server, image('1.2.0'));
    const poll = setInterval(() => {
      // a few ops into the download (block writes and erases of slot1)
      if (!armed && r.events.some((e) => e.type === 'block' && e.block >= 2)) {
        armed = true;
        r.flash.armFailure(r.flash.opIndex + 1);
      }
    }, 1);
    try {
      r.device.powerOn();
      await waitFor(() => accepted(r.server).some((x) => x?.r === 1), 'a success report', 40_000);
    } finally {
      clearInterval(poll);
    }
    expect(armed).toBe(true);
    expect(accepted(r.server)).toContainEqual({ s: 0, r: 10, pkg: 'main', v: '1.0.0+0', t: target });
    expect(r.device.image?.version).toBe('1.2.0+0');
    expect(bootIsImgConfirmed(r.flash, 'swap-move')).toBe(true);
    expect(r.events.filter((e) => e.type === 'download-start').length).toBeLessThanOrEqual(3);
  });

  it('an image the bootloader refuses (non-bootable) is reported failed with r=8 and never downloaded again', async () => {
    const r = await start({ transport: 'udp' });
    const payload = new Prng(99).bytes(16 * 1024);
    const nb = signImage(payload, {
      key,
      headerSize_bytes: 0x200,
      padHeader: true,
      slotSize_bytes: board.partitions.slot0.size,
      align: 4,
      version: '1.2.0',
      nonBootable: true,
      customTlvs: [behaviourTlv({}), boardTlv('nrf52840')],
    });
    const target = await offer(r.server, nb);
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.r === 8), 'a failure report', 40_000);
    // the manifest again after the reboot (it was downloaded again here before the fix), then
    // a while (~50 simulated seconds) for a download to start: still one download, on 1.0.0
    await waitFor(() => r.events.filter((e) => e.type === 'manifest').length >= 2, 'the manifest after the reboot', 40_000);
    await new Promise((ok) => setTimeout(ok, 500));
    expect(r.device.image?.version).toBe('1.0.0+0');
    expect(r.device.reboots).toBe(1);
    expect(r.events.filter((e) => e.type === 'download-start')).toHaveLength(1);
    expect(accepted(r.server).at(-1)).toEqual({ s: 0, r: 8, pkg: 'main', v: '1.0.0+0', t: target });
    expect(OtaStateStore.open(r.flash.area('ota-state')).state.lastUpdate).toMatchObject({ targetVersion: target, result: 'failed', reason: 8, reported: true });
  });
});
