/**
 * The client side of a DTLS 1.2 PSK handshake (RFC 6347, RFC 4279, RFC 7627), lean enough for a
 * fleet of simulated devices in one process: it offers a list of AEAD suites (CCM_8, CCM, GCM with
 * AES-128) and takes the server's choice, answers a HelloVerifyRequest with the cookie, reads and
 * ignores a PSK identity hint, reassembles fragmented server flights, retransmits its flights on
 * the injected clock (and when the server repeats an earlier flight), and fails at once on a
 * fatal alert. On success it hands over its UDP socket (connected to the server) and a
 * RecordChannel that continues the epoch-1 sequence numbers: the caller runs that one record layer.
 *
 * `abort()` is a power cut: the socket closes without an alert and the callback is never called.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import type { Clock } from '../clock.js';
import { keyBlockBytes, open, seal, splitKeyBlock, suiteById, suiteByName } from './cipher-suites.js';
import type { CipherSuite, CipherSuiteName, DirectionKeys } from './cipher-suites.js';
import { AlertDescription, AlertLevel, ContentType, DTLS_1_2, ExtensionType, HandshakeType, MAX_RECORD_SEQ } from './constants.js';
import { FlightTimer } from './flight-timer.js';
import type { RetransmitPolicy } from './flight-timer.js';
import { encodeHandshake, parseHandshakeFragments } from './handshake.js';
import { extendedMasterSecret, keyBlock, masterSecret, pskPremasterSecret, verifyData } from './prf.js';
import { Reader } from './reader.js';
import { Reassembler } from './reassembly.js';
import { RecordChannel } from './record-channel.js';
import { encodeRecord, parseRecords } from './record.js';
import type { DtlsRecord } from './record.js';
import { ReplayWindow } from './replay-window.js';

/** What we offer by default, CoAP's mandatory CCM_8 first (RFC 7252 §9.1.3.1). */
export const DEFAULT_CLIENT_SUITES: readonly CipherSuiteName[] = ['TLS_PSK_WITH_AES_128_CCM_8', 'TLS_PSK_WITH_AES_128_CCM', 'TLS_PSK_WITH_AES_128_GCM_SHA256'];

/** HelloVerifyRequests answered in one handshake (a server rotating its cookie secret sends a second). */
const MAX_HELLO_VERIFY_REQUESTS = 4;
/** Times an earlier server flight, received again, makes us resend ours (RFC 6347 §4.2.4). */
const MAX_PEER_TRIGGERED_RESENDS = 8;
/** Bytes of server flight held for reassembly. */
const MAX_REASSEMBLY_BYTES = 16 * 1024;
/** Longest PSK identity we send (RFC 4279 allows 2^16-1; our server accepts 256). */
export const MAX_IDENTITY_BYTES = 256;

export interface ClientHandshakeOptions {
  host: string;
  port: number;
  identity: string | Buffer;
  psk: Buffer;
  /** Suites offered, in our preference order (default DEFAULT_CLIENT_SUITES). */
  cipherSuites?: readonly CipherSuiteName[];
  /** Offer the extended master secret (default true). */
  extendedMasterSecret?: boolean;
  clock: Clock;
  retransmit: RetransmitPolicy;
  /** Local port (default 0: any). */
  localPort?: number;
  /** Local address (default 127.0.0.1: a simulated device talks to loopback only). */
  bindAddress?: string;
}

/** An established association, handed to the caller. */
export interface ClientAssociation {
  /** Connected to the server; no listeners left on it. */
  socket: Socket;
  localPort: number;
  suite: CipherSuite;
  /** Epoch 1, the next write sequence number after our Finished. */
  channel: RecordChannel;
  identityHint: Buffer | null;
  extendedMasterSecret: boolean;
}

export type ClientHandshakeFailureKind = 'alert' | 'timeout' | 'error';

export class ClientHandshakeError extends Error {
  constructor(
    readonly kind: ClientHandshakeFailureKind,
    message: string,
    /** The alert description the server sent (kind 'alert'). */
    readonly alert: number | null = null,
  ) {
    super(message);
    this.name = 'ClientHandshakeError';
  }
}

export type ClientHandshakeResult = { ok: true; association: ClientAssociation } | { ok: false; error: ClientHandshakeError };

type Stage = 'starting' | 'hello' | 'server-flight' | 'wait-finished' | 'done';

interface FlightRecord {
  type: number;
  epoch: 0 | 1;
  payload: Buffer;
}

