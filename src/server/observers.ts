/**
 * Observers of `/.u/desired` (RFC 7641). One entry per (transport, endpoint, token); a new
 * registration with the same key replaces the old one. An entry ends when the client sends RST
 * to a notification or never acknowledges it (node-coap ends the stream: 'finish'), when it GETs
 * the resource without Observe (or with Observe 1) with the same token, when its DTLS session
 * closes, or when the table is full (the oldest goes). An ended entry is never written again.
 * Notifications go only to observers whose manifest changed since the last one they got.
 */
import type { ObserveWriteStream } from 'coap';

export interface Observation {
  key: string;
  device: string;
  transport: 'udp' | 'dtls';
  /** The DTLS session the registration came on (null over UDP). */
  sessionSerial: number | null;
  stream: ObserveWriteStream;
  /** The manifest last sent. */
  last: Buffer;
}

export class ObserverRegistry {
  private readonly entries = new Map<string, Observation>();

  constructor(
    private readonly maxObservers: number,
    private readonly maxPerDevice: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  add(o: Observation): void {
    this.remove(o.key);
    const mine = [...this.entries.values()].filter((e) => e.device === o.device);
    for (let i = 0; i <= mine.length - this.maxPerDevice; i++) {
      const old = mine[i];
      if (old) this.remove(old.key);
    }
    while (this.entries.size >= this.maxObservers) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.remove(oldest.value);
    }
    this.entries.set(o.key, o);
    o.stream.once('finish', () => {
      if (this.entries.get(o.key) === o) this.entries.delete(o.key);
    });
    o.stream.on('error', () => this.remove(o.key));
  }

  get(key: string): Observation | undefined {
    return this.entries.get(key);
  }

  /** End and forget an observation (no further notification, none sent now). */
  remove(key: string): boolean {
    const o = this.entries.get(key);
    if (!o) return false;
    this.entries.delete(key);
    if (!o.stream.writableEnded) o.stream.end();
    return true;
  }

  /** The session is gone: its observers are dropped. */
  dropSession(serial: number): void {
    for (const o of [...this.entries.values()]) if (o.sessionSerial === serial) this.remove(o.key);
  }

  /** Send the current manifest to every observer whose manifest changed; returns how many. */
  notify(manifestFor: (device: string) => Buffer): number {
    let sent = 0;
    const cache = new Map<string, Buffer>();
    for (const o of [...this.entries.values()]) {
      let m = cache.get(o.device);
      if (!m) {
        m = manifestFor(o.device);
        cache.set(o.device, m);
      }
      if (m.equals(o.last) || o.stream.writableEnded) continue;
      o.last = m;
      o.stream.write(m);
      sent++;
    }
    return sent;
  }

  closeAll(): void {
    for (const key of [...this.entries.keys()]) this.remove(key);
  }

  list(): Observation[] {
    return [...this.entries.values()];
  }
}
