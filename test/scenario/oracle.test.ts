/**
 * The oracle: each of FAULTS.md's seven invariants passes an honest device and catches a
 * constructed violation of it (a flash erased, an untrusted image booted, a device left on the
 * wrong version, a confirmed image reverted, storage written, a lying report, too many reboots
 * or downloads). Devices here run a scripted firmware on a ManualClock: no network needed.
 */
import { describe, expect, it } from 'vitest';
import { bootSetConfirmed, bootSetPending } from '../../src/boot/public.js';
import { programSlot } from '../../src/boot/program.js';
import { ManualClock } from '../../src/clock.js';
import { Device } from '../../src/device/device.js';
import type { FirmwareContext } from '../../src/device/device.js';
import { Flash, loadBoard } from '../../src/flash/index.js';
import { behaviourTlv, boardTlv, ed25519KeyPemFromSeed, parseSigningKeyPem, publicKeyOf, signImage } from '../../src/image/index.js';
import type { SigningKey } from '../../src/image/index.js';
import { Prng } from '../../src/prng.js';
import { checkOracle, mergeInvariants, sameVersion } from '../../src/scenario/oracle.js';
import type { OracleExpectation } from '../../src/scenario/oracle.js';
import { DeviceRecorder } from '../../src/scenario/recorder.js';
import type { InvariantId } from '../../src/scenario/result.js';
import type { ReportRecord } from '../../src/server/index.js';

const board = loadBoard('nrf52840');
const key: SigningKey = parseSigningKeyPem(ed25519KeyPemFromSeed(new Prng(11).bytes(32)));
const otherKey: SigningKey = parseSigningKeyPem(ed25519KeyPemFromSeed(new Prng(12).bytes(32)));
const trusted = [publicKeyOf(key)];

function image(version: string, signWith: SigningKey = key): Uint8Array {
  return signImage(new Prng(version.length + version.charCodeAt(0)).bytes(4096), {
    key: signWith,
    headerSize_bytes: 0x200,
    padHeader: true,
    slotSize_bytes: board.partitions.slot0.size,
    align: 4,
    version,
    customTlvs: [behaviourTlv({}), boardTlv('nrf52840')],
  });
}

type Script = (ctx: FirmwareContext, boot: number) => void;

/** A device whose firmware runs `script` at every start; the recorder attached before power-on. */
function rig(opts: { slot0?: Uint8Array; slot1?: Uint8Array; script?: Script; maxReboots?: number } = {}) {
  const flash = Flash.create(board);
  programSlot(flash, 'slot0', opts.slot0 ?? image('1.0.0'), 'confirm', 'swap-move');
  if (opts.slot1) programSlot(flash, 'slot1', opts.slot1, 'test', 'swap-move');
  const clock = new ManualClock();
  let boots = 0;
  const device = new Device({
    flash,
    strategy: 'swap-move',
    trustedKeys: trusted,
    clock,
    maxReboots: opts.maxReboots ?? 32,
    firmware: () => ({
      start: (ctx) => {
        boots++;
        opts.script?.(ctx, boots);
      },
      stop: () => {},
    }),
  });
  const recorder = new DeviceRecorder({ id: 'd1', group: 'g', board: 'nrf52840', strategy: 'swap-move', device, flash, trustedKeys: trusted, clock, startedAt_ms: 0, initialVersion: '1.0.0' });
  return { flash, clock, device, recorder };
}

const LIMITS = { maxReboots: 5, maxDownloads: 2, maxBytes: 1 << 20 };
function expectation(o: Partial<OracleExpectation> = {}): OracleExpectation {
  return { targetVersion: null, previousVersion: '1.0.0', targetFails: false, mustConverge: true, limits: LIMITS, ...o };
}

function report(s: number, r: number, v: string, t: string | null, at_ms = 1): ReportRecord {
  return { at_ms, package: 'main', transport: 'udp', report: { s, r, pkg: 'main', v, t }, error: null, rawHex: null };
}

