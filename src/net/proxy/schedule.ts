/**
 * The chaos proxy's seeded decisions. What happens to a datagram is a pure function of
 * (seed, flow label, direction, datagram index) and the schedule — never of wall time — plus the
 * flow-direction's Gilbert–Elliott state, which is itself advanced once per datagram by the same
 * function. Tests and the scenario oracle recompute the expected decisions with ChaosDecider.
 */
import { InputError } from '../../errors.js';
import { Prng, mixSeed } from '../../prng.js';
import type { ChaosSchedule, ProxyDirection } from './types.js';

export const MAX_DATAGRAM_BYTES = 65535;
/** A corrupted datagram gets 1..MAX_CORRUPT_BYTES bytes flipped. */
export const MAX_CORRUPT_BYTES = 3;
/** Bounds on schedule values (simulated ms), so a typo cannot hold datagrams for a week. */
export const MAX_DELAY_MS = 600_000;
export const MAX_WINDOWS = 1000;
export const MIN_REBIND_EVERY_MS = 1;
export const DEFAULT_REORDER_TIMEOUT_MS = 500;

const DIRECTION_CODE: Record<ProxyDirection, number> = { up: 1, down: 2 };

/** FNV-1a, so a flow label (a device name) keys the decisions as well as a number would. */
export function labelHash(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export interface DatagramDecision {
  direction: ProxyDirection;
  index: number;
  /** Dropped by the schedule (a blackhole is decided by time, in the proxy). */
  drop: 'loss' | 'burst-loss' | null;
  duplicate: boolean;
  reorder: boolean;
  /** Seed for applyCorruption, or null: left intact. */
  corruptSeed: number | null;
  /** Simulated ms to hold the datagram: delay ± jitter, never below 0. */
  delay_ms: number;
}

/**
 * One datagram's decision. Every draw is made, in a fixed order, whatever the probabilities, so
 * changing one fault's rate does not move another fault's decisions. `bad` is the flow-direction's
 * Gilbert–Elliott state before this datagram; the state after it is returned.
 */
export function decideDatagram(
  seed: number,
  label: string,
  direction: ProxyDirection,
  index: number,
  schedule: ChaosSchedule,
  bad: boolean,
): { decision: DatagramDecision; bad: boolean } {
  const rng = new Prng(mixSeed(seed, labelHash(label), DIRECTION_CODE[direction], index));
  const uTransition = rng.next();
  const uBurstLoss = rng.next();
  const uLoss = rng.next();
  const uDuplicate = rng.next();
  const uReorder = rng.next();
  const uCorrupt = rng.next();
  const uJitter = rng.next();
  const corruptSeed = rng.nextU32();

  const pass: DatagramDecision = { direction, index, drop: null, duplicate: false, reorder: false, corruptSeed: null, delay_ms: 0 };
  const directions = schedule.directions ?? ['up', 'down'];
  if (!directions.includes(direction)) return { decision: pass, bad };

  // Gilbert–Elliott: move between the good and the bad state first, then lose inside the bad one.
  const burst = schedule.burst ?? null;
  let nextBad = false;
  if (burst) nextBad = bad ? !(uTransition < burst.exit) : uTransition < burst.enter;
  if (burst && nextBad && uBurstLoss < (burst.loss ?? 1)) return { decision: { ...pass, drop: 'burst-loss' }, bad: nextBad };
  if (uLoss < (schedule.loss ?? 0)) return { decision: { ...pass, drop: 'loss' }, bad: nextBad };

  const delay = schedule.delay_ms ?? 0;
  const jitter = schedule.jitter_ms ?? 0;
  const delay_ms = Math.max(0, delay + (uJitter * 2 - 1) * jitter);
  return {
    decision: {
      direction,
      index,
      drop: null,
      duplicate: uDuplicate < (schedule.duplicate ?? 0),
      reorder: uReorder < (schedule.reorder ?? 0),
      corruptSeed: uCorrupt < (schedule.corrupt ?? 0) ? corruptSeed : null,
      delay_ms: jitter === 0 ? delay : delay_ms,
    },
    bad: nextBad,
  };
}

/** The per-flow decision state: next index and Gilbert–Elliott state for each direction. */
export class ChaosDecider {
  private readonly next: Record<ProxyDirection, number> = { up: 0, down: 0 };
  private readonly bad: Record<ProxyDirection, boolean> = { up: false, down: false };

  constructor(
    readonly seed: number,
    readonly label: string,
  ) {}

  /** Decide the next datagram of `direction` (assigns its index, advances the burst state). */
  decide(direction: ProxyDirection, schedule: ChaosSchedule): DatagramDecision {
    const index = this.next[direction]++;
    const { decision, bad } = decideDatagram(this.seed, this.label, direction, index, schedule, this.bad[direction]);
    this.bad[direction] = bad;
    return decision;
  }

  /** How many datagrams of `direction` were decided. */
  count(direction: ProxyDirection): number {
    return this.next[direction];
  }
}

/**
 * Flip 1..3 distinct bytes of a copy of `bytes` (never the length), each with a non-zero mask, so
 * the corrupted datagram always differs. An empty datagram stays empty.
 */
export function applyCorruption(bytes: Uint8Array, seed: number): { bytes: Buffer; offsets: number[] } {
  const out = Buffer.from(bytes);
  if (out.length === 0) return { bytes: out, offsets: [] };
  const rng = new Prng(seed);
  const count = Math.min(out.length, 1 + rng.below(MAX_CORRUPT_BYTES));
  const offsets: number[] = [];
  for (let k = 0; k < count; k++) {
    let offset = rng.below(out.length);
    // Linear probe to a byte not flipped yet (count <= length, so this ends within `length` steps).
    while (offsets.includes(offset)) offset = (offset + 1) % out.length;
    offsets.push(offset);
    out[offset] = (out[offset] ?? 0) ^ (1 + rng.below(255));
  }
  return { bytes: out, offsets };
}

function probability(where: string, v: unknown): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new InputError('BAD_SCHEDULE', `${where}: expected a probability 0..1, got ${JSON.stringify(v)}`);
}

