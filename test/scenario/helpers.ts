/** Small scenario objects for the runner tests: one nrf52840 swap-move device updating 1.0.0 -> 1.1.0. */
import type { ScenarioRun } from '../../src/scenario/runner.js';

export function base(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    description: `test scenario ${name}`,
    seed: 5,
    board: 'nrf52840',
    strategy: 'swap-move',
    timeScale: 0.01,
    wallLimit_s: 40,
    images: { v1: { version: '1.0.0' }, v2: { version: '1.1.0' } },
    groups: [{ name: 'fleet', count: 1, image: 'v1' }],
    timeline: [{ at_ms: 0, release: { id: 'r1', images: ['v2'] } }],
    expect: { groups: { fleet: { version: '1.1.0' } } },
    ...extra,
  };
}

/** Timeline events noted for an injected fault of this kind, over every device. */
export function noted(run: ScenarioRun, kind: string): number {
  return run.devices.reduce((n, d) => n + d.timeline.filter((e) => e.detail?.['fault'] === kind).length, 0);
}

/** A readable summary for assertion messages. */
export function why(run: ScenarioRun): string {
  return `${run.failure ?? 'passed'} faults=${JSON.stringify(run.faultsInjected)}`;
}