function failed(v: ReturnType<typeof checkOracle>): InvariantId[] {
  return [...new Set(v.violations.map((x) => x.invariant))].sort();
}

describe('oracle', () => {
  it('an honest device that stays on its version passes all seven invariants', () => {
    const r = rig();
    r.device.powerOn();
    r.clock.advance(1000);
    const v = checkOracle({ recorder: r.recorder, reports: [report(0, 0, '1.0.0+0', null)], expect: expectation(), replay: 'ota-sim sweep x --cut 1' });
    expect(v.violations).toEqual([]);
    expect(v.invariants.map((i) => i.id)).toEqual(['never-bricked', 'only-verified-images-run', 'converges', 'no-revert-of-confirmed', 'storage-untouched', 'honest-reports', 'bounded-effort']);
    expect(v.invariants.every((i) => i.passed)).toBe(true);
  });

  it('an honest update: test boot, confirm written by the firmware, success reported', () => {
    const r = rig({ slot1: image('2.0.0'), script: (ctx) => void bootSetConfirmed(ctx.flash, 'swap-move') });
    r.device.powerOn();
    r.clock.advance(5000);
    expect(r.recorder.boots.map((b) => [b.version, b.action, b.confirmedWhileRunning])).toEqual([['2.0.0+0', 'test', true]]);
    const v = checkOracle({ recorder: r.recorder, reports: [report(3, 1, '2.0.0+0', '2.0.0')], expect: expectation({ targetVersion: '2.0.0' }), replay: 'r' });
    expect(v.violations).toEqual([]);
  });

  it('1 never-bricked: slot0 erased after the run', () => {
    const r = rig();
    r.device.powerOn();
    r.clock.advance(1000);
    r.flash.area('slot0').erase(0, 0x1000);
    const v = checkOracle({ recorder: r.recorder, reports: [], expect: expectation({ mustConverge: false }), replay: 'ota-sim sweep s --cut 7', opIndex: 7 });
    expect(failed(v)).toEqual(['never-bricked']);
    expect(v.violations[0]).toMatchObject({ device: 'd1', opIndex: 7, replay: 'ota-sim sweep s --cut 7' });
    expect(v.violations[0]!.message).toMatch(/bricked/);
    expect(v.invariants.find((i) => i.id === 'converges')!.detail).toMatch(/not applicable/);
  });

  it('2 only-verified-images-run: the bootloader (no primary validation on nrf52840) boots an image signed by another key', () => {
    const r = rig({ slot0: image('1.0.0', otherKey) });
    r.device.powerOn();
    r.clock.advance(1000);
    expect(r.recorder.boots[0]!.verified).toBe(false);
    const v = checkOracle({ recorder: r.recorder, reports: [], expect: expectation({ mustConverge: false }), replay: 'r' });
    // the final boot on a clone finds the same untrusted image: never-bricked fails too
    expect(failed(v)).toEqual(['never-bricked', 'only-verified-images-run']);
  });

  it('3 converges: a good target expected, the device stays on the old version', () => {
    const r = rig();
    r.device.powerOn();
    r.clock.advance(1000);
    const v = checkOracle({ recorder: r.recorder, reports: [], expect: expectation({ targetVersion: '2.0.0' }), replay: 'r' });
    expect(failed(v)).toEqual(['converges']);
    expect(v.violations[0]!.message).toMatch(/should end on 2\.0\.0 confirmed but the bootloader boots 1\.0\.0\+0 confirmed/);
    // a failing target: staying on 1.0.0 is right
    expect(checkOracle({ recorder: r.recorder, reports: [], expect: expectation({ targetVersion: '2.0.0', targetFails: true }), replay: 'r' }).violations).toEqual([]);
  });

  it('4 no-revert-of-confirmed: a revert after the firmware confirmed, and a test image made permanent without a confirm', () => {
    const r = rig();
    r.device.powerOn();
    r.clock.advance(1000);
    const base = r.recorder.boots[0]!;
    // constructed histories (the bootloader model does not misbehave on its own)
    r.recorder.boots.push({ ...base, version: '2.0.0+0', action: 'test', confirmed: false, confirmedWhileRunning: true, at_ms: 10 });
    r.recorder.boots.push({ ...base, version: '1.0.0+0', action: 'revert', confirmed: true, confirmedWhileRunning: false, at_ms: 20 });
    let v = checkOracle({ recorder: r.recorder, reports: [], expect: expectation(), replay: 'r' });
    expect(failed(v)).toEqual(['no-revert-of-confirmed']);
    expect(v.violations[0]!.message).toMatch(/2\.0\.0\+0 was confirmed on flash, yet the bootloader reverted it/);
    r.recorder.boots.splice(1);
    r.recorder.boots.push({ ...base, version: '2.0.0+0', action: 'test', confirmed: false, confirmedWhileRunning: false, at_ms: 10 });
    r.recorder.boots.push({ ...base, version: '2.0.0+0', action: 'none', confirmed: true, confirmedWhileRunning: false, at_ms: 20 });
    v = checkOracle({ recorder: r.recorder, reports: [], expect: expectation({ mustConverge: false }), replay: 'r' });
    expect(failed(v)).toEqual(['no-revert-of-confirmed']);
    expect(v.violations[0]!.message).toMatch(/test image 2\.0\.0\+0 became permanent/);
  });

  it('4 honest revert: a test image that never confirmed is reverted', () => {
    // test boot of 2.0.0 that does not confirm, then a reset: the bootloader reverts
    const r = rig({ slot1: image('2.0.0'), script: (ctx, n) => (n === 1 ? ctx.reboot() : undefined) });
    r.device.powerOn();
    r.clock.advance(10_000);
    expect(r.recorder.boots.map((b) => `${b.version} ${b.action}`)).toEqual(['2.0.0+0 test', '1.0.0+0 revert']);
    const ops = r.recorder.ops;
    expect(ops.some((o) => o.phase === 'swap') && ops.some((o) => o.phase === 'revert')).toBe(true);
    const v = checkOracle({ recorder: r.recorder, reports: [], expect: expectation({ targetVersion: '2.0.0', targetFails: true }), replay: 'r' });
    expect(v.violations).toEqual([]);
  });

  it('5 storage-untouched: the firmware writes the storage partition', () => {
    const r = rig({ script: (ctx) => ctx.flash.area('storage').write(0, new Uint8Array([1, 2, 3, 4])) });
    r.device.powerOn();
    r.clock.advance(1000);
    const v = checkOracle({ recorder: r.recorder, reports: [], expect: expectation(), replay: 'r' });
    expect(failed(v)).toEqual(['storage-untouched']);
    expect(v.violations[0]!.message).toMatch(/offset 0x0/);
  });

  it('6 honest-reports: a success report for a version the device does not run, and an update still "in progress" once settled', () => {
    const r = rig();
    r.device.powerOn();
    r.clock.advance(1000);
    let v = checkOracle({ recorder: r.recorder, reports: [report(0, 0, '1.0.0+0', null), report(3, 1, '2.0.0+0', '2.0.0', 5)], expect: expectation(), replay: 'r' });
    expect(failed(v)).toEqual(['honest-reports']);
    expect(v.violations[0]!.at_ms).toBe(5);
    v = checkOracle({ recorder: r.recorder, reports: [report(3, 0, '1.0.0+0', '2.0.0')], expect: expectation(), replay: 'r' });
    expect(failed(v)).toEqual(['honest-reports']);
    expect(v.violations[0]!.message).toMatch(/update in progress/);
    // a run that ended early: "in progress" may be true
    expect(checkOracle({ recorder: r.recorder, reports: [report(3, 0, '1.0.0+0', '2.0.0')], expect: expectation({ mustConverge: false }), replay: 'r' }).violations).toEqual([]);
  });

  it('7 bounded-effort: reboots and downloads (firmware writes at slot1 offset 0) over the limits', () => {
    const r = rig({
      script: (ctx, n) => {
        if (n <= 3) {
          // a fresh download: erase, write the first block
          ctx.flash.area('slot1').erase(0, 0x1000);
          ctx.flash.area('slot1').write(0, new Uint8Array(512).fill(0x5a));
          ctx.reboot();
        }
      },
    });
    r.device.powerOn();
    r.clock.advance(10_000);
    expect(r.recorder.reboots).toBe(3);
    expect(r.recorder.downloads).toBe(3);
    expect(r.recorder.bytesDownloaded).toBe(3 * 512);
    const v = checkOracle({ recorder: r.recorder, reports: [], expect: expectation({ limits: { maxReboots: 2, maxDownloads: 2, maxBytes: 1024 } }), replay: 'r' });
    expect(failed(v)).toEqual(['bounded-effort']);
    expect(v.violations.map((x) => x.message).join('\n')).toMatch(/rebooted 3 times \(limit 2\)[^]*3 downloads[^]*1536 download bytes/);
    expect(checkOracle({ recorder: r.recorder, reports: [], expect: expectation({ limits: { maxReboots: 3, maxDownloads: 3, maxBytes: 1536 } }), replay: 'r' }).violations).toEqual([]);
  });

  it('7 bounded-effort and 1: a boot loop', () => {
    const r = rig({ maxReboots: 3, script: (ctx) => ctx.reboot() });
    r.device.powerOn();
    r.clock.advance(10_000);
    expect(r.device.phase).toBe('boot-loop');
    const v = checkOracle({ recorder: r.recorder, reports: [], expect: expectation({ mustConverge: false, limits: { ...LIMITS, maxReboots: 100 } }), replay: 'r' });
    expect(failed(v)).toEqual(['bounded-effort', 'never-bricked']);
  });

  it('overwrite-only: a failing target that ran stays installed; invariant 4 is not applicable', () => {
    const flash = Flash.create(board);
    programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'overwrite-only');
    programSlot(flash, 'slot1', image('2.0.0'), 'none', 'overwrite-only');
    expect(bootSetPending(flash, false, 'overwrite-only')).toBe('ok');
    const clock = new ManualClock();
    const device = new Device({ flash, strategy: 'overwrite-only', trustedKeys: trusted, clock, firmware: () => ({ start: () => {}, stop: () => {} }) });
    const recorder = new DeviceRecorder({ id: 'o1', group: 'g', board: 'nrf52840', strategy: 'overwrite-only', device, flash, trustedKeys: trusted, clock, startedAt_ms: 0, initialVersion: '1.0.0' });
    device.powerOn();
    clock.advance(60_000);
    expect(recorder.boots.map((b) => b.version)).toEqual(['2.0.0+0']);
    const v = checkOracle({ recorder, reports: [], expect: expectation({ targetVersion: '2.0.0', targetFails: true }), replay: 'r' });
    expect(v.violations).toEqual([]);
    expect(v.invariants.find((i) => i.id === 'converges')!.detail).toMatch(/no rollback was possible/);
    expect(v.invariants.find((i) => i.id === 'no-revert-of-confirmed')!.detail).toMatch(/not applicable/);
  });

  it('mergeInvariants: failed on any device wins; sameVersion ignores the build', () => {
    const ok = [{ id: 'never-bricked' as const, passed: true, detail: 'checked' }];
    const bad = [{ id: 'never-bricked' as const, passed: false, detail: 'device x is bricked' }];
    const m = mergeInvariants([ok, bad, bad]);
    expect(m).toHaveLength(7);
    expect(m[0]).toEqual({ id: 'never-bricked', passed: false, detail: 'device x is bricked (and 1 more device)' });
    expect(m[1]!.passed).toBe(true);
    expect(sameVersion('2.0.0', '2.0.0+0')).toBe(true);
    expect(sameVersion('2.0.0', '2.0.1')).toBe(false);
  });
});