function duration(where: string, v: unknown, min = 0, max = MAX_DELAY_MS): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new InputError('BAD_SCHEDULE', `${where}: expected simulated ms in ${min}..${max}, got ${JSON.stringify(v)}`);
  }
}

/** Check a (partial) schedule; errors name the field as `where.field`. */
export function validateSchedule(s: ChaosSchedule, where = 'schedule'): void {
  probability(`${where}.loss`, s.loss);
  probability(`${where}.duplicate`, s.duplicate);
  probability(`${where}.reorder`, s.reorder);
  probability(`${where}.corrupt`, s.corrupt);
  if (s.burst) {
    probability(`${where}.burst.enter`, s.burst.enter);
    probability(`${where}.burst.exit`, s.burst.exit);
    probability(`${where}.burst.loss`, s.burst.loss);
    if (s.burst.enter === undefined || s.burst.exit === undefined) throw new InputError('BAD_SCHEDULE', `${where}.burst: expected both enter and exit probabilities`);
  }
  duration(`${where}.delay_ms`, s.delay_ms);
  duration(`${where}.jitter_ms`, s.jitter_ms);
  duration(`${where}.reorderTimeout_ms`, s.reorderTimeout_ms);
  const windows = s.blackholes ?? [];
  if (windows.length > MAX_WINDOWS) throw new InputError('BAD_SCHEDULE', `${where}.blackholes: at most ${MAX_WINDOWS} windows, got ${windows.length}`);
  windows.forEach((w, i) => {
    duration(`${where}.blackholes[${i}].at_ms`, w.at_ms, 0, Number.MAX_SAFE_INTEGER);
    duration(`${where}.blackholes[${i}].for_ms`, w.for_ms, 1, Number.MAX_SAFE_INTEGER);
  });
  if (s.rebindEvery_ms !== null && s.rebindEvery_ms !== undefined) duration(`${where}.rebindEvery_ms`, s.rebindEvery_ms, MIN_REBIND_EVERY_MS, Number.MAX_SAFE_INTEGER);
  const at = s.rebindAt_ms ?? [];
  if (at.length > MAX_WINDOWS) throw new InputError('BAD_SCHEDULE', `${where}.rebindAt_ms: at most ${MAX_WINDOWS} times, got ${at.length}`);
  at.forEach((t, i) => duration(`${where}.rebindAt_ms[${i}]`, t, 0, Number.MAX_SAFE_INTEGER));
  for (const d of s.directions ?? []) {
    if (d !== 'up' && d !== 'down') throw new InputError('BAD_SCHEDULE', `${where}.directions: expected "up" or "down", got ${JSON.stringify(d)}`);
  }
}
