/**
 * A scenario's `network` fault as the chaos proxy's schedule: one device's proxy (runner.ts) and
 * a fleet group's proxies (src/fleet/scenario.ts) read the fault the same way. Several network
 * faults on one device add up: the later one's rates win, blackholes and rebind times accumulate.
 */
import type { ChaosSchedule } from '../net/proxy/index.js';
import type { FaultSpec } from './schema.js';

export type NetworkFaultSpec = Extract<FaultSpec, { kind: 'network' }>;

/** Add a network fault to a schedule (in place) and return it. */
export function addNetworkFault(schedule: ChaosSchedule, f: NetworkFaultSpec): ChaosSchedule {
  if (f.loss !== undefined) schedule.loss = f.loss;
  if (f.burst !== undefined) schedule.burst = f.burst;
  if (f.delay_ms !== undefined) schedule.delay_ms = f.delay_ms;
  if (f.jitter_ms !== undefined) schedule.jitter_ms = f.jitter_ms;
  if (f.duplicate !== undefined) schedule.duplicate = f.duplicate;
  if (f.reorder !== undefined) schedule.reorder = f.reorder;
  if (f.corrupt !== undefined) schedule.corrupt = f.corrupt;
  if (f.blackholes !== undefined) schedule.blackholes = [...(schedule.blackholes ?? []), ...f.blackholes];
  if (f.rebindEvery_ms !== undefined) schedule.rebindEvery_ms = f.rebindEvery_ms;
  if (f.rebindAt_ms !== undefined) schedule.rebindAt_ms = [...(schedule.rebindAt_ms ?? []), ...f.rebindAt_ms];
  if (f.directions !== undefined) schedule.directions = f.directions;
  return schedule;
}
