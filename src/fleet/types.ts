/**
 * Shapes shared by the fleet's main thread and its worker threads (all structured-clone safe),
 * and the fleet's result (what `ota-sim fleet --json` and a shard file carry).
 */
import type { Strategy } from '../flash/types.js';
import type { ChaosSchedule } from '../net/proxy/index.js';

/** One device of the fleet: everything about it follows from (fleet seed, index). */
export interface FleetDeviceSpec {
  index: number;
  identity: string;
  psk: string;
  seed: number;
  /** Power cut armed at this many flash ops after power-on (seeded), or null for none. */
  powerCutAfterOps: number | null;
  /** Board profile (default: SliceConfig.board). */
  board?: string;
  /** Key of the template (SliceConfig.templates) it starts from (default: SliceConfig.initialImage). */
  template?: string;
  /** Server-side tags (scenario groups). */
  tags?: string[];
  /** Scenario group it belongs to. */
  group?: string;
  /** Index into SliceConfig.chaos.schedules: it talks to the server through its own chaos proxy; null/absent: directly. */
  chaos?: number | null;
}

/** A programmed starting point: devices with this key start as copy-on-write clones of it. */
export interface SliceTemplate {
  key: string;
  board: string;
  /** Signed image programmed confirmed into slot0. */
  image: Uint8Array;
}

/** Network chaos: one seeded ChaosProxy per chosen device, between it and the server. */
export interface SliceChaos {
  schedules: ChaosSchedule[];
}

/** Chaos proxy counters summed over a slice's (or the fleet's) proxies. */
export interface ChaosTotals {
  devices: number;
  /** Fault counters of the proxies (loss, burst-loss, delay, duplicate, reorder, corrupt, blackhole, rebind). */
  faults: Record<string, number>;
  /** Datagrams the proxies received (up + down) and forwarded. */
  datagrams: number;
  forwarded: number;
  /** Dropped for reasons other than the schedule (held-queue full, flow limit, oversize, stale). */
  droppedOther: number;
}

export function emptyChaosTotals(): ChaosTotals {
  return { devices: 0, faults: {}, datagrams: 0, forwarded: 0, droppedOther: 0 };
}

export function addChaosTotals(into: ChaosTotals, t: ChaosTotals): void {
  into.devices += t.devices;
  for (const [k, v] of Object.entries(t.faults)) into.faults[k] = (into.faults[k] ?? 0) + v;
  into.datagrams += t.datagrams;
  into.forwarded += t.forwarded;
  into.droppedOther += t.droppedOther;
}

/** What a worker (or the in-process runner) needs to run its devices. */
export interface SliceConfig {
  server: { kind: 'udp' | 'dtls'; host: string; port: number };
  board: string;
  strategy: Strategy;
  /** Signed image programmed confirmed into slot0 of every device without a `template`. */
  initialImage: Uint8Array;
  /** Further starting points (device mixes: one per board and initial version). */
  templates?: SliceTemplate[];
  /** Network chaos for the devices with a `chaos` index. */
  chaos?: SliceChaos | null;
  /** Version ("1.1.0+0") whose confirmation counts as updated. */
  targetVersion: string;
  /** Trusted public keys, SPKI PEM. */
  trustPems: string[];
  timeScale: number;
  blockSize_bytes: number;
  window: number;
  /**
   * Floor of the agent's first DTLS handshake timeout and CoAP ACK timeout, in wall ms: at a fast
   * time scale their simulated defaults (1 s, 2 s) become a few wall ms, shorter than a loaded
   * server needs, and retransmissions then feed the overload (congestion collapse).
   */
  netTimeoutFloor_wallMs: number;
  /** Simulated ms between a device's manifest polls (the fallback behind Observe). */
  pollInterval_ms: number;
  /** Simulated ms a device stays off after a power cut. */
  powerOff_ms: number;
  /** Devices powered on per tick of `startTick_wallMs` while starting (spreads the handshakes). */
  startBatch: number;
  startTick_wallMs: number;
  /**
   * Power-ons wait while this thread's or the server thread's event loop lags more than this
   * (wall ms, smoothed): the fleet starts devices as fast as the host keeps up, at most
   * `startBatch` per tick. 0 turns pacing off.
   */
  maxLag_wallMs: number;
  /** Share identical flash sectors (content-addressed store). Default true. */
  shareSectors: boolean;
  /** Wall ms since the epoch the fleet started (times are measured from it). */
  fleetStart_epochMs: number;
}

/** How one device ended. */
export interface DeviceOutcome {
  index: number;
  identity: string;
  /** Wall ms after the fleet start when it confirmed the target, null if it did not. */
  updatedAt_wallMs: number | null;
  finalVersion: string | null;
  lastState: string;
  bricked: boolean;
  bootLoop: boolean;
  reboots: number;
  powerCuts: number;
  /** Download attempts beyond the first. */
  retries: number;
  /** Failure reasons seen (report reason names, refusals, rollbacks, power cuts). */
  failures: string[];
}