export class ClientHandshake {
  private readonly socket: Socket;
  private readonly suites: CipherSuite[];
  private readonly clientRandom = randomBytes(32);
  private readonly timer: FlightTimer;
  private readonly readReplay = new ReplayWindow();
  private readonly hash = createHash('sha256');
  private stage: Stage = 'starting';
  private flight: FlightRecord[] = [];
  private writeSeq0 = 0;
  private writeSeq1 = 0;
  private messageSeq = 0;
  /** The last ClientHello sent (whole message, as hashed) and its cookie. */
  private clientHello: Buffer = Buffer.alloc(0);
  private cookie: Buffer = Buffer.alloc(0);
  private helloVerifyRequests = 0;
  private peerTriggeredResends = 0;
  private reassembler: Reassembler | null = null;
  private serverRandom: Buffer | null = null;
  private suite: CipherSuite | null = null;
  private ems = false;
  private identityHint: Buffer | null = null;
  private master: Buffer | null = null;
  private keys: { client: DirectionKeys; server: DirectionKeys } | null = null;

  constructor(
    private readonly o: ClientHandshakeOptions,
    private readonly onDone: (result: ClientHandshakeResult) => void,
  ) {
    const names = o.cipherSuites ?? DEFAULT_CLIENT_SUITES;
    const suites = names.map((n) => suiteByName(n));
    if (suites.length === 0 || suites.some((s) => s === undefined)) throw new RangeError(`DTLS client: cipher suites must be among ${DEFAULT_CLIENT_SUITES.join(', ')}, got ${names.join(', ')}`);
    this.suites = suites.filter((s): s is CipherSuite => s !== undefined);
    if (Buffer.byteLength(o.identity) > MAX_IDENTITY_BYTES) throw new RangeError(`DTLS client: PSK identity longer than ${MAX_IDENTITY_BYTES} bytes`);
    this.socket = createSocket('udp4'); // after the checks: a refused handshake leaves no socket
    this.timer = new FlightTimer(
      o.clock,
      o.retransmit,
      () => this.sendFlight(),
      () => this.fail('timeout', 'DTLS handshake timed out'),
    );
    this.socket.on('error', (e) => this.fail('error', e.message));
    this.socket.on('message', (d: Buffer) => this.onDatagram(d));
    this.socket.bind(o.localPort ?? 0, o.bindAddress ?? '127.0.0.1', () => {
      if (this.stage !== 'starting') return;
      this.socket.connect(o.port, o.host, () => {
        if (this.stage === 'starting') this.sendClientHello();
      });
    });
  }

  /** True once the handshake ended (success, failure or abort). */
  get finished(): boolean {
    return this.stage === 'done';
  }

  /** Power cut: close the socket without an alert; the callback is never called. */
  abort(): void {
    if (this.stage === 'done') return;
    this.stage = 'done';
    this.release();
  }

  private release(): void {
    this.timer.stop();
    this.socket.removeAllListeners();
    this.socket.on('error', () => {}); // a late error of a closing socket goes nowhere
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }

  private fail(kind: ClientHandshakeFailureKind, message: string, alert: number | null = null): void {
    if (this.stage === 'done') return;
    this.stage = 'done';
    this.release();
    this.onDone({ ok: false, error: new ClientHandshakeError(kind, message, alert) });
  }

  private succeed(suite: CipherSuite, keys: { client: DirectionKeys; server: DirectionKeys }): void {
    this.stage = 'done';
    this.timer.stop();
    this.socket.removeAllListeners();
    const channel = new RecordChannel({ suite, epoch: 1, version: DTLS_1_2, write: keys.client, read: keys.server, nextWriteSeq: this.writeSeq1 });
    const association: ClientAssociation = { socket: this.socket, localPort: this.socket.address().port, suite, channel, identityHint: this.identityHint, extendedMasterSecret: this.ems };
    this.onDone({ ok: true, association });
  }

  private sendClientHello(): void {
    const ext: Buffer[] = [];
    if (this.o.extendedMasterSecret !== false) ext.push(Buffer.from([0x00, 0x17, 0x00, 0x00]));
    ext.push(Buffer.from([0xff, 0x01, 0x00, 0x01, 0x00])); // empty renegotiation_info (RFC 5746): OpenSSL wants it
    const extensions = Buffer.concat(ext);
    const suites = Buffer.allocUnsafe(2 + 2 * this.suites.length);
    suites.writeUInt16BE(2 * this.suites.length, 0);
    this.suites.forEach((s, i) => suites.writeUInt16BE(s.id, 2 + 2 * i));
    const extLen = Buffer.allocUnsafe(2);
    extLen.writeUInt16BE(extensions.length);
    const body = Buffer.concat([Buffer.from([0xfe, 0xfd]), this.clientRandom, Buffer.of(0), Buffer.of(this.cookie.length), this.cookie, suites, Buffer.from([0x01, 0x00]), extLen, extensions]);
    this.clientHello = encodeHandshake(HandshakeType.clientHello, this.messageSeq++, body);
    this.stage = 'hello';
    this.flight = [{ type: ContentType.handshake, epoch: 0, payload: this.clientHello }];
    this.sendFlight();
    this.timer.start();
  }

