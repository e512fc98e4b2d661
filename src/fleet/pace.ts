/**
 * How far behind this thread's event loop runs, for pacing the fleet's power-ons: a device
 * started while the server or the devices already lag makes every timer late (handshake and ACK
 * timeouts, the rollback timer) and its retransmissions add load — a fleet that starts faster than
 * the host keeps up with collapses. The meter is a wall-clock tick (host time, not simulated
 * time: it measures the host) whose lateness is smoothed over the last few ticks.
 */

/** Wall ms between two lag samples. */
export const LAG_TICK_WALL_MS = 20;
/** Weight of the newest sample in the smoothed lag. */
const SMOOTHING = 0.3;

export class LagMeter {
  private last_ms = performance.now();
  private smoothed_ms = 0;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => this.sample(), LAG_TICK_WALL_MS);
    this.timer.unref();
  }

  /** Smoothed lateness of this thread's timers, wall ms. */
  get lag_ms(): number {
    return this.smoothed_ms;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    const now = performance.now();
    const late_ms = Math.max(0, now - this.last_ms - LAG_TICK_WALL_MS);
    this.last_ms = now;
    this.smoothed_ms = (1 - SMOOTHING) * this.smoothed_ms + SMOOTHING * late_ms;
  }
}
