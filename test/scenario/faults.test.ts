/**
 * Every fault kind is actually injected: counted in faultsInjected, noted on the device's
 * timeline, and (where the device can recover) the scenario still ends where it should.
 */
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/scenario/runner.js';
import { base, noted, why } from './helpers.js';

describe('fault injection', () => {
  it('power cuts by download block, by agent state and in the bootloader swap at a slot0 sector', async () => {
    const run = await runScenario(
      base('cuts', {
        faults: [
          { kind: 'power-cut-at-block', atBlock: 5 },
          { kind: 'power-cut-in-state', state: 'verifying', delay_ms: 0 },
          { kind: 'power-cut-in-boot', phase: 'swap', sector: 2, torn: true },
        ],
        groups: [{ name: 'fleet', count: 1, image: 'v1', agent: { maxAttemptsPerVersion: 6 } }],
        expect: { groups: { fleet: { version: '1.1.0', reports: [{ s: 3, r: 1, t: '1.1.0' }] } } },
      }),
    );
    expect(run.passed, why(run)).toBe(true);
    expect(run.faultLog.map((f) => f.key)).toEqual(expect.arrayContaining(['block:5', 'state:verifying#1+0']));
    expect(run.faultLog.some((f) => f.kind === 'torn-cut' && f.key.startsWith('boot:swap:cut1'))).toBe(true);
    expect(run.faultsInjected['power-cut']).toBe(2);
    expect(run.faultsInjected['torn-cut']).toBe(1);
    expect(noted(run, 'power-cut') + noted(run, 'torn-cut')).toBe(3);
    expect(run.devices[0]!.timeline.some((e) => e.kind === 'power-cut')).toBe(true);
  }, 120_000);

  it('a cut at a flash op index, a brown-out loop during the revert, and cut counts keyed by op', async () => {
    const run = await runScenario(
      base('brownout', {
        images: { v1: { version: '1.0.0' }, bad: { version: '1.1.0', behaviour: { selfTest: 'fail' } } },
        timeline: [{ at_ms: 0, release: { id: 'r1', images: ['bad'] } }],
        faults: [
          { kind: 'power-cut', atOp: 12, off_ms: 500 },
          { kind: 'power-cut-in-boot', phase: 'revert', sector: 0, cuts: 3, afterOps: 1, off_ms: 100 },
        ],
        groups: [{ name: 'fleet', count: 1, image: 'v1', agent: { maxAttemptsPerVersion: 5 } }],
        expect: { groups: { fleet: { version: '1.0.0', reports: [{ r: 8, t: '1.1.0' }] } } },
      }),
    );
    expect(run.passed, why(run)).toBe(true);
    expect(run.faultLog.filter((f) => f.key.startsWith('boot:revert:')).map((f) => f.key.split(':op')[0])).toEqual(['boot:revert:cut1', 'boot:revert:cut2', 'boot:revert:cut3']);
    expect(run.faultLog).toContainEqual({ device: 'fleet-0', kind: 'power-cut', key: 'op:12' });
    expect(run.faultsInjected['power-cut']).toBe(4);
  }, 120_000);

  it('flash driver errors and worn-out sectors', async () => {
    const run = await runScenario(
      base('flash', {
        wallLimit_s: 6,
        groups: [
          { name: 'worn', count: 1, image: 'v1' },
          { name: 'failing', count: 1, image: 'v1' },
        ],
        faults: [
          { kind: 'wear-out', partition: 'slot1', erasesLeft: 0, devices: ['worn'] },
          { kind: 'flash-failure', atOp: 5, devices: ['failing-0'] },
        ],
        expect: { groups: { worn: { version: '1.0.0', targetFails: true }, failing: { version: '1.1.0' } } },
      }),
    );
    expect(run.faultsInjected['wear-out'], why(run)).toBe(1);
    expect(run.faultsInjected['flash-failure'], why(run)).toBe(1);
    expect(run.faultLog).toContainEqual({ device: 'worn-0', kind: 'wear-out', key: 'partition:slot1:0' });
    expect(run.faultLog).toContainEqual({ device: 'failing-0', kind: 'flash-failure', key: 'op:5' });
    expect(noted(run, 'wear-out')).toBe(1);
    expect(run.devices.find((d) => d.id === 'worn-0')!.finalVersion).toBe('1.0.0+0');
  }, 120_000);

  it('network faults through the chaos proxy: loss, delay, duplicate, reorder, corrupt, blackhole, rebind', async () => {
    const run = await runScenario(
      base('network', {
        groups: [{ name: 'fleet', count: 1, image: 'v1', agent: { maxAttemptsPerVersion: 10 } }],
        faults: [{ kind: 'network', loss: 0.1, delay_ms: 20, jitter_ms: 20, duplicate: 0.1, reorder: 0.1, corrupt: 0.05, blackholes: [{ at_ms: 30_000, for_ms: 5_000 }], rebindAt_ms: [20_000] }],
        expect: { groups: { fleet: { version: '1.1.0' } } },
      }),
    );
    expect(run.passed, why(run)).toBe(true);
    for (const kind of ['loss', 'delay', 'duplicate', 'reorder', 'corrupt', 'rebind']) expect(run.faultsInjected[kind] ?? 0, kind).toBeGreaterThan(0);
    expect(run.faultLog.some((f) => f.kind === 'loss' && /^datagram:(up|down):\d+$/.test(f.key))).toBe(true);
    expect(run.devices[0]!.netFaults).toBeGreaterThan(0);
    expect(run.devices[0]!.timeline.some((e) => e.kind === 'net-fault')).toBe(true);
  }, 120_000);

  it('server-side faults: wrong manifest hash, artifact replaced mid-download, server restart', async () => {
    const run = await runScenario(
      base('server', {
        images: { v1: { version: '1.0.0' }, v2: { version: '1.1.0' }, v3: { version: '1.2.0' }, v3b: { version: '1.2.0', payloadSeed: 5 }, v4: { version: '1.3.0' } },
        timeline: [
          { at_ms: 0, release: { id: 'r1', images: ['v2'] } },
          { at_ms: 60_000, release: { id: 'r2', images: ['v3'] } },
          { at_ms: 200_000, release: { id: 'r3', images: ['v4'] } },
        ],
        faults: [
          { kind: 'wrong-manifest-hash', image: 'v2' },
          { kind: 'replace-artifact', image: 'v3', with: 'v3b', atBlock: 3 },
          { kind: 'server-restart', at_ms: 150_000, down_ms: 3000 },
        ],
        expect: { groups: { fleet: { version: '1.3.0', reports: [{ r: 5, t: '1.1.0' }, { r: 5, t: '1.2.0' }, { s: 3, r: 1, t: '1.3.0' }] } } },
      }),
    );
    expect(run.passed, why(run)).toBe(true);
    expect(run.faultsInjected).toMatchObject({ 'wrong-manifest-hash': 1, 'replace-artifact': 1, 'server-restart': 1 });
    expect(noted(run, 'server-restart')).toBe(1);
    expect(noted(run, 'replace-artifact')).toBe(1);
  }, 120_000);
});
