/**
 * The DeviceRecorder: flash ops classified by who ran them and where they land (download, stage,
 * swap, confirm, revert, record), boots with slot0 verified, counts from flash facts, faults
 * noted by the runner, agent states as spans, a bounded timeline, and the DeviceResult.
 */
import { describe, expect, it } from 'vitest';
import { bootSetConfirmed, bootSetPending } from '../../src/boot/public.js';
import { programSlot } from '../../src/boot/program.js';
import { ManualClock } from '../../src/clock.js';
import { Device } from '../../src/device/device.js';
import type { FirmwareContext } from '../../src/device/device.js';
import { Flash, loadBoard } from '../../src/flash/index.js';
import { behaviourTlv, boardTlv, ed25519KeyPemFromSeed, parseSigningKeyPem, publicKeyOf, signImage } from '../../src/image/index.js';
import { Prng } from '../../src/prng.js';
import { DeviceRecorder } from '../../src/scenario/recorder.js';

const board = loadBoard('nrf52840');
const key = parseSigningKeyPem(ed25519KeyPemFromSeed(new Prng(21).bytes(32)));
const trusted = [publicKeyOf(key)];
const image = (version: string): Uint8Array =>
  signImage(new Prng(version.charCodeAt(0)).bytes(3000), { key, headerSize_bytes: 0x200, padHeader: true, slotSize_bytes: board.partitions.slot0.size, align: 4, version, customTlvs: [behaviourTlv({}), boardTlv('nrf52840')] });

function rig(script: (ctx: FirmwareContext, boot: number) => void, cap?: number) {
  const flash = Flash.create(board);
  programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
  const clock = new ManualClock();
  clock.advance(100); // the recorder's times are relative to startedAt_ms
  let n = 0;
  const device = new Device({ flash, strategy: 'swap-move', trustedKeys: trusted, clock, firmware: () => ({ start: (ctx) => script(ctx, ++n), stop: () => {} }) });
  const recorder = new DeviceRecorder({
    id: 'd',
    group: 'g',
    board: 'nrf52840',
    strategy: 'swap-move',
    device,
    flash,
    trustedKeys: trusted,
    clock,
    startedAt_ms: 100,
    initialVersion: '1.0.0',
    ...(cap !== undefined ? { maxTimelineEvents: cap } : {}),
  });
  return { flash, clock, device, recorder };
}

