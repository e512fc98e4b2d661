/**
 * Handshake message reassembly (RFC 6347 §4.2.3): fragments of the messages expected next, in
 * any order, overlapping or duplicated, into whole messages delivered strictly by message_seq.
 * Bounded: only a small window of future message_seq values is buffered, and the bytes held are
 * capped, so a peer cannot make the server hold more than `maxBuffered_bytes`.
 */
import { DecodeError } from './errors.js';
import type { HandshakeFragment } from './handshake.js';

export interface HandshakeMessage {
  msgType: number;
  messageSeq: number;
  body: Buffer;
}

/** How many message_seq values past the next expected one are buffered. */
export const REASSEMBLY_SEQ_WINDOW = 4;

class PartialMessage {
  readonly body: Buffer;
  private readonly filled: Uint8Array;
  private missing_bytes: number;
  constructor(
    readonly msgType: number,
    length: number,
  ) {
    this.body = Buffer.alloc(length);
    this.filled = new Uint8Array(length);
    this.missing_bytes = length;
  }

  add(offset: number, bytes: Buffer): void {
    bytes.copy(this.body, offset);
    for (let i = offset; i < offset + bytes.length; i++) {
      if (this.filled[i] === 0) {
        this.filled[i] = 1;
        this.missing_bytes--;
      }
    }
  }

  get complete(): boolean {
    return this.missing_bytes === 0;
  }
}

export class Reassembler {
  private readonly partial = new Map<number, PartialMessage>();
  private buffered_bytes = 0;

  constructor(
    /** message_seq of the next message to deliver. */
    private nextSeq: number,
    private readonly maxBuffered_bytes: number,
  ) {}

  get expectedSeq(): number {
    return this.nextSeq;
  }

  /**
   * Take one fragment. Returns false when it belongs to an earlier message (a retransmission the
   * caller may answer) and true otherwise. Throws DecodeError on inconsistent fragments.
   */
  add(f: HandshakeFragment): boolean {
    if (f.messageSeq < this.nextSeq) return false;
    if (f.messageSeq >= this.nextSeq + REASSEMBLY_SEQ_WINDOW) return true; // too far ahead: drop, the peer retransmits
    let p = this.partial.get(f.messageSeq);
    if (!p) {
      if (this.buffered_bytes + f.length > this.maxBuffered_bytes) return true; // over budget: drop
      p = new PartialMessage(f.msgType, f.length);
      this.partial.set(f.messageSeq, p);
      this.buffered_bytes += f.length;
    } else if (p.msgType !== f.msgType || p.body.length !== f.length) {
      throw new DecodeError(`fragments of message_seq ${f.messageSeq} disagree on type or length`);
    }
    p.add(f.fragmentOffset, f.body);
    return true;
  }

  /** The next whole message in message_seq order, or null. */
  next(): HandshakeMessage | null {
    const p = this.partial.get(this.nextSeq);
    if (!p || !p.complete) return null;
    this.partial.delete(this.nextSeq);
    this.buffered_bytes -= p.body.length;
    return { msgType: p.msgType, messageSeq: this.nextSeq++, body: p.body };
  }
}
