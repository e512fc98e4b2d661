/**
 * Observers of `/.u/desired` (RFC 7641). One entry per (transport, endpoint, token); a new
 * registration with the same key replaces the old one. An entry ends when the client sends RST
 * to a notification or never acknowledges it (node-coap ends the stream: 'finish'), when it GETs
 * the resource without Observe (or with Observe 1) with the same token, when its DTLS session
 * closes, or when the table is full (the oldest goes). An ended entry is never written again.
 * Notifications go only to observers whose manifest changed since the last one they got.
 */
import type { ObserveWriteStream } from 'coap';
import { ownedCopy } from '../buffers.js';

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
  /** In registration order (the oldest goes first when the table is full). */
  private readonly entries = new Map<string, Observation>();
  /** Keys per device and per DTLS session: a registration or a closing session must not scan every observer of a 10,000-device fleet. */
  private readonly byDevice = new Map<string, Set<string>>();
  private readonly bySession = new Map<number, Set<string>>();

  constructor(
    private readonly maxObservers: number,
    private readonly maxPerDevice: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  add(o: Observation): void {
    this.remove(o.key);
    o.last = ownedCopy(o.last);
    // a device's keys are in registration order (Set keeps insertion order): the oldest go first
    const mine = [...(this.byDevice.get(o.device) ?? [])];
    for (let i = 0; i <= mine.length - this.maxPerDevice; i++) {
      const old = mine[i];
      if (old !== undefined) this.remove(old);
    }
    while (this.entries.size >= this.maxObservers) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.remove(oldest.value);
    }
    this.entries.set(o.key, o);
    index(this.byDevice, o.device, o.key);
    if (o.sessionSerial !== null) index(this.bySession, o.sessionSerial, o.key);
    o.stream.once('finish', () => {
      if (this.entries.get(o.key) === o) this.forget(o);
    });
    o.stream.on('error', () => this.remove(o.key));
  }

  private forget(o: Observation): void {
    this.entries.delete(o.key);
    unindex(this.byDevice, o.device, o.key);
    if (o.sessionSerial !== null) unindex(this.bySession, o.sessionSerial, o.key);
  }

  get(key: string): Observation | undefined {
    return this.entries.get(key);
  }

  /** End and forget an observation (no further notification, none sent now). */
  remove(key: string): boolean {
    const o = this.entries.get(key);
    if (!o) return false;
    this.forget(o);
    if (!o.stream.writableEnded) o.stream.end();
    return true;
  }

  /** The session is gone: its observers are dropped. */
  dropSession(serial: number): void {
    for (const key of [...(this.bySession.get(serial) ?? [])]) this.remove(key);
  }

  /** Send the current manifest to every observer whose manifest changed; returns how many. */
  notify(manifestFor: (device: string) => Buffer): number {
    let sent = 0;
    const cache = new Map<string, Buffer>();
    for (const o of [...this.entries.values()]) {
      let m = cache.get(o.device);
      if (!m) {
        m = manifestFor(o.device);
        m = ownedCopy(m); // kept as `last` for as long as the observation lives (buffers.ts)
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

function index<K>(map: Map<K, Set<string>>, k: K, key: string): void {
  let set = map.get(k);
  if (!set) {
    set = new Set();
    map.set(k, set);
  }
  set.add(key);
}

function unindex<K>(map: Map<K, Set<string>>, k: K, key: string): void {
  const set = map.get(k);
  if (!set) return;
  set.delete(key);
  if (set.size === 0) map.delete(k);
}
