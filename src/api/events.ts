/**
 * API facade, device events: one typed stream per device that is both an emitter (`on(type, fn)`)
 * and an async iterable (`for await (const e of device.events)`). Iteration starts at the first
 * event still kept (so nothing is missed between powerOn() and the loop) and ends when the device
 * is closed. The log is bounded: beyond MAX_EVENTS_KEPT the oldest half is dropped (an iterator
 * that fell behind skips to the oldest kept event; `dropped` counts them).
 */
import type { AgentEvent } from '../agent/index.js';
import type { ResetReason, WatchdogCause } from '../device/index.js';

/** Everything a device built by createDevice reports: the agent's events and the device's own. */
export type DeviceEvent =
  | AgentEvent
  /** The bootloader booted an image and the firmware starts (`confirmed`: image_ok at boot). */
  | { type: 'booted'; version: string; confirmed: boolean; action: string; resumed: boolean; at_ms: number }
  | { type: 'bricked'; reason: string; at_ms: number }
  | { type: 'reboot'; reason: ResetReason; reboots: number; at_ms: number }
  | { type: 'watchdog'; cause: WatchdogCause; at_ms: number }
  /** Power went away: `trigger` says which powerCut() asked for it ('now', 'op:N', 'block:N', 'state:NAME#K'). */
  | { type: 'power-cut'; opIndex: number; during: 'boot' | 'firmware'; trigger: string; at_ms: number }
  | { type: 'power-on'; at_ms: number }
  | { type: 'boot-loop'; reboots: number; at_ms: number }
  /** Something failed outside any caller's stack (e.g. a scheduled power-on); the device stays off. */
  | { type: 'error'; message: string; code: string | null; at_ms: number };

export type DeviceEventType = DeviceEvent['type'];
export type DeviceEventOf<T extends DeviceEventType> = Extract<DeviceEvent, { type: T }>;

/** Events kept for iterators and `history` at most. */
export const MAX_EVENTS_KEPT = 50_000;

export class DeviceEventStream implements AsyncIterable<DeviceEvent> {
  private log: DeviceEvent[] = [];
  /** Absolute index of log[0]. */
  private base = 0;
  private _dropped = 0;
  private ended = false;
  private readonly listeners = new Set<(e: DeviceEvent) => void>();
  private readonly wakers = new Set<() => void>();

  /** Events no longer kept (the log is bounded). */
  get dropped(): number {
    return this._dropped;
  }

  /** The events kept so far, oldest first (a copy). */
  get history(): DeviceEvent[] {
    return [...this.log];
  }

  /** Listen to one event type (or '*' for all); returns the function that stops listening. */
  on<T extends DeviceEventType>(type: T, listener: (e: DeviceEventOf<T>) => void): () => void;
  on(type: '*', listener: (e: DeviceEvent) => void): () => void;
  on(type: string, listener: (e: never) => void): () => void {
    const l = (e: DeviceEvent): void => {
      if (type === '*' || e.type === type) (listener as (e: DeviceEvent) => void)(e);
    };
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }

  /** The next event of a type (or one `match` accepts), from now on. */
  next<T extends DeviceEventType>(type: T, match: (e: DeviceEventOf<T>) => boolean = () => true): Promise<DeviceEventOf<T>> {
    return new Promise((resolve) => {
      const off = this.on(type, (e) => {
        if (!match(e)) return;
        off();
        resolve(e);
      });
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<DeviceEvent> {
    let at = this.base;
    for (;;) {
      if (at < this.base) at = this.base; // fell behind the bounded log
      while (at < this.base + this.log.length) {
        yield this.log[at - this.base]!;
        at++;
        if (at < this.base) at = this.base;
      }
      if (this.ended) return;
      await new Promise<void>((r) => this.wakers.add(r));
    }
  }

  /** @internal the device publishes here. */
  emit(e: DeviceEvent): void {
    if (this.ended) return;
    if (this.log.length >= MAX_EVENTS_KEPT) {
      const drop = MAX_EVENTS_KEPT / 2;
      this.log = this.log.slice(drop);
      this.base += drop;
      this._dropped += drop;
    }
    this.log.push(e);
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        // a listener's bug must not unwind the firmware or the bootloader mid flash op: rethrow outside
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    this.wake();
  }

  /** @internal iteration ends (the device was closed). */
  end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const ws = [...this.wakers];
    this.wakers.clear();
    for (const w of ws) w();
  }
}
