/**
 * A bounded table keyed by peer ("address/port"), least recently used first. The server keeps
 * three of them — established sessions, half-open handshakes and ClientHello reassemblies — so a
 * flood of ClientHellos or a huge fleet can never grow memory past the configured bounds: when a
 * table is full, its least recently active entry is evicted (and told so through `onEvict`).
 */

export function peerKey(address: string, port: number): string {
  return `${address}/${port}`;
}

export class BoundedTable<V> {
  private readonly map = new Map<string, V>();

  constructor(
    readonly max: number,
    private readonly onEvict: (key: string, value: V) => void,
  ) {
    if (!(Number.isInteger(max) && max >= 1)) throw new Error(`assertion failed: table bound ${max}`);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  /** Mark as most recently used. */
  touch(key: string): void {
    const v = this.map.get(key);
    if (v === undefined) return;
    this.map.delete(key);
    this.map.set(key, v);
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) {
      const first = this.map.entries().next();
      if (first.done === true) break;
      const [k, v] = first.value;
      this.map.delete(k);
      this.onEvict(k, v);
    }
  }

  /** Remove `key`, but only if it still maps to `expected` when that is given. */
  delete(key: string, expected?: V): boolean {
    if (expected !== undefined && this.map.get(key) !== expected) return false;
    return this.map.delete(key);
  }

  values(): V[] {
    return [...this.map.values()];
  }

  entries(): [string, V][] {
    return [...this.map.entries()];
  }
}
