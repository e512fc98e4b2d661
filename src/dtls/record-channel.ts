/**
 * The record layer of an established DTLS 1.2 association with an AEAD PSK suite, client side:
 * seals outgoing records and opens the incoming records of the current epoch, nothing else (no
 * handshake, no renegotiation). The keys come from our lean handshake (client-handshake.ts, the
 * device's default) or from node-dtls-client's (src/net/dtls-transport.ts takes them over after
 * its handshake): node-dtls-client's own record layer costs several times the AES work per
 * datagram (generic struct (de)serialisation, 8 random bytes per record, a DNS lookup per send);
 * see bench/agent.ts.
 *
 * Our explicit nonce is epoch‖seq (unique per key by construction, RFC 5288 §3); the peer's is
 * read from its records. Sequence numbers continue from the handshake's; a record is accepted
 * once (64-record anti-replay window) and only after it authenticated.
 */
import { open, seal } from './cipher-suites.js';
import type { CipherSuite, DirectionKeys } from './cipher-suites.js';
import { MAX_RECORD_SEQ, RECORD_HEADER_BYTES } from './constants.js';
import { parseRecords } from './record.js';
import { ReplayWindow } from './replay-window.js';

export interface RecordChannelOptions {
  suite: CipherSuite;
  /** The epoch both directions are in (1 after a full handshake). */
  epoch: number;
  /** Record version on the wire, e.g. 0xfefd (DTLS 1.2). */
  version: number;
  /** Our write keys (the client's) and the peer's. */
  write: DirectionKeys;
  read: DirectionKeys;
  /** Sequence number of our next record in `epoch` (the handshake used the ones before). */
  nextWriteSeq: number;
}

export interface OpenedRecord {
  type: number;
  data: Buffer;
}

export interface RecordChannelStats {
  sealed: number;
  opened: number;
  /** Records dropped: another epoch, replayed, or not authentic. */
  dropped: number;
}

export class RecordChannel {
  readonly stats: RecordChannelStats = { sealed: 0, opened: 0, dropped: 0 };
  private writeSeq: number;
  private readonly replay = new ReplayWindow();

  constructor(private readonly o: RecordChannelOptions) {
    if (!(Number.isInteger(o.epoch) && o.epoch >= 1 && o.epoch <= 0xffff)) throw new Error(`assertion failed: record channel epoch ${o.epoch}`);
    if (!(Number.isInteger(o.nextWriteSeq) && o.nextWriteSeq >= 0 && o.nextWriteSeq <= MAX_RECORD_SEQ)) throw new Error(`assertion failed: record channel seq ${o.nextWriteSeq}`);
    if (o.write.key.length !== o.suite.key_bytes || o.read.key.length !== o.suite.key_bytes) throw new Error('assertion failed: record channel key length');
    if (o.write.salt.length !== o.suite.salt_bytes || o.read.salt.length !== o.suite.salt_bytes) throw new Error('assertion failed: record channel salt length');
    this.writeSeq = o.nextWriteSeq;
  }

  get epoch(): number {
    return this.o.epoch;
  }

  /** Sequence number the next sealed record gets. */
  get nextWriteSeq(): number {
    return this.writeSeq;
  }

  /** One record of `type` carrying `plaintext`, as a whole datagram. */
  seal(type: number, plaintext: Buffer): Buffer {
    if (this.writeSeq > MAX_RECORD_SEQ) throw new Error('assertion failed: record sequence numbers exhausted');
    const seq = this.writeSeq++;
    const { suite, write, epoch, version } = this.o;
    const out = seal(suite, write, epoch, seq, type, version, plaintext, RECORD_HEADER_BYTES);
    out.writeUInt8(type, 0);
    out.writeUInt16BE(version, 1);
    out.writeUInt16BE(epoch, 3);
    out.writeUIntBE(seq, 5, 6);
    out.writeUInt16BE(out.length - RECORD_HEADER_BYTES, 11);
    this.stats.sealed++;
    return out;
  }

  /** The authentic, fresh records of our epoch in a datagram, in order; everything else is dropped. */
  open(datagram: Buffer): OpenedRecord[] {
    const out: OpenedRecord[] = [];
    for (const rec of parseRecords(datagram)) {
      if (rec.epoch !== this.o.epoch || !this.replay.check(rec.seq)) {
        this.stats.dropped++;
        continue;
      }
      const data = open(this.o.suite, this.o.read, rec.epoch, rec.seq, rec.type, rec.version, rec.fragment);
      if (data === null) {
        this.stats.dropped++;
        continue;
      }
      this.replay.accept(rec.seq);
      this.stats.opened++;
      out.push({ type: rec.type, data });
    }
    return out;
  }
}
