/**
 * The injected clock. Simulation code never calls setTimeout or Date.now directly: it asks a
 * Clock, so one time-scale factor slows or speeds every timer of a scenario alike (agent, CoAP,
 * DTLS, proxy, flash costs) and tests can drive time by hand.
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Simulated milliseconds since the clock started. */
  now(): number;
  /** Run fn after `delay_ms` of simulated time. */
  setTimeout(fn: () => void, delay_ms: number): TimerHandle;
}

/**
 * Real time, scaled: `scale` 0.01 makes a simulated 300 s timer fire after 3 s of wall time.
 * `now()` reports simulated time, so durations keep their proportions.
 */
export class ScaledClock implements Clock {
  private readonly origin_ms: number;
  constructor(
    readonly scale = 1,
    private readonly wallNow: () => number = () => performance.now(),
  ) {
    if (!(scale > 0 && Number.isFinite(scale))) throw new Error(`assertion failed: time scale ${scale} must be > 0`);
    this.origin_ms = wallNow();
  }

  now(): number {
    return (this.wallNow() - this.origin_ms) / this.scale;
  }

  setTimeout(fn: () => void, delay_ms: number): TimerHandle {
    const t = setTimeout(fn, Math.max(0, delay_ms * this.scale));
    return { cancel: () => clearTimeout(t) };
  }
}

/** A clock that only moves when told to (tests). */
export class ManualClock implements Clock {
  private time_ms = 0;
  private readonly timers = new Set<{ at_ms: number; fn: () => void }>();

  now(): number {
    return this.time_ms;
  }

  setTimeout(fn: () => void, delay_ms: number): TimerHandle {
    const timer = { at_ms: this.time_ms + Math.max(0, delay_ms), fn };
    this.timers.add(timer);
    return { cancel: () => this.timers.delete(timer) };
  }

  /** Move time forward, firing due timers in order (bounded: a timer storm is a bug). */
  advance(delta_ms: number): void {
    const end = this.time_ms + delta_ms;
    for (let fired = 0; fired < 1_000_000; fired++) {
      let next: { at_ms: number; fn: () => void } | null = null;
      for (const t of this.timers) if (t.at_ms <= end && (next === null || t.at_ms < next.at_ms)) next = t;
      if (!next) break;
      this.timers.delete(next);
      this.time_ms = next.at_ms;
      next.fn();
    }
    this.time_ms = end;
  }
}
