/**
 * A lean DTLS 1.2 PSK client, for load tests and benchmarks of the server: thousands of them fit
 * in one process, with flight retransmission on the injected clock (node-dtls-client has none,
 * so one lost datagram under load stalls it). It offers one suite and the extended master secret,
 * and does what the server needs from a peer — it is not a general-purpose client.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { ScaledClock } from '../clock.js';
import type { Clock } from '../clock.js';
import { keyBlockBytes, open, seal, splitKeyBlock, suiteByName } from './cipher-suites.js';
import type { CipherSuite, CipherSuiteName, DirectionKeys } from './cipher-suites.js';
import { AlertDescription, AlertLevel, ContentType, DTLS_1_2, ExtensionType, HandshakeType } from './constants.js';
import { DtlsOptionsError, DtlsSocketError } from './errors.js';
import { FlightTimer } from './flight-timer.js';
import type { RetransmitPolicy } from './flight-timer.js';
import { encodeHandshake, parseHandshakeFragments } from './handshake.js';
import { extendedMasterSecret, keyBlock, masterSecret, pskPremasterSecret, verifyData } from './prf.js';
import { Reader } from './reader.js';
import { Reassembler } from './reassembly.js';
import { encodeRecord, parseRecords } from './record.js';
import type { DtlsRecord } from './record.js';
import { ReplayWindow } from './replay-window.js';

export interface DtlsClientOptions {
  host: string;
  port: number;
  identity: string | Buffer;
  psk: Buffer;
  cipherSuite?: CipherSuiteName;
  /** Offer the extended master secret (default true). */
  extendedMasterSecret?: boolean;
  clock?: Clock;
  retransmit?: RetransmitPolicy;
  /** Local port to bind (default 0: any). A fixed one lets a test play a device that rebooted. */
  localPort?: number;
}

export interface DtlsClientEvents {
  message: [data: Buffer];
  alert: [level: number, description: number];
  close: [];
}

export class DtlsPskClient extends EventEmitter<DtlsClientEvents> {
  private readonly socket: Socket = createSocket('udp4');
  private readonly suite: CipherSuite;
  private readonly clientRandom = randomBytes(32);
  private serverRandom: Buffer = Buffer.alloc(0);
  private readonly hash = createHash('sha256');
  private readonly reassembler = new Reassembler(1, 16 * 1024);
  private readonly timer: FlightTimer;
  private readonly readReplay = new ReplayWindow();
  private flight: { type: number; epoch: number; payload: Buffer }[] = [];
  private writeSeq0 = 0;
  private writeSeq1 = 0;
  private messageSeq = 0;
  private ems = false;
  private master: Buffer = Buffer.alloc(0);
  private keys: { client: DirectionKeys; server: DirectionKeys } | null = null;
  private readEpoch = 0;
  private state: 'hello' | 'wait-server-hello-done' | 'wait-finished' | 'connected' | 'closed' = 'hello';
  private settle: { resolve: () => void; reject: (e: Error) => void } | null = null;

  private constructor(private readonly options: DtlsClientOptions) {
    super();
    const suite = suiteByName(options.cipherSuite ?? 'TLS_PSK_WITH_AES_128_CCM_8');
    if (!suite) throw new DtlsOptionsError(`unknown cipher suite ${String(options.cipherSuite)}`);
    this.suite = suite;
    this.timer = new FlightTimer(
      options.clock ?? new ScaledClock(1),
      options.retransmit ?? { initial_ms: 1000, max_ms: 60_000, maxRetransmissions: 6 },
      () => this.sendFlight(),
      () => this.fail(new DtlsSocketError('DTLS handshake timed out')),
    );
  }

  /** Handshake; resolves once the server's Finished verified. */
  static async connect(options: DtlsClientOptions): Promise<DtlsPskClient> {
    const c = new DtlsPskClient(options);
    await new Promise<void>((resolve, reject) => {
      c.settle = { resolve, reject };
      c.socket.on('error', (e) => c.fail(new DtlsSocketError(e.message)));
      c.socket.on('message', (m) => c.onDatagram(m));
      c.socket.bind(options.localPort ?? 0, '127.0.0.1', () => {
        c.socket.connect(options.port, options.host, () => c.sendHello(Buffer.alloc(0)));
      });
    });
    return c;
  }

