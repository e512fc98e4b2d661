/**
 * A content-addressed store of frozen sector buffers, shared by many Flash instances in one thread
 * (a fleet): Flash.intern(store) swaps each sector a flash changed for the store's buffers with the
 * same bytes and programmed flags, so 10 000 devices holding the same image keep one copy of each
 * sector. Interned buffers are never changed in place (the chip copies a sector before writing it
 * again: chip.ts copy-on-write). The store holds buffers weakly: one that no flash uses any more is
 * garbage-collected and its entry dropped.
 */
import { createHash } from 'node:crypto';

/** Distinct buffers sharing one hash key (never seen with SHA-1; bounded anyway). */
const MAX_BUCKET = 8;

/** Weakly held buffers, found by content. */
class BufferTable {
  private readonly entries = new Map<string, WeakRef<Uint8Array>[]>();
  private readonly registry = new FinalizationRegistry<string>((key) => this.prune(key));
  lookups = 0;
  hits = 0;

  intern(buf: Uint8Array): Uint8Array {
    this.lookups++;
    const key = createHash('sha1').update(buf).digest('base64');
    const list = this.entries.get(key) ?? [];
    for (const ref of list) {
      const s = ref.deref();
      if (s && s.length === buf.length && Buffer.compare(s, buf) === 0) {
        this.hits++;
        return s;
      }
    }
    if (list.length >= MAX_BUCKET) list.shift(); // the oldest loses its place in the table, not its users
    list.push(new WeakRef(buf));
    this.entries.set(key, list);
    this.registry.register(buf, key);
    return buf;
  }

  /** Live buffers held. */
  get size(): number {
    let n = 0;
    for (const list of this.entries.values()) for (const ref of list) if (ref.deref()) n++;
    return n;
  }

  private prune(key: string): void {
    const list = this.entries.get(key);
    if (!list) return;
    const live = list.filter((ref) => ref.deref() !== undefined);
    if (live.length === 0) this.entries.delete(key);
    else this.entries.set(key, live);
  }
}

export class SectorStore {
  private readonly data = new BufferTable();
  private readonly prog = new BufferTable();

  /**
   * The stored buffers with exactly these bytes and flags; when there are none, the given buffers
   * become the stored ones. The caller must never change what it gets back (or gave).
   */
  intern(data: Uint8Array, prog: Uint8Array): { data: Uint8Array; prog: Uint8Array } {
    return { data: this.data.intern(data), prog: this.prog.intern(prog) };
  }

  /** Sector contents looked up, and how many were already stored (shared instead of kept). */
  get lookups(): number {
    return this.data.lookups;
  }
  get hits(): number {
    return this.data.hits;
  }

  /** Distinct sector contents held now. */
  get size(): number {
    return this.data.size;
  }
}
