/**
 * The chaos proxy's contract (FAULTS.md "Network"): a UDP relay on 127.0.0.1 between devices and
 * a server, applying a seeded schedule to real datagrams in both directions. Decisions are keyed
 * by (flow, direction, datagram index) — never by wall time — so a seed replays exactly; only
 * blackhole windows and rebinds are placed in (simulated) time, on the injected clock.
 */
import type { Clock } from '../../clock.js';

export type ProxyDirection = 'up' | 'down'; // up: device -> server; down: server -> device

export interface ChaosSchedule {
  /** Probability 0..1 that a datagram is dropped (independent loss). */
  loss?: number;
  /** Burst loss (Gilbert–Elliott): probability of entering / leaving the bad state per datagram, loss inside it (default 1). */
  burst?: { enter: number; exit: number; loss?: number } | null;
  /** Fixed delay and uniform jitter added to every datagram, simulated ms. */
  delay_ms?: number;
  jitter_ms?: number;
  /** Probability 0..1 that a datagram is sent twice. */
  duplicate?: number;
  /** Probability 0..1 that a datagram is held back and sent after the next one of its flow and direction. */
  reorder?: number;
  /** Probability 0..1 that a datagram gets 1..3 seeded bytes flipped. */
  corrupt?: number;
  /** Link-down windows, simulated ms from the proxy's start: every datagram in them is dropped. */
  blackholes?: { at_ms: number; for_ms: number }[];
  /** Change the upstream source port of every flow every this many simulated ms (NAT rebinding). */
  rebindEvery_ms?: number | null;
  /** Rebind at these simulated times (ms from start). */
  rebindAt_ms?: number[];
  /** Which directions the probabilistic faults (loss, burst, delay/jitter, duplicate, reorder, corrupt) apply to (default both). */
  directions?: ProxyDirection[];
  /** A reordered datagram waits at most this long (simulated ms) for the next one of its flow and direction; default 500. */
  reorderTimeout_ms?: number;
}

export type ProxyFaultKind = 'loss' | 'burst-loss' | 'delay' | 'duplicate' | 'reorder' | 'corrupt' | 'blackhole' | 'rebind';

export interface ProxyFault {
  at_ms: number;
  /** The flow's label (ChaosProxyOptions.label, or "flow-N" in order of first datagram). */
  flow: string;
  direction: ProxyDirection | null;
  /** The datagram's index in its flow and direction (null for rebinds). */
  index: number | null;
  kind: ProxyFaultKind;
  /** Human-readable detail (delay, flipped byte offsets, old and new port, window length). */
  detail?: string;
}

export interface ChaosProxyOptions {
  /** Default 127.0.0.1:0 (the OS picks the port). Loopback only. */
  listen?: { host: string; port: number };
  /** The server; loopback only. */
  target: { host: string; port: number };
  seed: number;
  /** Simulated time (delays, blackholes, rebinds); default a ScaledClock(1). */
  clock?: Clock;
  schedule?: ChaosSchedule;
  /** Name of the single flow (one proxy per device in scenarios, so decisions are keyed by device). */
  label?: string;
  /** Upper bound on concurrent flows (client addresses); default 20 000. */
  maxFlows?: number;
  /** Upper bound on datagrams held for delay/reorder at once; beyond it they are dropped and counted. */
  maxHeld?: number;
  onFault?: (fault: ProxyFault) => void;
  /** How many faults `faults` keeps (the last N; the counters in stats() keep counting); default 1000. */
  faultLogLimit?: number;
  /** A flow with no datagram in either direction for this long (simulated ms) is closed, as a NAT forgets it; default 24 h. */
  idleTimeout_ms?: number;
  /** After a rebind the old upstream socket lingers this long (simulated ms) so replies to it are counted as `stale` and dropped; default 30 s. */
  staleLinger_ms?: number;
}

export interface ProxyStats {
  datagrams: Record<ProxyDirection, number>;
  forwarded: Record<ProxyDirection, number>;
  faults: Partial<Record<ProxyFaultKind, number>>;
  /** Flows (client addresses) seen since start. */
  flows: number;
  rebinds: number;
  /** Flows open now. */
  activeFlows?: number;
  /** Datagrams held for delay or reorder right now. */
  held?: number;
  /** Datagrams dropped for reasons other than the schedule: maxHeld reached, maxFlows reached, larger than 65535 bytes, a reply to a rebound (old) port. */
  dropped?: { overflow: number; flowLimit: number; oversize: number; stale: number };
}
