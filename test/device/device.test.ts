/**
 * The device power model on nrf52840 with swap-move and a ManualClock: boot and report, test
 * upgrade, revert of an unconfirmed image, crash / hang / crashAfterMs ending in watchdog resets
 * (counted, bounded), a power cut inside the swap, an erased flash (bricked), and that nothing but
 * the flash survives power-off.
 */
import { describe, expect, it } from 'vitest';
import { bootSetConfirmed } from '../../src/boot/public.js';
import { programSlot } from '../../src/boot/program.js';
import { ManualClock } from '../../src/clock.js';
import { Device } from '../../src/device/device.js';
import type { DeviceEventName, DeviceEvents, Firmware, FirmwareContext, RunningImage } from '../../src/device/device.js';
import { OtaStateStore } from '../../src/device/ota-state.js';
import { Flash, loadBoard } from '../../src/flash/index.js';
import { behaviourTlv, boardTlv, generateKey, publicKeyOf, signImage } from '../../src/image/index.js';
import type { FirmwareBehaviour } from '../../src/image/index.js';

const board = loadBoard('nrf52840');
const key = generateKey('ed25519');
const trustedKeys = [publicKeyOf(key)];

function image(version: string, behaviour: Partial<FirmwareBehaviour> = {}): Uint8Array {
  return signImage(new Uint8Array(6000).fill(version.charCodeAt(0)), {
    key,
    headerSize_bytes: 0x200,
    padHeader: true,
    slotSize_bytes: board.partitions.slot0.size,
    align: 4,
    version,
    customTlvs: [behaviourTlv(behaviour), boardTlv('nrf52840')],
  });
}

interface Log {
  events: string[];
  starts: RunningImage[];
  stops: number;
  ctx: FirmwareContext | null;
}

/** A stand-in for the agent: in test mode it runs the self-test and confirms on pass (if told to). */
function setup(opts: { confirmOnPass?: boolean; maxReboots?: number; onStart?: (ctx: FirmwareContext) => void } = {}): { flash: Flash; clock: ManualClock; device: Device; log: Log } {
  const flash = Flash.create(board);
  const clock = new ManualClock();
  const log: Log = { events: [], starts: [], stops: 0, ctx: null };
  const firmware = (img: RunningImage): Firmware => ({
    start(ctx) {
      log.starts.push(img);
      log.ctx = ctx;
      opts.onStart?.(ctx);
      if (!img.confirmed) {
        const verdict = ctx.runSelfTest();
        if (verdict === 'pass' && opts.confirmOnPass) bootSetConfirmed(ctx.flash, 'swap-move');
        if (verdict === 'fail') ctx.reboot();
      }
    },
    stop() {
      log.stops++;
    },
  });
  const device = new Device({ flash, strategy: 'swap-move', trustedKeys, clock, firmware, watchdogTimeout_ms: 5000, ...(opts.maxReboots !== undefined ? { maxReboots: opts.maxReboots } : {}) });
  const names: DeviceEventName[] = ['booted', 'bricked', 'reboot', 'watchdog', 'power-cut', 'boot-loop'];
  for (const name of names) {
    device.on(name, (e: DeviceEvents[typeof name]) => {
      const detail = 'version' in e ? `${e.version}${e.confirmed ? '' : ' test'}` : 'reason' in e ? e.reason : 'cause' in e ? e.cause : '';
      log.events.push(detail ? `${name} ${detail}` : name);
    });
  }
  return { flash, clock, device, log };
}