  send(data: Buffer): void {
    if (this.state !== 'connected' || !this.keys) throw new DtlsSocketError('DTLS client is not connected');
    this.socket.send(this.protect(ContentType.applicationData, data, this.keys.client));
  }

  /** The local UDP port. */
  get localPort(): number {
    return this.socket.address().port;
  }

  /** Send one epoch-1 record of any content type (tests: renegotiation attempts, alerts). */
  sendRecord(type: number, plaintext: Buffer): Buffer {
    if (this.state !== 'connected' || !this.keys) throw new DtlsSocketError('DTLS client is not connected');
    const record = this.protect(type, plaintext, this.keys.client);
    this.socket.send(record);
    return record;
  }

  /** Drop the connection without a word, as a device losing power would. */
  abandon(): void {
    if (this.state !== 'closed') this.shutdown();
  }

  close(): void {
    if (this.state === 'closed') return;
    if (this.state === 'connected' && this.keys) this.socket.send(this.protect(ContentType.alert, Buffer.of(AlertLevel.warning, AlertDescription.closeNotify), this.keys.client));
    this.shutdown();
  }

  private shutdown(): void {
    this.state = 'closed';
    this.timer.stop();
    try {
      this.socket.close();
    } catch {
      // already closed
    }
    this.emit('close');
  }

  private fail(e: Error): void {
    if (this.state === 'closed') return;
    const s = this.settle;
    this.settle = null;
    this.shutdown();
    s?.reject(e);
  }

  private protect(type: number, plaintext: Buffer, keys: DirectionKeys): Buffer {
    const seq = this.writeSeq1++;
    return encodeRecord(type, DTLS_1_2, 1, seq, seal(this.suite, keys, 1, seq, type, DTLS_1_2, plaintext));
  }

  private sendFlight(): void {
    const records = this.flight.map((r) =>
      r.epoch === 0 ? encodeRecord(r.type, DTLS_1_2, 0, this.writeSeq0++, r.payload) : this.keys ? this.protect(r.type, r.payload, this.keys.client) : Buffer.alloc(0),
    );
    this.socket.send(Buffer.concat(records));
  }

  private addMessage(type: number, body: Buffer, hashIt: boolean): Buffer {
    const m = encodeHandshake(type, this.messageSeq++, body);
    if (hashIt) this.hash.update(m);
    return m;
  }

  private sendHello(cookie: Buffer): void {
    const ext: Buffer[] = [];
    if (this.options.extendedMasterSecret !== false) ext.push(Buffer.from([0x00, 0x17, 0x00, 0x00]));
    ext.push(Buffer.from([0xff, 0x01, 0x00, 0x01, 0x00]));
    const extensions = Buffer.concat(ext);
    const body = Buffer.concat([
      Buffer.from([0xfe, 0xfd]),
      this.clientRandom,
      Buffer.of(0),
      Buffer.of(cookie.length),
      cookie,
      Buffer.from([0x00, 0x02, this.suite.id >> 8, this.suite.id & 0xff]),
      Buffer.from([0x01, 0x00]),
      Buffer.from([extensions.length >> 8, extensions.length & 0xff]),
      extensions,
    ]);
    // The first ClientHello is not hashed: the handshake hash starts with the one carrying the cookie.
    const msg = this.addMessage(HandshakeType.clientHello, body, cookie.length > 0);
    this.flight = [{ type: ContentType.handshake, epoch: 0, payload: msg }];
    this.sendFlight();
    this.timer.start();
  }

