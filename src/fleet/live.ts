/**
 * The fleet's side of the live dashboard: turns the fleet's progress into dashboard snapshots
 * and publishes them, at most one per MIN_INTERVAL_WALL_MS of wall time plus the final (done) one.
 */
import type { Dashboard, FleetSnapshot } from '../dashboard/index.js';
import { assert } from '../errors.js';
import type { FleetProgress } from './fleet.js';

/** ~4 snapshots per wall second (the progress loop ticks every 250 ms; this absorbs jitter). */
export const MIN_INTERVAL_WALL_MS = 240;

/** One dashboard snapshot of the fleet's progress. */
export function fleetSnapshot(p: FleetProgress): FleetSnapshot {
  return {
    at_ms: p.at_ms,
    wall_ms: p.wall_ms,
    devices: p.devices,
    byState: { ...p.states },
    byVersion: { ...p.versions },
    updated: p.updated,
    bricked: p.bricked,
    failing: p.failing.map((f) => ({ id: f.identity, reason: f.reason, detail: f.detail, since_ms: f.since_ms })),
    failingTotal: p.failingTotal,
    done: p.done,
  };
}

/**
 * An onProgress callback that publishes to `dash`: throttled to MIN_INTERVAL_WALL_MS, except the
 * final progress (done), which is always published. `now_ms` is injectable for tests.
 */
export function dashboardPublisher(dash: Pick<Dashboard, 'publish'>, now_ms: () => number = () => performance.now()): (p: FleetProgress) => void {
  let last_ms = -Infinity;
  let finished = false;
  return (p) => {
    assert(!finished, 'fleet dashboard: progress after the final snapshot');
    const now = now_ms();
    if (!p.done && now - last_ms < MIN_INTERVAL_WALL_MS) return;
    last_ms = now;
    finished = p.done;
    dash.publish(fleetSnapshot(p));
  };
}
