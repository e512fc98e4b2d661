/**
 * The server side of one PSK handshake, from a cookie-verified ClientHello to the server's
 * Finished (RFC 6347 §4.2, RFC 4279):
 *
 *   ClientHello(cookie)  ->  ServerHello, [ServerKeyExchange(hint)], ServerHelloDone   (flight 4)
 *   ClientKeyExchange, ChangeCipherSpec, Finished  ->  ChangeCipherSpec, Finished      (flight 6)
 *
 * It keeps the handshake hash (over every message with its unfragmented 12-byte DTLS header, from
 * the cookie-bearing ClientHello on), retransmits flight 4 with backoff, reassembles fragments,
 * tolerates ChangeCipherSpec/Finished arriving before ClientKeyExchange, and derives the keys.
 * An unknown identity gets a random key, so it fails exactly like a wrong key (bad_record_mac on
 * the client's Finished) and the client cannot tell which identities exist.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { AlertDescription, AlertLevel, ContentType, DTLS_1_2, EMPTY_RENEGOTIATION_INFO_SCSV, ExtensionType, HandshakeType } from './constants.js';
import { keyBlockBytes, open, seal, splitKeyBlock } from './cipher-suites.js';
import type { CipherSuite, DirectionKeys } from './cipher-suites.js';
import { HandshakeAbort } from './errors.js';
import { encodeHandshake, fragmentHandshake, parseHandshakeFragments } from './handshake.js';
import type { HandshakeFragment } from './handshake.js';
import { FlightTimer } from './flight-timer.js';
import type { RetransmitPolicy } from './flight-timer.js';
import { encodeServerHello, encodeServerKeyExchangePsk, parseClientKeyExchangePsk } from './messages.js';
import type { ClientHello, Extension } from './messages.js';
import { extendedMasterSecret, keyBlock, masterSecret, pskPremasterSecret, verifyData } from './prf.js';
import { Reassembler } from './reassembly.js';
import type { HandshakeMessage } from './reassembly.js';
import { encodeRecord, packDatagrams } from './record.js';
import type { DtlsRecord } from './record.js';
import { ReplayWindow } from './replay-window.js';
import type { Clock } from '../clock.js';
import { RECORD_HEADER_BYTES } from './constants.js';
import { ownedCopy } from '../buffers.js';

export interface HandshakeConfig {
  clock: Clock;
  /** Server preference order. */
  suites: readonly CipherSuite[];
  identityHint: Buffer | null;
  psk: (identity: Buffer) => Buffer | undefined;
  mtu_bytes: number;
  retransmit: RetransmitPolicy;
  maxReassembly_bytes: number;
}

/** What a completed handshake hands to the session. */
export interface HandshakeResult {
  identity: Buffer;
  suite: CipherSuite;
  read: DirectionKeys;
  write: DirectionKeys;
  writeSeq0: number;
  writeSeq1: number;
  serverFinished: Buffer;
  extendedMasterSecret: boolean;
}

export interface HandshakeHost {
  sendDatagram(datagram: Buffer): void;
  complete(result: HandshakeResult): void;
  /** The handshake is over without a session; `alert` was already sent if not null. */
  fail(reason: string, alert: number | null): void;
}

/** Epoch-1 records that arrive before the keys or the ChangeCipherSpec, held at most this many. */
export const MAX_EARLY_EPOCH1_RECORDS = 8;

type State = 'wait-client-key-exchange' | 'wait-finished' | 'done';

export class ServerHandshake {
  readonly clientRandom: Buffer;
  readonly started_ms: number;
  private readonly serverRandom = randomBytes(32);
  private readonly suite: CipherSuite;
  private readonly ems: boolean;
  private readonly hash: Hash = createHash('sha256');
  private readonly reassembler: Reassembler;
  private readonly timer: FlightTimer;
  private state: State = 'wait-client-key-exchange';
  private writeSeq0: number;
  private writeMessageSeq: number;
  /** Flight 4 as handshake fragments; each resend wraps them in records with fresh sequence numbers. */
  private flight: Buffer[] = [];
  private master: Buffer | null = null;
  private keys: { client: DirectionKeys; server: DirectionKeys } | null = null;
  private identity: Buffer | null = null;
  private ccsReceived = false;
  private readonly early: DtlsRecord[] = [];
  private readonly replay1 = new ReplayWindow();

