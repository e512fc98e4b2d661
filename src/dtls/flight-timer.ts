/**
 * Flight retransmission timer (RFC 6347 §4.2.4): resend the last flight when no answer came,
 * doubling the wait each time up to a ceiling, and give up after a bounded number of resends.
 * All waiting goes through the injected clock.
 */
import type { Clock, TimerHandle } from '../clock.js';

export interface RetransmitPolicy {
  /** First wait (RFC 6347 suggests 1 s). */
  initial_ms: number;
  /** Ceiling of the doubled wait (RFC 6347: 60 s). */
  max_ms: number;
  /** Resends before giving up. */
  maxRetransmissions: number;
}

export class FlightTimer {
  private handle: TimerHandle | null = null;
  private resends = 0;
  private wait_ms: number;

  constructor(
    private readonly clock: Clock,
    private readonly policy: RetransmitPolicy,
    private readonly resend: () => void,
    private readonly giveUp: () => void,
  ) {
    this.wait_ms = policy.initial_ms;
  }

  /** (Re)arm after a flight was sent. */
  start(): void {
    this.stop();
    this.handle = this.clock.setTimeout(() => this.fire(), this.wait_ms);
  }

  private fire(): void {
    this.handle = null;
    if (this.resends >= this.policy.maxRetransmissions) {
      this.giveUp();
      return;
    }
    this.resends++;
    this.wait_ms = Math.min(this.policy.max_ms, this.wait_ms * 2);
    this.resend();
    this.start();
  }

  stop(): void {
    this.handle?.cancel();
    this.handle = null;
  }
}
