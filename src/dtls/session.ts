/**
 * One established DTLS session (epoch 1): protects and unprotects records, keeps the write
 * sequence number and the anti-replay window, answers a retransmitted client Finished by resending
 * the server's last flight, and refuses renegotiation. The server owns the socket; a session only
 * asks its host to send datagrams and to forget it.
 */
import { EventEmitter } from 'node:events';
import { AlertDescription, AlertLevel, ContentType, DTLS_1_2, HandshakeType, MAX_RECORD_SEQ } from './constants.js';
import { open, seal } from './cipher-suites.js';
import type { CipherSuite, CipherSuiteName, DirectionKeys } from './cipher-suites.js';
import { parseHandshakeFragments } from './handshake.js';
import { encodeRecord } from './record.js';
import type { DtlsRecord } from './record.js';
import { ReplayWindow } from './replay-window.js';
import type { HandshakeResult } from './server-handshake.js';

/** Why a session ended. */
export type SessionCloseReason = 'close-notify' | 'closed-locally' | 'peer-alert' | 'idle-timeout' | 'replaced' | 'evicted' | 'server-closed';

export interface SessionHost {
  sendDatagram(session: DtlsSession, datagram: Buffer): void;
  forget(session: DtlsSession, reason: SessionCloseReason): void;
  now_ms(): number;
}

/** A completed handshake's result, plus who the session belongs to. */
export interface SessionParams extends Omit<HandshakeResult, 'extendedMasterSecret'> {
  serial: number;
  remoteAddress: string;
  remotePort: number;
}

/** How many times a retransmitted client Finished is answered (the client gives up by then). */
export const MAX_FINISHED_RESENDS = 8;

export interface SessionEvents {
  message: [data: Buffer];
  close: [reason: SessionCloseReason];
}

export class DtlsSession extends EventEmitter<SessionEvents> {
  /** Unique per server run: tells a device's successive sessions apart (same address and port). */
  readonly serial: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The PSK identity the client authenticated with. */
  readonly identity: Buffer;
  readonly cipherSuite: CipherSuiteName;
  lastActivity_ms: number;
  private readonly suite: CipherSuite;
  private readonly read: DirectionKeys;
  private readonly write: DirectionKeys;
  private writeSeq0: number;
  private writeSeq1: number;
  private readonly replay = new ReplayWindow();
  private serverFinished: Buffer | null;
  private finishedResends = 0;
  private closed = false;

  constructor(
    private readonly host: SessionHost,
    p: SessionParams,
  ) {
    super();
    this.serial = p.serial;
    this.remoteAddress = p.remoteAddress;
    this.remotePort = p.remotePort;
    this.identity = p.identity;
    this.cipherSuite = p.suite.name;
    this.suite = p.suite;
    this.read = p.read;
    this.write = p.write;
    this.writeSeq0 = p.writeSeq0;
    this.writeSeq1 = p.writeSeq1;
    this.serverFinished = p.serverFinished;
    this.lastActivity_ms = host.now_ms();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Encrypt one application datagram to the peer. False once the session is closed. */
  send(data: Buffer): boolean {
    if (this.closed) return false;
    this.host.sendDatagram(this, this.protect(ContentType.applicationData, data));
    return true;
  }

  /** Send close_notify and forget the session. */
  close(reason: SessionCloseReason = 'closed-locally'): void {
    if (this.closed) return;
    this.host.sendDatagram(this, this.protect(ContentType.alert, Buffer.of(AlertLevel.warning, AlertDescription.closeNotify)));
    this.end(reason);
  }

  /** Called by the host when it drops the session (idle, replaced, evicted, shutdown). */
  end(reason: SessionCloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.host.forget(this, reason);
    this.emit('close', reason);
  }

  private protect(type: number, plaintext: Buffer): Buffer {
    if (this.writeSeq1 > MAX_RECORD_SEQ) throw new Error('assertion failed: epoch 1 sequence numbers exhausted');
    const seq = this.writeSeq1++;
    return encodeRecord(type, DTLS_1_2, 1, seq, seal(this.suite, this.write, 1, seq, type, DTLS_1_2, plaintext));
  }

  /** Authenticate an epoch-1 record: the plaintext, or null (forged, corrupt or replayed). */
  unprotect(rec: DtlsRecord): Buffer | null {
    if (!this.replay.check(rec.seq)) return null;
    const plaintext = open(this.suite, this.read, rec.epoch, rec.seq, rec.type, rec.version, rec.fragment);
    if (plaintext === null) return null;
    this.replay.accept(rec.seq);
    return plaintext;
  }

  /** Act on an authenticated epoch-1 record. */
  handlePlaintext(type: number, plaintext: Buffer): void {
    if (this.closed) return;
    this.lastActivity_ms = this.host.now_ms();
    switch (type) {
      case ContentType.applicationData:
        this.serverFinished = null; // the client has our Finished: it would not send data otherwise
        this.emit('message', plaintext);
        return;
      case ContentType.alert:
        this.handleAlert(plaintext);
        return;
      case ContentType.handshake:
        this.handleHandshake(plaintext);
        return;
      default:
        return; // ChangeCipherSpec in epoch 1 or unknown: nothing to do
    }
  }

  /** A retransmitted ClientKeyExchange (epoch 0) also means our last flight was lost. */
  resendLastFlight(): void {
    if (this.closed || this.serverFinished === null || this.finishedResends >= MAX_FINISHED_RESENDS) return;
    this.finishedResends++;
    const ccs = encodeRecord(ContentType.changeCipherSpec, DTLS_1_2, 0, this.writeSeq0++, Buffer.of(1));
    const fin = this.protect(ContentType.handshake, this.serverFinished);
    this.host.sendDatagram(this, Buffer.concat([ccs, fin]));
  }

  private handleAlert(plaintext: Buffer): void {
    if (plaintext.length !== 2) return;
    const level = plaintext.readUInt8(0);
    const description = plaintext.readUInt8(1);
    if (description === AlertDescription.closeNotify) {
      // Answer with our own close_notify, as TLS requires, then forget the session.
      this.host.sendDatagram(this, this.protect(ContentType.alert, Buffer.of(AlertLevel.warning, AlertDescription.closeNotify)));
      this.end('close-notify');
    } else if (level === AlertLevel.fatal) {
      this.end('peer-alert');
    }
  }

  private handleHandshake(plaintext: Buffer): void {
    let types: number[];
    try {
      types = parseHandshakeFragments(plaintext).map((f) => f.msgType);
    } catch {
      return;
    }
    if (types.includes(HandshakeType.finished)) {
      this.resendLastFlight();
    } else if (types.includes(HandshakeType.clientHello)) {
      // Renegotiation is refused: a warning lets the client keep using this session.
      this.host.sendDatagram(this, this.protect(ContentType.alert, Buffer.of(AlertLevel.warning, AlertDescription.noRenegotiation)));
    }
  }
}