  constructor(
    private readonly config: HandshakeConfig,
    private readonly host: HandshakeHost,
    hello: ClientHello,
    helloMessageSeq: number,
    helloBody: Buffer,
    helloRecordSeq: number,
  ) {
    this.started_ms = config.clock.now();
    this.clientRandom = Buffer.from(hello.random);
    // Continue the client's record numbering so our epoch-0 records are newer than the
    // HelloVerifyRequest, which reused the first ClientHello's number (§4.2.1).
    this.writeSeq0 = helloRecordSeq;
    this.writeMessageSeq = helloMessageSeq;
    this.reassembler = new Reassembler(helloMessageSeq + 1, config.maxReassembly_bytes);
    this.timer = new FlightTimer(
      config.clock,
      config.retransmit,
      () => this.sendFlight(),
      () => this.abort('no answer to ServerHelloDone', null),
    );
    if (hello.clientVersion > DTLS_1_2) throw new HandshakeAbort(AlertDescription.protocolVersion, `client offers DTLS 0x${hello.clientVersion.toString(16)} only`);
    const suite = config.suites.find((s) => hello.cipherSuites.includes(s.id));
    if (!suite) throw new HandshakeAbort(AlertDescription.handshakeFailure, 'no common cipher suite');
    if (!hello.compressionMethods.includes(0)) throw new HandshakeAbort(AlertDescription.illegalParameter, 'null compression not offered');
    this.suite = suite;
    this.ems = hello.extensions.some((e) => e.type === ExtensionType.extendedMasterSecret);
    const ri = hello.extensions.find((e) => e.type === ExtensionType.renegotiationInfo);
    if (ri && !(ri.data.length === 1 && ri.data[0] === 0)) throw new HandshakeAbort(AlertDescription.handshakeFailure, 'non-empty renegotiation_info in an initial handshake');
    const offersRi = ri !== undefined || hello.cipherSuites.includes(EMPTY_RENEGOTIATION_INFO_SCSV);

    this.hash.update(encodeHandshake(HandshakeType.clientHello, helloMessageSeq, helloBody));
    const extensions: Extension[] = [];
    if (this.ems) extensions.push({ type: ExtensionType.extendedMasterSecret, data: Buffer.alloc(0) });
    // RFC 5746: echo an empty renegotiation_info; OpenSSL 3 clients refuse servers without it.
    if (offersRi) extensions.push({ type: ExtensionType.renegotiationInfo, data: Buffer.of(0) });
    this.addMessage(HandshakeType.serverHello, encodeServerHello(this.serverRandom, suite.id, extensions));
    if (config.identityHint !== null) this.addMessage(HandshakeType.serverKeyExchange, encodeServerKeyExchangePsk(config.identityHint));
    this.addMessage(HandshakeType.serverHelloDone, Buffer.alloc(0));
    this.sendFlight();
    this.timer.start();
  }

  get finished(): boolean {
    return this.state === 'done';
  }

  /** Keys are derived, so epoch-1 records can be tried against them. */
  get hasKeys(): boolean {
    return this.keys !== null && this.ccsReceived;
  }

  private addMessage(type: number, body: Buffer): void {
    const seq = this.writeMessageSeq++;
    this.hash.update(encodeHandshake(type, seq, body));
    this.flight.push(...fragmentHandshake(type, seq, body, this.config.mtu_bytes - RECORD_HEADER_BYTES));
  }

  private sendFlight(): void {
    const records = this.flight.map((f) => encodeRecord(ContentType.handshake, DTLS_1_2, 0, this.writeSeq0++, f));
    for (const d of packDatagrams(records, this.config.mtu_bytes)) this.host.sendDatagram(d);
  }

  /** The client repeated its ClientHello: our flight 4 was lost. */
  retransmit(): void {
    if (this.state === 'wait-client-key-exchange') {
      this.sendFlight();
      this.timer.start();
    }
  }

  /** A plaintext epoch-0 record other than a ClientHello. Throws HandshakeAbort/DecodeError. */
  handleEpoch0(rec: DtlsRecord): void {
    if (this.state === 'done') return;
    switch (rec.type) {
      case ContentType.handshake:
        this.handleFragments(parseHandshakeFragments(rec.fragment), 0);
        return;
      case ContentType.changeCipherSpec:
        if (rec.fragment.length !== 1 || rec.fragment[0] !== 1) throw new HandshakeAbort(AlertDescription.decodeError, 'malformed ChangeCipherSpec');
        if (this.ccsReceived) return;
        this.ccsReceived = true;
        this.drainEarly();
        return;
      case ContentType.alert:
        if (rec.fragment.length === 2 && rec.fragment[0] === AlertLevel.fatal) this.abort(`client sent fatal alert ${rec.fragment[1]}`, null);
        return;
      default:
        return; // application data in epoch 0 is never valid: drop
    }
  }