describe('Device', () => {
  it('boots a confirmed image after the flash time plus bootMs and reports it', () => {
    const { flash, clock, device, log } = setup();
    programSlot(flash, 'slot0', image('1.0.0', { bootMs: 700 }), 'confirm', 'swap-move');
    device.powerOn();
    expect(device.phase).toBe('booting');
    clock.advance(699);
    expect(log.starts).toEqual([]);
    clock.advance(1);
    expect(device.phase).toBe('running');
    expect(log.events).toEqual(['booted 1.0.0+0']);
    expect(log.starts[0]).toMatchObject({ version: '1.0.0+0', confirmed: true, board: 'nrf52840', bootAction: 'none', behaviour: { selfTest: 'pass', bootMs: 700 } });
    expect(device.reboots).toBe(0);
  });

  it('a pending test upgrade is swapped in and runs unconfirmed; a confirm keeps it', () => {
    const { flash, clock, device, log } = setup({ confirmOnPass: true });
    programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
    programSlot(flash, 'slot1', image('2.0.0'), 'test', 'swap-move');
    device.powerOn();
    const swapTime_ms = flash.elapsedUs / 1000;
    expect(swapTime_ms).toBeGreaterThan(100);
    clock.advance(60_000);
    expect(log.events).toEqual(['booted 2.0.0+0 test']);
    expect(log.starts[0]!.bootAction).toBe('test');
    device.reboot();
    clock.advance(60_000);
    expect(log.events).toEqual(['booted 2.0.0+0 test', 'reboot requested', 'booted 2.0.0+0']);
    expect(device.reboots).toBe(1);
  });

  it('a firmware that never confirms is reverted at the next reboot (swap-move) and the old version runs', () => {
    const { flash, clock, device, log } = setup({ confirmOnPass: false });
    programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
    programSlot(flash, 'slot1', image('2.0.0'), 'test', 'swap-move');
    device.powerOn();
    clock.advance(60_000);
    device.reboot();
    clock.advance(60_000);
    expect(log.events).toEqual(['booted 2.0.0+0 test', 'reboot requested', 'booted 1.0.0+0']);
    expect(log.starts[1]!.bootAction).toBe('revert');
    expect(log.stops).toBe(1);
  });

  it('tells the firmware why it was reset: power-on, software (reboot), watchdog (crash); a cut clears it', () => {
    const { flash, clock, device, log } = setup({ confirmOnPass: true });
    programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
    programSlot(flash, 'slot1', image('2.0.0', { selfTest: 'crash' }), 'test', 'swap-move');
    device.powerOn();
    clock.advance(60_000);
    // the test image crashed in its self-test: the watchdog reset, the revert boot sees it
    expect(log.starts.map((s) => [s.version, s.resetCause])).toEqual([
      ['2.0.0+0', 'power-on'],
      ['1.0.0+0', 'watchdog'],
    ]);
    device.reboot();
    clock.advance(60_000);
    expect(log.starts[2]).toMatchObject({ version: '1.0.0+0', resetCause: 'software' });
    device.powerCut();
    device.powerOn();
    clock.advance(60_000);
    expect(log.starts[3]).toMatchObject({ version: '1.0.0+0', resetCause: 'power-on' });
  });

  it('a self-test failure reboots without confirming and the bootloader reverts', () => {
    const { flash, clock, device, log } = setup({ confirmOnPass: true });
    programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
    programSlot(flash, 'slot1', image('2.0.0', { selfTest: 'fail' }), 'test', 'swap-move');
    device.powerOn();
    clock.advance(120_000);
    expect(log.events).toEqual(['booted 2.0.0+0 test', 'reboot requested', 'booted 1.0.0+0']);
  });

  for (const [label, behaviour, atLeast_ms] of [
    ['crash', { selfTest: 'crash' }, 0],
    ['hang', { selfTest: 'hang' }, 5000],
    ['crashAfterMs', { crashAfterMs: 30_000 }, 30_000],
  ] as const) {
    it(`a test image whose firmware ends in a ${label} is reset by the watchdog and reverted`, () => {
      const { flash, clock, device, log } = setup({ confirmOnPass: false });
      programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
      programSlot(flash, 'slot1', image('2.0.0', behaviour), 'test', 'swap-move');
      let bootedAt_ms = 0;
      let resetAt_ms = 0;
      device.on('booted', (e) => {
        if (e.version.startsWith('2')) bootedAt_ms = e.at_ms;
      });
      device.on('reboot', (e) => (resetAt_ms = e.at_ms));
      device.powerOn();
      clock.advance(200_000);
      const cause = label === 'crashAfterMs' ? 'crash-after' : label;
      expect(log.events).toEqual(['booted 2.0.0+0 test', `watchdog ${cause}`, 'reboot watchdog', 'booted 1.0.0+0']);
      expect(resetAt_ms - bootedAt_ms).toBeGreaterThanOrEqual(atLeast_ms);
      expect(device.reboots).toBe(1);
      expect(device.phase).toBe('running');
    });
  }

  it('a confirmed image that keeps crashing is a boot loop: bounded, reported, and the device stays off', () => {
    const { flash, clock, device, log } = setup({ maxReboots: 5 });
    programSlot(flash, 'slot0', image('1.0.0', { crashAfterMs: 1000 }), 'confirm', 'swap-move');
    device.powerOn();
    clock.advance(1_000_000);
    expect(device.reboots).toBe(5);
    expect(device.phase).toBe('boot-loop');
    expect(log.events.filter((e) => e.startsWith('booted')).length).toBe(6);
    expect(log.events.at(-1)).toBe('boot-loop');
    const before = log.events.length;
    clock.advance(1_000_000);
    expect(log.events.length).toBe(before);
    device.powerOff();
    device.powerOn();
    clock.advance(500);
    expect(device.phase).toBe('running');
  });

  it('a power cut inside a flash op of the swap leaves the device off; powerOn resumes and boots', () => {
    const clean = setup();
    programSlot(clean.flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
    programSlot(clean.flash, 'slot1', image('2.0.0'), 'test', 'swap-move');
    const before = clean.flash.opIndex;
    clean.device.powerOn();
    const swapOps = clean.flash.opIndex - before;
    expect(swapOps).toBeGreaterThan(10);
    for (const offset of [3, Math.floor(swapOps / 2), swapOps - 1]) {
      const { flash, clock, device, log } = setup();
      programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
      programSlot(flash, 'slot1', image('2.0.0'), 'test', 'swap-move');
      flash.armPowerCut({ atOp: flash.opIndex + offset, kind: 'inside', seed: offset });
      device.powerOn();
      expect(device.phase).toBe('off');
      expect(device.image).toBeNull();
      expect(log.events).toEqual(['power-cut']);
      expect(flash.powered).toBe(false);
      clock.advance(60_000);
      expect(log.starts).toEqual([]);
      device.powerOn();
      clock.advance(60_000);
      expect(log.events).toEqual(['power-cut', 'booted 2.0.0+0 test']);
      // A cut in the first ops (before the swap status is written) restarts the swap from its start.
      // Mid-swap the bootloader resumes from the status area; a cut in the first ops (no status yet)
      // restarts the swap, and one in the last op finds it already complete.
      if (offset === Math.floor(swapOps / 2)) expect(log.starts[0]!.resumed).toBe(true);
    }
  });

  it('an erased flash is bricked', () => {
    const { clock, device, log } = setup();
    device.powerOn();
    clock.advance(10_000);
    expect(device.phase).toBe('bricked');
    expect(log.events).toEqual(['bricked bad image magic in the primary slot']);
    expect(log.starts).toEqual([]);
  });

  it('a power cut in a flash op of the firmware turns the device off', () => {
    const { flash, clock, device, log } = setup({
      onStart: (ctx) => {
        const store = OtaStateStore.open(ctx.flash.area('ota-state'));
        ctx.flash.armPowerCut({ atOp: ctx.flash.opIndex, kind: 'inside', seed: 5 });
        store.update({ highestSeq: 1 });
      },
    });
    programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
    device.powerOn();
    clock.advance(10_000);
    expect(log.events).toEqual(['booted 1.0.0+0', 'power-cut']);
    expect(device.phase).toBe('off');
    expect(log.stops).toBe(1);
  });

  it('ctx.run: runs flash work in a microtask and settles; a PowerCut inside turns the device off and never settles; after stop nothing runs', async () => {
    const settled: string[] = [];
    const { flash, clock, device, log } = setup();
    programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
    device.powerOn();
    clock.advance(10_000);
    const ctx = log.ctx!;
    const store = OtaStateStore.open(ctx.flash.area('ota-state'));
    let ran = false;
    const ok = ctx.run(() => {
      ran = true;
      return store.update({ highestSeq: 1 }).highestSeq;
    });
    expect(ran).toBe(false); // not on the caller's stack
    await expect(ok).resolves.toBe(1);
    await expect(ctx.run(() => { throw new Error('driver'); })).rejects.toThrow('driver');
    ctx.flash.armPowerCut({ atOp: ctx.flash.opIndex, kind: 'before' });
    const cut = ctx.run(() => store.update({ highestSeq: 2 }));
    void cut.then(() => settled.push('resolved'), () => settled.push('rejected'));
    await new Promise((r) => setTimeout(r, 10));
    expect(log.events).toEqual(['booted 1.0.0+0', 'power-cut']);
    expect(device.phase).toBe('off');
    let after = false;
    void ctx.run(() => (after = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(after).toBe(false);
    expect(settled).toEqual([]);
  });

  it('nothing survives power-off but flash: timers die, the old context is refused, powerOn re-reads the image', () => {
    let fired = 0;
    const { flash, clock, device, log } = setup({ onStart: (ctx) => void ctx.clock.setTimeout(() => fired++, 1000) });
    programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
    device.powerOn();
    clock.advance(500);
    const oldCtx = log.ctx!;
    device.powerCut();
    expect(device.phase).toBe('off');
    expect(device.image).toBeNull();
    expect(log.stops).toBe(1);
    clock.advance(10_000);
    expect(fired).toBe(0);
    expect(() => oldCtx.reboot()).toThrow(/after it stopped/);
    expect(() => flash.area('slot0').read(0, 4)).toThrow(); // the flash is unpowered too
    // A programmer rewrites slot0 while the device is off: the device must boot what flash holds now.
    flash.powerOn();
    programSlot(flash, 'slot0', image('3.0.0'), 'confirm', 'swap-move');
    device.powerOn();
    clock.advance(2000);
    expect(log.events).toEqual(['booted 1.0.0+0', 'booted 3.0.0+0']);
    expect(fired).toBe(1);
  });
});
