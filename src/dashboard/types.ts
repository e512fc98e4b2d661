/**
 * What the fleet runner publishes to the live dashboard: one snapshot of the whole fleet at a
 * moment of simulated time. The dashboard keeps a bounded history of these for its charts.
 */

/** A device that is failing right now (or has failed for good), as shown in the page's table. */
export interface FailingDevice {
  id: string;
  reason: string;
  detail: string;
  /** Simulated ms since the fleet started at which it began failing. */
  since_ms: number;
}

export interface FleetSnapshot {
  /** Simulated ms since the fleet started. */
  at_ms: number;
  /** Wall-clock ms since the fleet started (shown, not charted). */
  wall_ms: number;
  devices: number;
  /** Agent state ("downloading", "testing.selfTest" ...) → number of devices in it. */
  byState: Record<string, number>;
  /** Running version ("1.2.0") → number of devices running it. */
  byVersion: Record<string, number>;
  updated: number;
  bricked: number;
  /** Bounded: the first MAX_FAILING_ROWS (200); longer lists are cut by publish(). */
  failing: FailingDevice[];
  /** Failing devices in all, when there are more than `failing` lists (optional; default its length). */
  failingTotal?: number;
  /** The run is over: the page shows it finished. */
  done: boolean;
}

/** Rows of `failing` a snapshot carries; more are cut (the count of the cut ones is kept). */
export const MAX_FAILING_ROWS = 200;