  /**
   * An epoch-1 record. Returns false when it does not authenticate with this handshake's keys
   * (the caller decides between an older session and failing the handshake).
   */
  handleEpoch1(rec: DtlsRecord): boolean {
    if (this.state === 'done') return false;
    if (!this.hasKeys) {
      // Reordered ahead of ClientKeyExchange or ChangeCipherSpec: hold a few, drop the rest.
      if (this.early.length < MAX_EARLY_EPOCH1_RECORDS) this.early.push({ ...rec, fragment: Buffer.from(rec.fragment) });
      return true;
    }
    const keys = this.keys;
    if (keys === null || !this.replay1.check(rec.seq)) return true;
    const plaintext = open(this.suite, keys.client, rec.epoch, rec.seq, rec.type, rec.version, rec.fragment);
    if (plaintext === null) return false;
    this.replay1.accept(rec.seq);
    if (rec.type === ContentType.handshake) this.handleFragments(parseHandshakeFragments(plaintext), 1);
    else if (rec.type === ContentType.alert && plaintext.length === 2 && plaintext[0] === AlertLevel.fatal) this.abort(`client sent fatal alert ${plaintext[1]}`, null);
    return true;
  }

  private drainEarly(): void {
    if (!this.hasKeys) return;
    const held = this.early.splice(0);
    for (const r of held) {
      if (this.state === 'done') return;
      if (!this.handleEpoch1(r)) throw new HandshakeAbort(AlertDescription.badRecordMac, 'client Finished does not authenticate (wrong key or unknown identity)');
    }
  }

  private handleFragments(fragments: HandshakeFragment[], epoch: number): void {
    for (const f of fragments) {
      if (f.msgType === HandshakeType.clientHello) continue; // ClientHellos are routed by the server
      this.reassembler.add(f);
      for (let m = this.reassembler.next(); m !== null; m = this.reassembler.next()) {
        this.process(m, epoch);
        if (this.state === 'done') return;
      }
    }
  }

  private process(m: HandshakeMessage, epoch: number): void {
    if (this.state === 'wait-client-key-exchange') {
      if (m.msgType !== HandshakeType.clientKeyExchange || epoch !== 0) throw new HandshakeAbort(AlertDescription.unexpectedMessage, `expected ClientKeyExchange, got type ${m.msgType}`);
      this.timer.stop(); // flight 5 has begun: flight 4 arrived
      const identity = parseClientKeyExchangePsk(m.body);
      this.identity = ownedCopy(identity);
      const psk = this.config.psk(this.identity) ?? randomBytes(16);
      this.hash.update(encodeHandshake(m.msgType, m.messageSeq, m.body));
      const premaster = pskPremasterSecret(psk);
      this.master = this.ems
        ? extendedMasterSecret(premaster, this.hash.copy().digest())
        : masterSecret(premaster, this.clientRandom, this.serverRandom);
      this.keys = splitKeyBlock(this.suite, keyBlock(this.master, this.clientRandom, this.serverRandom, keyBlockBytes(this.suite)));
      this.state = 'wait-finished';
      this.drainEarly();
      return;
    }
    if (this.state === 'wait-finished') {
      if (m.msgType !== HandshakeType.finished || epoch !== 1) throw new HandshakeAbort(AlertDescription.unexpectedMessage, `expected Finished, got type ${m.msgType}`);
      const master = this.master;
      const keys = this.keys;
      const identity = this.identity;
      if (master === null || keys === null || identity === null) throw new Error('assertion failed: Finished before keys');
      const expected = verifyData(master, 'client', this.hash.copy().digest());
      if (m.body.length !== expected.length || !timingSafeEqual(m.body, expected)) throw new HandshakeAbort(AlertDescription.decryptError, 'client Finished verify_data mismatch');
      this.hash.update(encodeHandshake(m.msgType, m.messageSeq, m.body));
      const serverFinished = encodeHandshake(HandshakeType.finished, this.writeMessageSeq++, verifyData(master, 'server', this.hash.digest()));
      const ccs = encodeRecord(ContentType.changeCipherSpec, DTLS_1_2, 0, this.writeSeq0++, Buffer.of(1));
      const fin = encodeRecord(ContentType.handshake, DTLS_1_2, 1, 0, seal(this.suite, keys.server, 1, 0, ContentType.handshake, DTLS_1_2, serverFinished));
      this.state = 'done';
      this.timer.stop();
      this.host.sendDatagram(Buffer.concat([ccs, fin]));
      this.host.complete({
        identity,
        suite: this.suite,
        read: keys.client,
        write: keys.server,
        writeSeq0: this.writeSeq0,
        writeSeq1: 1,
        serverFinished: ownedCopy(serverFinished),
        extendedMasterSecret: this.ems,
      });
    }
  }

  /** Send a fatal alert (plaintext: the client reads epoch 0 until our ChangeCipherSpec) and stop. */
  abort(reason: string, alert: number | null): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.timer.stop();
    if (alert !== null) this.host.sendDatagram(encodeRecord(ContentType.alert, DTLS_1_2, 0, this.writeSeq0++, Buffer.of(AlertLevel.fatal, alert)));
    this.host.fail(reason, alert);
  }

  /** Stop timers without a word to the peer (server shutdown, eviction, timeout). */
  dispose(): void {
    this.state = 'done';
    this.timer.stop();
  }
}
