/**
 * The operation journal: one compact entry per flash op (kind, chip, address, length, and a
 * reference into a byte arena for written data), so that a sweep can rebuild the flash as it was
 * after any number of ops without re-running whatever produced them.
 */

export const OpKind = {
  Write: 0,
  Erase: 1,
  /** The recorded outcome of a write cut short: bytes stored as they are, blocks programmed. */
  TornWrite: 2,
  /** The recorded outcome of an erase cut short: bytes stored as they are, sectors counted. */
  TornErase: 3,
  /** An op that changed nothing (refused by worn-out silicon, or an injected driver failure). */
  Failed: 4,
} as const;
export type OpKind = (typeof OpKind)[keyof typeof OpKind];

export interface JournalEntry {
  kind: OpKind;
  chip: number;
  addr: number;
  length: number;
  /** Written or stored bytes (a view into the arena), for Write, TornWrite and TornErase. */
  data: Uint8Array | null;
}

/** Upper bound on the arena: a journal is for one update run, not an unbounded log. */
export const JOURNAL_MAX_BYTES = 1 << 30;

export class Journal {
  private kinds = new Uint8Array(256);
  private chips = new Uint8Array(256);
  private addrs = new Float64Array(256);
  private lengths = new Float64Array(256);
  private dataOffs = new Float64Array(256);
  private arena = new Uint8Array(64 * 1024);
  private arenaUsed = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  get bytes(): number {
    return this.arenaUsed;
  }

  record(kind: OpKind, chip: number, addr: number, length: number, data: Uint8Array | null): void {
    if (this.count === this.kinds.length) this.growEntries();
    const i = this.count++;
    this.kinds[i] = kind;
    this.chips[i] = chip;
    this.addrs[i] = addr;
    this.lengths[i] = length;
    if (data) {
      if (this.arenaUsed + data.length > this.arena.length) this.growArena(data.length);
      this.arena.set(data, this.arenaUsed);
      this.dataOffs[i] = this.arenaUsed;
      this.arenaUsed += data.length;
    } else {
      this.dataOffs[i] = -1;
    }
  }

  entry(i: number): JournalEntry {
    if (!(i >= 0 && i < this.count)) throw new Error(`assertion failed: journal entry ${i} of ${this.count}`);
    const off = this.dataOffs[i]!;
    const kind = this.kinds[i]! as OpKind;
    const length = this.lengths[i]!;
    const dataLength = kind === OpKind.TornErase || kind === OpKind.TornWrite || kind === OpKind.Write ? length : 0;
    return {
      kind,
      chip: this.chips[i]!,
      addr: this.addrs[i]!,
      length,
      data: off >= 0 ? this.arena.subarray(off, off + dataLength) : null,
    };
  }

  clear(): void {
    this.count = 0;
    this.arenaUsed = 0;
  }

  private growEntries(): void {
    const n = this.kinds.length * 2;
    const grow = <T extends Uint8Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.kinds = grow(this.kinds, (k) => new Uint8Array(k));
    this.chips = grow(this.chips, (k) => new Uint8Array(k));
    this.addrs = grow(this.addrs, (k) => new Float64Array(k));
    this.lengths = grow(this.lengths, (k) => new Float64Array(k));
    this.dataOffs = grow(this.dataOffs, (k) => new Float64Array(k));
  }

  private growArena(extra: number): void {
    let n = this.arena.length * 2;
    while (n < this.arenaUsed + extra) n *= 2;
    if (n > JOURNAL_MAX_BYTES) throw new Error(`flash journal would exceed ${JOURNAL_MAX_BYTES} bytes`);
    const b = new Uint8Array(n);
    b.set(this.arena.subarray(0, this.arenaUsed));
    this.arena = b;
  }
}
