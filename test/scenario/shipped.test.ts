/**
 * The `npm start` check: every shipped scenario in scenarios/ passes (each one a question QA
 * asks), there are at least 15 of them, each with a description, and every one that promises a
 * fault really injects it.
 */
import { describe, expect, it } from 'vitest';
import { runScenarios } from '../../src/scenario/run.js';

describe('shipped scenarios (npm start)', () => {
  it('all of scenarios/ pass', async () => {
    const run = await runScenarios(['scenarios']);
    expect(run.scenarios.length).toBeGreaterThanOrEqual(15);
    const failed = run.scenarios.filter((s) => !s.passed).map((s) => `${s.name}: ${s.failure} (${s.replay})`);
    expect(failed).toEqual([]);
    for (const s of run.scenarios) {
      expect(s.description.length, s.name).toBeGreaterThan(20);
      expect(s.invariants.every((i) => i.passed), s.name).toBe(true);
    }
    // the fault scenarios are not vacuous
    const injected = new Set(run.scenarios.flatMap((s) => Object.keys(s.faultsInjected)));
    for (const kind of ['power-cut', 'torn-cut', 'loss', 'blackhole', 'rebind', 'server-restart', 'replace-artifact', 'wrong-manifest-hash', 'wear-out']) expect(injected, kind).toContain(kind);
  }, 300_000);
});