  private onDatagram(datagram: Buffer): void {
    if (this.state === 'closed') return;
    try {
      for (const rec of parseRecords(datagram)) this.onRecord(rec);
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private onRecord(rec: DtlsRecord): void {
    let type = rec.type;
    let payload = rec.fragment;
    if (rec.epoch === 1) {
      if (this.readEpoch !== 1 || !this.keys || !this.readReplay.check(rec.seq)) return;
      const p = open(this.suite, this.keys.server, 1, rec.seq, rec.type, rec.version, rec.fragment);
      if (p === null) return;
      this.readReplay.accept(rec.seq);
      payload = p;
    } else if (rec.epoch !== 0) {
      return;
    }
    type = rec.type;
    if (type === ContentType.alert) {
      if (payload.length !== 2) return;
      this.emit('alert', payload[0] ?? 0, payload[1] ?? 0);
      if (payload[0] === AlertLevel.fatal || payload[1] === AlertDescription.closeNotify) {
        if (this.state === 'connected') this.shutdown();
        else this.fail(new DtlsSocketError(`DTLS alert ${payload[1]} from server`));
      }
      return;
    }
    if (type === ContentType.changeCipherSpec) {
      if (this.state === 'wait-finished') this.readEpoch = 1;
      return;
    }
    if (type === ContentType.applicationData) {
      if (rec.epoch === 1 && this.state === 'connected') this.emit('message', payload);
      return;
    }
    if (type !== ContentType.handshake) return;
    for (const f of parseHandshakeFragments(payload)) {
      if (f.msgType === HandshakeType.helloVerifyRequest && this.state === 'hello' && this.messageSeq === 1) {
        const r = new Reader(f.body);
        r.u16();
        this.timer.stop();
        this.sendHello(Buffer.from(r.vec8('cookie')));
        this.state = 'wait-server-hello-done';
        continue;
      }
      if (this.state === 'hello') this.state = 'wait-server-hello-done'; // server skipped the cookie
      this.reassembler.add(f);
      for (let m = this.reassembler.next(); m !== null; m = this.reassembler.next()) this.onMessage(m.msgType, m.messageSeq, m.body);
    }
  }

  private onMessage(type: number, seq: number, body: Buffer): void {
    const whole = encodeHandshake(type, seq, body);
    if (type === HandshakeType.serverHello) {
      const r = new Reader(body);
      r.u16();
      this.serverRandom = Buffer.from(r.bytes(32));
      r.vec8();
      if (r.u16() !== this.suite.id) throw new DtlsSocketError('server chose another suite');
      r.u8();
      if (r.remaining > 0) {
        const ext = new Reader(r.vec16());
        while (ext.remaining > 0) {
          const t = ext.u16();
          ext.vec16();
          if (t === ExtensionType.extendedMasterSecret) this.ems = true;
        }
      }
      this.hash.update(whole);
    } else if (type === HandshakeType.serverKeyExchange) {
      this.hash.update(whole);
    } else if (type === HandshakeType.serverHelloDone) {
      this.hash.update(whole);
      this.timer.stop();
      const identity = Buffer.from(this.options.identity);
      const cke = this.addMessage(HandshakeType.clientKeyExchange, Buffer.concat([Buffer.from([identity.length >> 8, identity.length & 0xff]), identity]), true);
      const premaster = pskPremasterSecret(this.options.psk);
      this.master = this.ems ? extendedMasterSecret(premaster, this.hash.copy().digest()) : masterSecret(premaster, this.clientRandom, this.serverRandom);
      this.keys = splitKeyBlock(this.suite, keyBlock(this.master, this.clientRandom, this.serverRandom, keyBlockBytes(this.suite)));
      const fin = this.addMessage(HandshakeType.finished, verifyData(this.master, 'client', this.hash.copy().digest()), true);
      this.flight = [
        { type: ContentType.handshake, epoch: 0, payload: cke },
        { type: ContentType.changeCipherSpec, epoch: 0, payload: Buffer.of(1) },
        { type: ContentType.handshake, epoch: 1, payload: fin },
      ];
      this.state = 'wait-finished';
      this.sendFlight();
      this.timer.start();
    } else if (type === HandshakeType.finished && this.state === 'wait-finished') {
      const expected = verifyData(this.master, 'server', this.hash.digest());
      if (body.length !== expected.length || !timingSafeEqual(body, expected)) throw new DtlsSocketError('server Finished does not verify');
      this.timer.stop();
      this.state = 'connected';
      const s = this.settle;
      this.settle = null;
      s?.resolve();
    }
  }
}
