/**
 * Realistic RunResult fixtures for the report tests: a passing fleet update, a failing power-cut
 * scenario with a bricked device, a violation and a name full of XML specials and non-ASCII, a
 * lossy-network scenario, and a generator for a big run (16 scenarios × 20 devices × hundreds of
 * events) to keep the HTML size honest. Deterministic: no randomness.
 */
import { agentStateNames } from '../../src/agent/index.js';
import { INVARIANTS, RUN_RESULT_SCHEMA, type DeviceResult, type InvariantResult, type RunResult, type ScenarioResult, type TimelineEvent } from '../../src/scenario/result.js';

export const NASTY_NAME = `cut <during> swap & "revert" 'nrf52' — ünïcødé ✓ 電源`;
export const NASTY_DEVICE = `dev<&>"'-ß`;

function allInvariants(failed: Partial<Record<string, string>> = {}): InvariantResult[] {
  return INVARIANTS.map((i) => ({ id: i.id, passed: failed[i.id] === undefined, detail: failed[i.id] ?? 'checked' }));
}

/** A complete OTA on one device: boot, connect, report, download (with phases), verify, stage, reboot, test boot, confirm. */
function happyTimeline(start_ms: number, opts: { from: string; to: string; netFaults?: number; withServer?: boolean }): TimelineEvent[] {
  const ev: TimelineEvent[] = [];
  let t = start_ms;
  const state = (label: string, dt: number): void => {
    ev.push({ at_ms: t, kind: 'agent-state', label });
    t += dt;
  };
  if (opts.withServer) {
    ev.push({ at_ms: 0, kind: 'server', label: `release ${opts.to} created`, detail: { version: opts.to } });
    ev.push({ at_ms: 500, kind: 'server', label: `release ${opts.to} activated (100%)` });
  }
  ev.push({ at_ms: t, kind: 'boot', label: `${opts.from} (normal)`, detail: { version: opts.from, action: 'none' } });
  state('booting', 40);
  state('connecting', 300);
  state('reporting', 60);
  ev.push({ at_ms: t - 30, kind: 'report', label: `s=0 r=0 v=${opts.from}` });
  state('idle', 1200);
  const dl = t;
  state('downloading', 8000);
  ev.push({ at_ms: dl + 5, kind: 'report', label: `s=1 r=0 v=${opts.from}` });
  ev.push({ at_ms: dl, kind: 'flash-phase', label: 'download', end_ms: t, detail: { blocks: 96, bytes: 98304 } });
  for (let i = 0; i < (opts.netFaults ?? 0); i++) ev.push({ at_ms: dl + 200 + i * 70, kind: 'net-fault', label: 'loss', detail: { direction: 'to-device', datagram: 40 + i } });
  state('downloaded', 0);
  state('verifying', 120);
  const st = t;
  state('staging', 80);
  ev.push({ at_ms: st, kind: 'flash-phase', label: 'stage', end_ms: t });
  state('announcing', 50);
  ev.push({ at_ms: t - 40, kind: 'report', label: `s=3 r=0 v=${opts.from} t=${opts.to}` });
  state('rebooting', 10);
  ev.push({ at_ms: t, kind: 'reboot', label: 'requested' });
  const sw = t;
  t += 2200;
  ev.push({ at_ms: sw, kind: 'flash-phase', label: 'swap', end_ms: t, detail: { sectors: 24 } });
  ev.push({ at_ms: t, kind: 'boot', label: `${opts.to} (test)`, detail: { version: opts.to, action: 'test' } });
  state('booting', 30);
  state('testing', 0);
  state('selfTest', 150);
  const cf = t;
  state('confirming', 20);
  ev.push({ at_ms: cf, kind: 'flash-phase', label: 'confirm', end_ms: t });
  state('reporting', 50);
  ev.push({ at_ms: t - 20, kind: 'report', label: `s=0 r=1 v=${opts.to}` });
  state('idle', 0);
  return ev;
}

function device(id: string, group: string, board: string, strategy: string, timeline: TimelineEvent[], over: Partial<DeviceResult> = {}): DeviceResult {
  const reports = timeline
    .filter((e) => e.kind === 'report')
    .map((e) => {
      const m = /s=(\d+) r=(\d+) v=(\S+)(?: t=(\S+))?/.exec(e.label);
      return { at_ms: e.at_ms, s: Number(m?.[1] ?? 0), r: Number(m?.[2] ?? 0), v: m?.[3] ?? '?', t: m?.[4] ?? null };
    });
  return {
    id,
    group,
    board,
    strategy,
    initialVersion: '1.0.0',
    finalVersion: '1.1.0',
    confirmed: true,
    bricked: false,
    reboots: timeline.filter((e) => e.kind === 'reboot').length,
    downloads: 1,
    bytesDownloaded: 98304,
    powerCuts: timeline.filter((e) => e.kind === 'power-cut').length,
    netFaults: timeline.filter((e) => e.kind === 'net-fault').length,
    reports,
    timeline: [...timeline].sort((a, b) => a.at_ms - b.at_ms),
    ...over,
  };
}