describe('DeviceRecorder', () => {
  it('classifies a whole update from flash facts: download, stage, swap, record, confirm', () => {
    const signed = image('2.0.0');
    const img = new Uint8Array(Math.ceil(signed.length / 4) * 4).fill(0xff);
    img.set(signed);
    const r = rig((ctx, boot) => {
      if (boot === 1) {
        const slot = ctx.flash.area('slot1');
        for (let off = 0; off < 0x1000; off += 0x1000) slot.erase(off, 0x1000);
        slot.write(0, img.subarray(0, 2048));
        ctx.flash.area('ota-state').erase(0, 0x1000);
        ctx.flash.area('ota-state').write(0, new Uint8Array(16).fill(1));
        slot.write(2048, img.subarray(2048));
        expect(bootSetPending(ctx.flash, false, 'swap-move')).toBe('ok');
        ctx.reboot();
      } else if (boot === 2) {
        expect(bootSetConfirmed(ctx.flash, 'swap-move')).toBe('ok');
      }
    });
    r.device.powerOn();
    r.clock.advance(30_000);
    const rec = r.recorder;
    expect(rec.boots.map((b) => [b.version, b.action, b.verified, b.confirmed, b.confirmedWhileRunning])).toEqual([
      ['1.0.0+0', 'none', true, true, false],
      ['2.0.0+0', 'test', true, false, true],
    ]);
    const phases = [...new Set(rec.ops.map((o) => o.phase))];
    expect(phases).toEqual(['download', 'record', 'stage', 'swap', 'confirm']);
    expect(rec.ops.filter((o) => o.phase === 'swap').every((o) => o.by === 'boot')).toBe(true);
    expect(rec.downloads).toBe(1);
    expect(rec.bytesDownloaded).toBe(img.length);
    expect(rec.reboots).toBe(1);
    expect(rec.rebootOps).toEqual([rec.ops.filter((o) => o.by === 'firmware' && o.phase !== 'confirm').length]);
    expect(rec.opsSeen).toBe(rec.ops.length);
    const res = rec.result([{ at_ms: 150, package: 'main', transport: 'udp', report: { s: 3, r: 1, pkg: 'main', v: '2.0.0+0', t: '2.0.0' }, error: null, rawHex: null }]);
    expect(res).toMatchObject({ id: 'd', finalVersion: '2.0.0+0', confirmed: true, bricked: false, reboots: 1, downloads: 1, reports: [{ at_ms: 50, s: 3, r: 1, v: '2.0.0+0', t: '2.0.0' }] });
    const kinds = new Set(res.timeline.map((e) => `${e.kind}:${e.label.split(' ')[0]}`));
    for (const k of ['flash-phase:download', 'flash-phase:stage', 'flash-phase:swap', 'flash-phase:confirm', 'boot:2.0.0+0', 'reboot:requested']) expect(kinds.has(k), k).toBe(true);
    const swap = res.timeline.find((e) => e.kind === 'flash-phase' && e.label === 'swap')!;
    expect(swap.end_ms).toBeGreaterThan(swap.at_ms); // the swap's flash time on the clock
  });

  it('agent states become spans; reports, refusals and rollbacks are points; faults are counted by kind', () => {
    const r = rig(() => {});
    r.device.powerOn();
    r.clock.advance(1000);
    const rec = r.recorder;
    rec.onAgentEvent({ type: 'state', state: 'connecting', version: '1.0.0+0', at_ms: 0 });
    r.clock.advance(500);
    rec.onAgentEvent({ type: 'state', state: 'idle', version: '1.0.0+0', at_ms: 0 });
    rec.onAgentEvent({ type: 'report', report: { s: 0, r: 0, pkg: 'main', v: '1.0.0+0', t: null }, delivered: true, at_ms: 0 });
    rec.onAgentEvent({ type: 'download-start', version: '2.0.0', startBlock: 0, at_ms: 0 });
    rec.noteFault('loss', 'datagram 3 dropped');
    rec.noteFault('power-cut', 'cut in state idle');
    rec.noteFault('flash-failure', 'op 9 fails');
    r.clock.advance(200);
    const res = rec.result([]);
    const connecting = res.timeline.find((e) => e.kind === 'agent-state' && e.label === 'connecting')!;
    expect(connecting.end_ms! - connecting.at_ms).toBe(500);
    expect(res.timeline.find((e) => e.kind === 'agent-state' && e.label === 'idle')!.end_ms).toBeGreaterThanOrEqual(1400);
    expect(res.timeline.some((e) => e.kind === 'report' && e.label === 's=0 r=0 v=1.0.0+0')).toBe(true);
    expect(res.timeline.filter((e) => e.kind === 'net-fault')).toHaveLength(1);
    expect(res.timeline.filter((e) => e.kind === 'fault' && e.label === 'op 9 fails')).toHaveLength(1);
    expect(res).toMatchObject({ powerCuts: 1, netFaults: 1, downloads: 0 });
    expect(rec.agentDownloads).toBe(1); // the agent's own account, kept apart from the flash count
  });

  it('the timeline is bounded: events past the cap are counted, not kept', () => {
    const r = rig(() => {}, 5);
    r.device.powerOn();
    r.clock.advance(1000);
    for (let i = 0; i < 20; i++) r.recorder.onAgentEvent({ type: 'state', state: `s${i}`, version: '1.0.0+0', at_ms: 0 });
    const res = r.recorder.result([]);
    expect(res.timeline).toHaveLength(5);
    expect(res.timelineDropped).toBe(16); // 1 boot + 20 states = 21 events, 5 kept
  });

  it('keeps the storage partition as it was at start, and ignores factory programming done before it attached', () => {
    const r = rig((ctx) => ctx.flash.area('storage').write(8, new Uint8Array([0, 0, 0, 0])));
    expect(r.recorder.storageChange()).toEqual({ unchanged: true, firstDiff: -1 });
    r.device.powerOn();
    r.clock.advance(1000);
    expect(r.recorder.storageChange()).toEqual({ unchanged: false, firstDiff: 8 });
    expect(r.recorder.ops.map((o) => o.partition)).toEqual(['storage']);
    r.device.powerOff();
    // the device is off: the final boot runs on a clone and still finds 1.0.0
    expect(r.recorder.finalState()).toMatchObject({ booted: true, version: '1.0.0+0', confirmed: true, verified: true });
    expect(r.flash.powered).toBe(false);
  });
});
