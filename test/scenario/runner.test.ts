/**
 * The runner as a whole: the same scenario and seed twice give the same fault decisions (keyed by
 * device and op / block / datagram index, not time) and the same verdicts; an expectation that
 * cannot hold fails the scenario with a sentence and the replay command; a wall-clock limit is a
 * failure that says so.
 */
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/scenario/runner.js';
import type { FaultDecision, ScenarioRun } from '../../src/scenario/runner.js';
import { base, why } from './helpers.js';

/** Loss decisions by datagram index, compared only up to the index both runs reached. */
function lossByIndex(run: ScenarioRun): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const f of run.faultLog) {
    const m = /^datagram:(up|down):(\d+)$/.exec(f.key);
    if (f.kind !== 'loss' || !m) continue;
    const k = `${f.device}/${m[1]}`;
    const set = out.get(k) ?? new Set<number>();
    set.add(Number(m[2]));
    out.set(k, set);
  }
  return out;
}

const cuts = (log: FaultDecision[]): string[] =>
  log
    .filter((f) => /cut/.test(f.kind))
    .map((f) => `${f.device} ${f.kind} ${f.key}`)
    .sort(); // devices interleave differently from run to run; per device the order and keys are fixed

describe('scenario runner', () => {
  it('same scenario and seed twice: same fault decisions and verdicts', async () => {
    const scenario = base('determinism', {
      seed: 77,
      groups: [{ name: 'fleet', count: 2, image: 'v1', agent: { maxAttemptsPerVersion: 10 } }],
      faults: [
        { kind: 'power-cut-at-block', everyBlocks: 7, maxCuts: 3 },
        { kind: 'power-cut-in-boot', phase: 'swap', sector: 1, torn: true },
        { kind: 'network', loss: 0.15 },
      ],
      expect: { groups: { fleet: { version: '1.1.0' } } },
    });
    const a = await runScenario(scenario);
    const b = await runScenario(scenario);
    expect(a.passed, why(a)).toBe(true);
    expect(b.passed, why(b)).toBe(true);
    expect(cuts(a.faultLog).length).toBeGreaterThanOrEqual(8);
    expect(cuts(b.faultLog)).toEqual(cuts(a.faultLog));
    const la = lossByIndex(a);
    const lb = lossByIndex(b);
    expect(la.size).toBeGreaterThan(0);
    let compared = 0;
    for (const [k, sa] of la) {
      const sb = lb.get(k) ?? new Set<number>();
      const upTo = Math.min(Math.max(-1, ...sa), Math.max(-1, ...sb));
      for (let i = 0; i <= upTo; i++) {
        expect(sb.has(i), `${k} datagram ${i}`).toBe(sa.has(i));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(10);
    expect(b.invariants).toEqual(a.invariants);
    expect(b.expectations).toEqual(a.expectations);
    // another seed moves the decisions
    const c = await runScenario(scenario, { seed: 78 });
    expect(lossByIndex(c)).not.toEqual(la);
  }, 180_000);

  it('an expectation that cannot hold fails the scenario with a sentence and the replay command', async () => {
    const run = await runScenario(base('impossible', { expect: { groups: { fleet: { version: '9.9.9' } }, faultsInjected: ['rebind'] } }), { seed: 3 });
    expect(run.passed).toBe(false);
    expect(run.failure).toMatch(/group fleet: every device ends on 9\.9\.9 confirmed: fleet-0 ends on 1\.1\.0\+0 confirmed|converges/);
    expect(run.replay).toBe('npx ota-sim run <scenario.yaml> --seed 3');
    expect(run.expectations.find((e) => e.what.startsWith('fault rebind'))).toMatchObject({ passed: false, detail: expect.stringMatching(/no rebind fault was injected/) });
    expect(run.devices[0]!.finalVersion).toBe('1.1.0+0');
  }, 120_000);

  it('the wall-clock limit is a failure that says so', async () => {
    const run = await runScenario(
      base('too-slow', {
        wallLimit_s: 1,
        groups: [{ name: 'fleet', count: 1, image: 'v1', agent: { rollbackTimer_ms: 3_600_000 } }],
        images: { v1: { version: '1.0.0' }, v2: { version: '1.1.0', behaviour: { connect: false } } },
      }),
    );
    expect(run.passed).toBe(false);
    expect(run.failure).toMatch(/had not settled when the wall-clock limit of 1 s was hit/);
  }, 60_000);
});