export function passingScenario(): ScenarioResult {
  const devices = [0, 1, 2].map((i) => device(`fleet-${i}`, 'fleet', 'nrf52840', 'swap-scratch', happyTimeline(i * 250, { from: '1.0.0', to: '1.1.0', withServer: true })));
  return {
    name: 'happy path swap-scratch',
    file: 'scenarios/happy-swap-scratch.yaml',
    description: 'Three devices update from 1.0.0 to 1.1.0 over DTLS with the swap-using-scratch bootloader.',
    seed: 1,
    passed: true,
    failure: null,
    replay: 'ota-sim run scenarios/happy-swap-scratch.yaml --seed 1',
    timeScale: 0.01,
    simulated_ms: 14_000,
    duration_wallMs: 812,
    board: 'nrf52840',
    strategy: 'swap-scratch',
    devices,
    faultsInjected: {},
    expectations: [
      { what: 'group fleet: final version 1.1.0 confirmed', passed: true, detail: '' },
      { what: 'at most 2 reboots per device', passed: true, detail: '' },
    ],
    invariants: allInvariants(),
    violations: [],
  };
}

export function failingScenario(): ScenarioResult {
  const replay = `ota-sim run scenarios/cut-swap.yaml --seed 42 --filter 'cut <during> swap'`;
  const caseReplay = 'ota-sim sweep scenarios/cut-swap.yaml --phase swap --cut 1234:17 --seed 42';
  const t0 = happyTimeline(0, { from: '1.0.0', to: '1.1.0', withServer: true, netFaults: 3 });
  // dev-a: power cut in the swap, repeated cuts (brown-out), a flash error, a blackhole window, a rebind.
  const cutAt = 12_000;
  const a: TimelineEvent[] = t0.filter((e) => e.at_ms < cutAt);
  a.push({ at_ms: cutAt, kind: 'power-cut', label: 'cut at op 1234 (swap, sector 17)', detail: { op: 1234, sector: 17, torn: true } });
  a.push({ at_ms: cutAt + 300, kind: 'power-cut', label: 'brown-out', detail: { op: 1240 } });
  a.push({ at_ms: cutAt + 310, kind: 'fault', label: 'flash program error at 0x0004_2000' });
  a.push({ at_ms: cutAt + 400, kind: 'boot', label: 'none: no valid image', detail: { version: null, action: 'halt' } });
  a.push({ at_ms: 3000, kind: 'net-fault', label: 'blackhole', end_ms: 6000, detail: { window_ms: 3000 } });
  a.push({ at_ms: 6500, kind: 'net-fault', label: 'rebind', detail: { oldPort: 40001, newPort: 40777 } });
  a.push({ at_ms: 7000, kind: 'fault', label: 'wear-out window', end_ms: 7600 });
  // dev-b: rolled back after a failed self-test (unconfirmed 1.0.0 is wrong on purpose: a test image left).
  const b = happyTimeline(100, { from: '1.0.0', to: '1.1.0' });
  b.push({ at_ms: 13_000, kind: 'power-cut', label: 'cut in state confirming +20ms' });
  // dev-c: lots of tiny agent-state spans (a connect backoff loop) to exercise coalescing.
  const c: TimelineEvent[] = [];
  for (let i = 0; i < 300; i++) c.push({ at_ms: 1000 + i * 10, kind: 'agent-state', label: i % 2 === 0 ? 'connecting' : 'connectBackoff' });
  for (let i = 0; i < 40; i++) c.push({ at_ms: 1000 + i * 75, kind: 'net-fault', label: 'loss' });
  c.push({ at_ms: 4000, kind: 'agent-state', label: 'idle' });
  const devices = [
    device('dev-a', 'fleet', 'stm32f4-nonuniform', 'swap-move', a, { finalVersion: null, confirmed: false, bricked: true, reboots: 3 }),
    device('dev-b', 'fleet', 'stm32f4-nonuniform', 'swap-move', b, { finalVersion: '1.1.0', confirmed: false }),
    device('dev-c', 'canary', 'stm32f4-nonuniform', 'swap-move', c, { finalVersion: '1.0.0', downloads: 0, bytesDownloaded: 0 }),
    device(NASTY_DEVICE, 'canary', 'stm32f4-nonuniform', 'swap-move', happyTimeline(50, { from: '1.0.0', to: '1.1.0' })),
  ];
  return {
    name: NASTY_NAME,
    file: 'scenarios/cut-swap.yaml',
    description: 'Power cut in the middle of a swap on a board with non-uniform sectors; the device must still boot.',
    seed: 42,
    passed: false,
    failure: 'dev-a is bricked: after the power cut at flash op 1234 (swap, sector 17) no slot holds a bootable image.',
    replay,
    timeScale: 0.01,
    simulated_ms: 16_000,
    duration_wallMs: 1534,
    board: 'stm32f4-nonuniform',
    strategy: 'swap-move',
    devices,
    faultsInjected: { 'power-cut': 3, 'torn-write': 1, loss: 43, blackhole: 1, rebind: 1, 'flash-error': 1 },
    expectations: [
      { what: 'group fleet: final version 1.1.0 confirmed', passed: false, detail: 'dev-a bricked; dev-b runs 1.1.0 unconfirmed' },
      { what: 'group canary: final version 1.1.0 confirmed', passed: false, detail: 'dev-c still on 1.0.0' },
    ],
    invariants: allInvariants({ 'never-bricked': 'dev-a: no valid image in the primary slot', converges: 'dev-a, dev-b, dev-c did not converge' }),
    violations: [
      { invariant: 'never-bricked', device: 'dev-a', opIndex: 1234, at_ms: cutAt + 400, message: 'slot0 holds a half-swapped image (hash mismatch) and slot1 is erased: nothing boots.', replay: caseReplay },
      { invariant: 'converges', device: 'dev-b', opIndex: null, at_ms: 16_000, message: 'runs 1.1.0 as a test image that was never confirmed.', replay },
    ],
  };
}