/** A device that is failing now: it recorded a failure and has not (yet) updated, or it bricked. */
export interface FailingNow {
  identity: string;
  /** The latest failure's name ("power-cut", "refused-signature", "bricked" ...). */
  reason: string;
  /** The latest failure's text after its name, where it is now (state, version), earlier failures. */
  detail: string;
  /** Simulated ms after the fleet start of its first failure. */
  since_ms: number;
}

/** Snapshot a worker sends while running. */
export interface SliceProgress {
  states: Record<string, number>;
  /** Running version (last booted; "(none)" when bricked) → devices. */
  versions: Record<string, number>;
  updated: number;
  bricked: number;
  /** The first MAX_FAILING_LISTED failing devices (of `failingTotal`). */
  failing: FailingNow[];
  failingTotal: number;
  /** State changes so far (the fleet is stalled when this stops moving). */
  changes: number;
  sectorsStored: number;
  sectorsShared: number;
  /** Devices powered on so far (the rest wait for their turn: start rate and pacing). */
  poweredOn: number;
  /** Start ticks that powered nothing on because this thread or the server's lagged. */
  pausedTicks: number;
}

/** Failing devices a progress snapshot lists at most (the dashboard's table shows as many). */
export const MAX_FAILING_LISTED = 200;

/** Progress of a slice with nothing in it. */
export function emptyProgress(): SliceProgress {
  return { states: {}, versions: {}, updated: 0, bricked: 0, failing: [], failingTotal: 0, changes: 0, sectorsStored: 0, sectorsShared: 0, poweredOn: 0, pausedTicks: 0 };
}

export type ToWorker =
  | { type: 'start'; config: SliceConfig; devices: FleetDeviceSpec[] }
  /** The server thread's smoothed event-loop lag (pacing of power-ons). */
  | { type: 'pace'; serverLag_wallMs: number }
  | { type: 'stop' };
export type FromWorker =
  | { type: 'progress'; progress: SliceProgress }
  | { type: 'updated'; index: number; at_wallMs: number }
  /** `live`: the progress just before the devices were powered off (`progress`: after). */
  | { type: 'done'; outcomes: DeviceOutcome[]; progress: SliceProgress; live: SliceProgress; chaos: ChaosTotals }
  | { type: 'error'; message: string };

/** Time to reach a share of the expected updates (null: not reached). */
export interface Milestone {
  percent: number;
  devices: number;
  wall_ms: number | null;
  simulated_ms: number | null;
}

/** What a fleet run (or one shard of it) produced. */
export interface FleetResult {
  format: 'ota-sim-fleet/1';
  seed: number;
  /** Devices in the whole fleet. */
  fleetDevices: number;
  shard: { index: number; count: number };
  /** Devices this run simulated (its shard's slice). */
  devices: number;
  /** Devices the release targets (rollout buckets), in this slice. */
  expected: number;
  updated: number;
  bricked: number;
  targetReached: boolean;
  rolloutPercent: number;
  targetVersion: string;
  board: string;
  durationMs: number;
  timeScale: number;
  milestones: Milestone[];
  /** Wall ms after start of every update, sorted (merging shards recomputes milestones from them). */
  updateTimes_wallMs: number[];
  failuresByReason: Record<string, number>;
  failingDevices: { identity: string; reasons: string[] }[];
  retries: number;
  reboots: number;
  powerCuts: number;
  /** Artifact bytes the server sent (embedded server), else null. */
  bytesServed: number | null;
  rssBytesPerDevice: number;
  rssNote: string;
  peakRssBytes: number;
  workers: number;
  sectorsStored: number;
  sectorsShared: number;
  /** Start ticks that powered nothing on because a thread lagged (pacing at work). */
  startPausedTicks?: number;
  /** The pacing threshold of the run (wall ms; 0: off). */
  maxLag_wallMs?: number;
  /** Simulated ms between a device's manifest polls. */
  pollInterval_ms?: number;
  /** Per board: devices, targeted and updated (device mixes; absent in results of older versions). */
  byBoard?: Record<string, MixCount>;
  /** Per initial version ("1.0.0+0"): devices, targeted and updated. */
  byInitialVersion?: Record<string, MixCount>;
  /** Per scenario group (--scenario). */
  byGroup?: Record<string, MixCount>;
  /** The scenario the fleet came from (--scenario), by name, and its target release's id (the last release step). */
  scenario?: string;
  release?: string;
  /** Probability that a device talks through a chaos proxy (--chaos-rate), and the schedule as given. */
  chaosRate?: number;
  chaosSpec?: string;
  /** Devices behind a chaos proxy, and the proxies' fault counters summed. */
  chaosDevices?: number;
  chaosFaults?: Record<string, number>;
  chaosDatagrams?: number;
}

export interface MixCount {
  devices: number;
  targeted: number;
  updated: number;
}
