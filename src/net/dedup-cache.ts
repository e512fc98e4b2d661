/**
 * Message IDs of confirmable and non-confirmable messages received from the server, remembered
 * for EXCHANGE_LIFETIME (RFC 7252 §4.5) with the reply sent to each (an ACK or RST, or nothing
 * for NON), so a duplicate is answered the same way and processed once. Bounded: past
 * `capacity` entries the oldest is forgotten first.
 */
export interface DedupEntry {
  expires_ms: number;
  /** The datagram sent in reply (ACK or RST), resent for a duplicate; null for NON. */
  reply: Buffer | null;
}

export class DedupCache {
  private readonly entries = new Map<number, DedupEntry>();

  constructor(
    private readonly lifetime_ms: number,
    readonly capacity: number,
  ) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new Error(`assertion failed: dedup capacity ${capacity}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entry for a message ID still within its lifetime, else undefined. */
  get(messageId: number, now_ms: number): DedupEntry | undefined {
    const e = this.entries.get(messageId);
    if (e && e.expires_ms <= now_ms) {
      this.entries.delete(messageId);
      return undefined;
    }
    return e;
  }

  remember(messageId: number, reply: Buffer | null, now_ms: number): void {
    this.entries.delete(messageId);
    // Map iteration is insertion order: the first entries are the oldest
    for (const [id, e] of this.entries) {
      if (this.entries.size < this.capacity && e.expires_ms > now_ms) break;
      this.entries.delete(id);
    }
    this.entries.set(messageId, { expires_ms: now_ms + this.lifetime_ms, reply });
  }
}