export function lossyScenario(): ScenarioResult {
  const devices = [0, 1].map((i) => device(`lossy-${i}`, 'lossy', 'nrf52840', 'overwrite-only', happyTimeline(0, { from: '1.0.0', to: '1.1.0', netFaults: 25 })));
  return {
    name: '30% loss with jitter',
    file: 'scenarios/loss-30.yaml',
    description: '',
    seed: 7,
    passed: true,
    failure: null,
    replay: 'ota-sim run scenarios/loss-30.yaml --seed 7',
    timeScale: 0.01,
    simulated_ms: 15_000,
    duration_wallMs: 2210,
    board: 'nrf52840',
    strategy: 'overwrite-only',
    devices,
    faultsInjected: { loss: 50, delay: 120 },
    expectations: [{ what: 'group lossy: final version 1.1.0 confirmed', passed: true, detail: '' }],
    invariants: allInvariants(),
    violations: [],
  };
}

export function mixedRun(): RunResult {
  const scenarios = [passingScenario(), failingScenario(), lossyScenario()];
  return {
    schema: RUN_RESULT_SCHEMA,
    passed: scenarios.filter((s) => s.passed).length,
    failed: scenarios.filter((s) => !s.passed).length,
    duration_wallMs: 4700,
    seed: null,
    scenarios,
    agentStates: agentStateNames(),
  };
}

export function allPassingRun(): RunResult {
  const scenarios = [passingScenario(), lossyScenario()];
  return { schema: RUN_RESULT_SCHEMA, passed: 2, failed: 0, duration_wallMs: 3100, seed: 5, scenarios, agentStates: agentStateNames() };
}

/** A big run: `scenarios` × `devices` devices, each with about `events` timeline events. */
export function bigRun(scenarios = 16, devices = 20, events = 500): RunResult {
  const out: ScenarioResult[] = [];
  for (let s = 0; s < scenarios; s++) {
    const base = passingScenario();
    const devs: DeviceResult[] = [];
    for (let d = 0; d < devices; d++) {
      const tl = happyTimeline(d * 37, { from: '1.0.0', to: '1.1.0', withServer: true });
      // Fill up with a backoff loop, loss marks, reports and cuts spread over the run.
      for (let i = 0; tl.length < events; i++) {
        const at = 100 + ((i * 97 + d * 13) % 60_000);
        const kinds = ['agent-state', 'net-fault', 'report', 'power-cut', 'flash-phase'] as const;
        const kind = kinds[i % kinds.length] ?? 'net-fault';
        tl.push(kind === 'flash-phase' ? { at_ms: at, end_ms: at + 40, kind, label: 'download' } : { at_ms: at, kind, label: kind === 'agent-state' ? (i % 2 ? 'connecting' : 'connectBackoff') : `${kind} #${i}` });
      }
      devs.push(device(`s${s}-dev-${d}`, d % 2 ? 'a' : 'b', 'nrf52840', 'swap-scratch', tl));
    }
    out.push({ ...base, name: `scenario ${s}`, simulated_ms: 60_000, devices: devs, passed: s % 5 !== 0, failure: s % 5 !== 0 ? null : 'dev-0 did not converge.' });
  }
  return {
    schema: RUN_RESULT_SCHEMA,
    passed: out.filter((s) => s.passed).length,
    failed: out.filter((s) => !s.passed).length,
    duration_wallMs: 90_000,
    seed: 3,
    scenarios: out,
    agentStates: agentStateNames(),
  };
}