  private protect(type: number, plaintext: Buffer, suite: CipherSuite, keys: DirectionKeys): Buffer {
    if (this.writeSeq1 > MAX_RECORD_SEQ) throw new Error('assertion failed: epoch 1 sequence numbers exhausted');
    const seq = this.writeSeq1++;
    return encodeRecord(type, DTLS_1_2, 1, seq, seal(suite, keys, 1, seq, type, DTLS_1_2, plaintext));
  }

  /** The current flight as one datagram (our flights are small); epoch-1 records get fresh sequence numbers. */
  private sendFlight(): void {
    if (this.stage === 'done') return;
    const records: Buffer[] = [];
    for (const r of this.flight) {
      if (r.epoch === 0) records.push(encodeRecord(r.type, DTLS_1_2, 0, this.writeSeq0++, r.payload));
      else if (this.suite && this.keys) records.push(this.protect(r.type, r.payload, this.suite, this.keys.client));
    }
    this.socket.send(Buffer.concat(records), (err) => {
      if (err) this.fail('error', err.message);
    });
  }

  private onDatagram(datagram: Buffer): void {
    if (this.stage === 'done' || this.stage === 'starting') return;
    try {
      for (const rec of parseRecords(datagram)) {
        this.onRecord(rec);
        if (this.finished) return;
      }
    } catch (e) {
      this.fail('error', `DTLS handshake: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private onRecord(rec: DtlsRecord): void {
    let payload = rec.fragment;
    if (rec.epoch === 1) {
      // the server's Finished: readable once we have keys (whether or not its CCS arrived first)
      if (!this.suite || !this.keys || !this.readReplay.check(rec.seq)) return;
      const p = open(this.suite, this.keys.server, 1, rec.seq, rec.type, rec.version, rec.fragment);
      if (p === null) return;
      this.readReplay.accept(rec.seq);
      payload = p;
    } else if (rec.epoch !== 0) {
      return;
    }
    if (rec.type === ContentType.alert) {
      if (payload.length !== 2) return;
      const level = payload.readUInt8(0);
      const description = payload.readUInt8(1);
      // as node-dtls-client: a fatal alert or close_notify ends the handshake (retrying would not help)
      if (level === AlertLevel.fatal || description === AlertDescription.closeNotify) this.fail('alert', `DTLS alert ${description} from server`, description);
      return;
    }
    if (rec.type !== ContentType.handshake) return; // ChangeCipherSpec: epoch 1 is read by its number; no data yet
    for (const f of parseHandshakeFragments(payload)) {
      if (f.msgType === HandshakeType.helloVerifyRequest) {
        this.onHelloVerifyRequest(f.body, f.length);
        continue;
      }
      if (this.reassembler === null) {
        if (this.stage !== 'hello') continue;
        // the server numbers its ServerHello as our ClientHello (0 without a cookie exchange, 1 after)
        this.reassembler = new Reassembler(this.messageSeq - 1, MAX_REASSEMBLY_BYTES);
        this.stage = 'server-flight';
      }
      if (!this.reassembler.add(f)) {
        // an earlier server flight again: ours was lost (answered once per flight, at its last message)
        if (this.stage === 'wait-finished' && f.msgType === HandshakeType.serverHelloDone && this.peerTriggeredResends < MAX_PEER_TRIGGERED_RESENDS) {
          this.peerTriggeredResends++;
          this.sendFlight();
        }
        continue;
      }
      for (let m = this.reassembler.next(); m !== null; m = this.reassembler.next()) {
        this.onMessage(m.msgType, m.messageSeq, m.body, rec.epoch);
        if (this.stage === 'done') return;
      }
    }
  }

  private onHelloVerifyRequest(body: Buffer, length: number): void {
    if (this.stage !== 'hello' || this.reassembler !== null || body.length !== length) return;
    const r = new Reader(body);
    r.u16('server_version');
    const cookie = r.vec8('cookie');
    if (cookie.equals(this.cookie)) return; // a duplicate of the one we answered
    if (this.helloVerifyRequests >= MAX_HELLO_VERIFY_REQUESTS) {
      this.fail('error', `DTLS handshake: more than ${MAX_HELLO_VERIFY_REQUESTS} HelloVerifyRequests`);
      return;
    }
    this.helloVerifyRequests++;
    this.cookie = Buffer.from(cookie);
    this.timer.stop();
    this.sendClientHello();
  }

  private onMessage(type: number, seq: number, body: Buffer, epoch: number): void {
    const whole = encodeHandshake(type, seq, body);
    if (type === HandshakeType.serverHello && this.serverRandom === null) {
      const r = new Reader(body);
      const version = r.u16('server_version');
      if (version !== DTLS_1_2) return this.fail('error', `DTLS handshake: server chose version 0x${version.toString(16)}, not DTLS 1.2`);
      this.serverRandom = Buffer.from(r.bytes(32, 'random'));
      r.vec8('session_id');
      const id = r.u16('cipher_suite');
      const suite = suiteById(id);
      if (!suite || !this.suites.includes(suite)) return this.fail('error', `DTLS handshake: server chose cipher suite 0x${id.toString(16)}, which we did not offer`);
      if (r.u8('compression_method') !== 0) return this.fail('error', 'DTLS handshake: server chose a compression method');
      if (r.remaining > 0) {
        const ext = new Reader(r.vec16('extensions'));
        for (let i = 0; ext.remaining > 0 && i < 64; i++) {
          const t = ext.u16('extension type');
          ext.vec16('extension data');
          if (t === ExtensionType.extendedMasterSecret && this.o.extendedMasterSecret !== false) this.ems = true;
        }
      }
      this.suite = suite;
      this.hash.update(this.clientHello); // the ClientHello answered (the one with the cookie, if any)
      this.hash.update(whole);
      return;
    }
    if (this.serverRandom === null || !this.suite) return this.fail('error', `DTLS handshake: handshake message ${type} before ServerHello`);
    if (type === HandshakeType.serverKeyExchange && this.stage === 'server-flight' && this.identityHint === null) {
      const r = new Reader(body);
      this.identityHint = Buffer.from(r.vec16('psk_identity_hint'));
      this.hash.update(whole);
      return;
    }
    if (type === HandshakeType.serverHelloDone && this.stage === 'server-flight') {
      this.hash.update(whole);
      this.timer.stop();
      this.sendClientKeyExchange(this.suite, this.serverRandom);
      return;
    }
    if (type === HandshakeType.finished && this.stage === 'wait-finished' && epoch === 1) {
      const master = this.master;
      const keys = this.keys;
      if (master === null || keys === null) throw new Error('assertion failed: server Finished before our keys');
      const expected = verifyData(master, 'server', this.hash.digest());
      if (body.length !== expected.length || !timingSafeEqual(body, expected)) return this.fail('error', 'DTLS handshake: server Finished does not verify');
      this.succeed(this.suite, keys);
      return;
    }
    this.fail('error', `DTLS handshake: unexpected handshake message ${type}${type === HandshakeType.certificate || type === HandshakeType.certificateRequest ? ' (certificates are not supported: PSK only)' : ''}`);
  }

  private sendClientKeyExchange(suite: CipherSuite, serverRandom: Buffer): void {
    const identity = Buffer.from(this.o.identity);
    const ckeBody = Buffer.allocUnsafe(2 + identity.length);
    ckeBody.writeUInt16BE(identity.length, 0);
    identity.copy(ckeBody, 2);
    const cke = encodeHandshake(HandshakeType.clientKeyExchange, this.messageSeq++, ckeBody);
    this.hash.update(cke);
    const premaster = pskPremasterSecret(this.o.psk);
    const master = this.ems ? extendedMasterSecret(premaster, this.hash.copy().digest()) : masterSecret(premaster, this.clientRandom, serverRandom);
    this.master = master;
    this.keys = splitKeyBlock(suite, keyBlock(master, this.clientRandom, serverRandom, keyBlockBytes(suite)));
    const fin = encodeHandshake(HandshakeType.finished, this.messageSeq++, verifyData(master, 'client', this.hash.copy().digest()));
    this.hash.update(fin);
    this.flight = [
      { type: ContentType.handshake, epoch: 0, payload: cke },
      { type: ContentType.changeCipherSpec, epoch: 0, payload: Buffer.of(1) },
      { type: ContentType.handshake, epoch: 1, payload: fin },
    ];
    this.stage = 'wait-finished';
    this.sendFlight();
    this.timer.start();
  }
}

/** The handshake as a promise, with an AbortSignal (aborting rejects with an AbortError-named error). */
export function clientHandshake(options: ClientHandshakeOptions, signal?: AbortSignal): Promise<ClientAssociation> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError());
      return;
    }
    const onAbort = (): void => {
      hs.abort();
      reject(abortError());
    };
    const hs = new ClientHandshake(options, (r) => {
      signal?.removeEventListener('abort', onAbort);
      if (r.ok) resolve(r.association);
      else reject(r.error);
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortError(): Error {
  const e = new Error('DTLS handshake aborted');
  e.name = 'AbortError';
  return e;
}
