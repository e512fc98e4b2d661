/**
 * The DTLS 1.2 PSK server: one UDP socket on loopback, datagrams demultiplexed by peer address.
 * A ClientHello without a valid cookie gets a stateless HelloVerifyRequest; a cookie-verified one
 * starts a ServerHandshake; a completed handshake becomes a DtlsSession (replacing the peer's old
 * session, e.g. a device that lost power and came back). Sessions, half-open handshakes and
 * ClientHello reassemblies live in bounded tables; idle sessions and stale handshakes are swept
 * on the injected clock. Nothing a peer sends can throw out of the datagram handler.
 */
import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ScaledClock } from '../clock.js';
import type { Clock, TimerHandle } from '../clock.js';
import { AlertDescription, AlertLevel, ContentType, DTLS_1_0, DTLS_1_2, HandshakeType } from './constants.js';
import { CIPHER_SUITES, suiteByName } from './cipher-suites.js';
import type { CipherSuite, CipherSuiteName } from './cipher-suites.js';
import { CookieJar } from './cookie.js';
import { DecodeError, DtlsOptionsError, DtlsSocketError, HandshakeAbort } from './errors.js';
import type { RetransmitPolicy } from './flight-timer.js';
import { encodeHandshake, parseHandshakeFragments } from './handshake.js';
import { cookieInput, encodeHelloVerifyRequest, parseClientHello } from './messages.js';
import { Reassembler } from './reassembly.js';
import { encodeRecord, parseRecords } from './record.js';
import type { DtlsRecord } from './record.js';
import { ServerHandshake } from './server-handshake.js';
import type { HandshakeConfig, HandshakeResult } from './server-handshake.js';
import { DtlsSession } from './session.js';
import type { SessionCloseReason, SessionHost } from './session.js';
import { BoundedTable, peerKey } from './session-table.js';

/** Key for a PSK identity, or undefined when the identity is unknown. */
export type PskLookup = (identity: Buffer) => Buffer | undefined;

export interface DtlsServerOptions {
  /** Per-identity key lookup, or a table identity (UTF-8) -> key. */
  psk: PskLookup | Readonly<Record<string, Buffer>>;
  /** Sent in a ServerKeyExchange when given; omitted (no ServerKeyExchange) otherwise. */
  identityHint?: string | Buffer;
  /** Suites in server preference order (default: CCM_8, CCM, GCM). */
  cipherSuites?: readonly CipherSuiteName[];
  /** Loopback only (default 127.0.0.1). */
  host?: string;
  /** Default 0: the OS picks; read it from `address()`. */
  port?: number;
  clock?: Clock;
  /** Largest datagram the server sends; handshake messages are fragmented to fit (default 1200). */
  mtu_bytes?: number;
  /** Established sessions kept at most; the least recently active is evicted beyond (default 10 000). */
  maxSessions?: number;
  /** Half-open (cookie-verified, unfinished) handshakes kept at most (default 1 000). */
  maxHandshakes?: number;
  /** Fragmented ClientHellos being reassembled at most (default 64). */
  maxHelloReassemblies?: number;
  /** Bytes a handshake may buffer for reassembly (default 16 KiB). */
  maxReassembly_bytes?: number;
  /** A handshake that has not finished after this long is dropped (default 60 s). */
  handshakeTimeout_ms?: number;
  /** A session with no authenticated record for this long is closed (default 10 min). */
  idleTimeout_ms?: number;
  /** Flight retransmission (default 1 s doubling to 60 s, 6 resends). */
  retransmit?: Partial<RetransmitPolicy>;
  /** Cookie secret rotation period (default 60 s). */
  cookieRotation_ms?: number;
  /**
   * Socket receive buffer (default 4 MiB, capped by the kernel's rmem_max). The default 208 KiB
   * holds only ~200 datagrams, so a burst of ClientHellos from a fleet would be dropped.
   */
  receiveBuffer_bytes?: number;
}

export interface HandshakeFailure {
  address: string;
  port: number;
  reason: string;
  /** Fatal alert sent to the peer, null when none was sent. */
  alert: number | null;
}

export interface DtlsServerStats {
  sessions: number;
  handshakes: number;
  helloReassemblies: number;
  datagramsIn: number;
  helloVerifyRequests: number;
  handshakesCompleted: number;
  handshakesFailed: number;
}

export interface DtlsServerEvents {
  session: [session: DtlsSession];
  message: [data: Buffer, rinfo: RemoteInfo, session: DtlsSession];
  'session-closed': [session: DtlsSession, reason: SessionCloseReason];
  'handshake-failed': [failure: HandshakeFailure];
  error: [error: Error];
  close: [];
}

const MAX_CLIENT_HELLO_BYTES = 4096;

interface HelloAssembly {
  reassembler: Reassembler;
  messageSeq: number;
  created_ms: number;
}

function isLoopback(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!(Number.isInteger(v) && v >= 1)) throw new DtlsOptionsError(`${name} must be a positive integer, got ${String(value)}`);
  return v;
}

export class DtlsServer extends EventEmitter<DtlsServerEvents> {
  private readonly clock: Clock;
  private readonly host: string;
  private readonly port: number;
  private readonly config: HandshakeConfig;
  private readonly cookies: CookieJar;
  private readonly sessionTable: BoundedTable<DtlsSession>;
  private readonly handshakes: BoundedTable<ServerHandshake>;
  private readonly hellos: BoundedTable<HelloAssembly>;
  /** Client randoms of established sessions: a late duplicate of their ClientHello is ignored. */
  private readonly sessionRandoms = new WeakMap<DtlsSession, Buffer>();
  private readonly handshakeTimeout_ms: number;
  private readonly idleTimeout_ms: number;
  private readonly sweep_ms: number;
  private sweepTimer: TimerHandle | null = null;
  private socket: Socket | null = null;
  private nextSerial = 1;
  private readonly counters = { datagramsIn: 0, helloVerifyRequests: 0, handshakesCompleted: 0, handshakesFailed: 0 };
  private readonly sessionHost: SessionHost;
  private readonly receiveBuffer_bytes: number;

  constructor(options: DtlsServerOptions) {
    super();
    this.clock = options.clock ?? new ScaledClock(1);
    this.host = options.host ?? '127.0.0.1';
    if (!isLoopback(this.host)) throw new DtlsOptionsError(`host ${this.host} is not a 127.0.0.0/8 address`);
    this.port = options.port ?? 0;
    const suites: CipherSuite[] = [];
    for (const name of options.cipherSuites ?? CIPHER_SUITES.map((s) => s.name)) {
      const s = suiteByName(name);
      if (!s) throw new DtlsOptionsError(`unknown cipher suite ${name} (known: ${CIPHER_SUITES.map((c) => c.name).join(', ')})`);
      suites.push(s);
    }
    if (suites.length === 0) throw new DtlsOptionsError('cipherSuites is empty');
    const table = options.psk;
    const psk: PskLookup =
      typeof table === 'function' ? table : (identity) => (Object.hasOwn(table, identity.toString('utf8')) ? table[identity.toString('utf8')] : undefined);
    const hint = options.identityHint === undefined ? null : Buffer.from(options.identityHint);
    const mtu_bytes = positiveInt('mtu_bytes', options.mtu_bytes, 1200);
    if (mtu_bytes < 48) throw new DtlsOptionsError(`mtu_bytes ${mtu_bytes} is below the 48 bytes a record with a handshake fragment needs`);
    this.config = {
      clock: this.clock,
      suites,
      identityHint: hint !== null && hint.length > 0 ? hint : null,
      psk,
      mtu_bytes,
      retransmit: {
        initial_ms: positiveInt('retransmit.initial_ms', options.retransmit?.initial_ms, 1000),
        max_ms: positiveInt('retransmit.max_ms', options.retransmit?.max_ms, 60_000),
        maxRetransmissions: positiveInt('retransmit.maxRetransmissions', options.retransmit?.maxRetransmissions, 6),
      },
      maxReassembly_bytes: positiveInt('maxReassembly_bytes', options.maxReassembly_bytes, 16 * 1024),
    };
    this.handshakeTimeout_ms = positiveInt('handshakeTimeout_ms', options.handshakeTimeout_ms, 60_000);
    this.idleTimeout_ms = positiveInt('idleTimeout_ms', options.idleTimeout_ms, 600_000);
    this.sweep_ms = Math.max(10, Math.min(this.handshakeTimeout_ms, this.idleTimeout_ms) / 4);
    this.receiveBuffer_bytes = positiveInt('receiveBuffer_bytes', options.receiveBuffer_bytes, 4 * 1024 * 1024);
    this.cookies = new CookieJar(this.clock, positiveInt('cookieRotation_ms', options.cookieRotation_ms, 60_000));
    this.sessionTable = new BoundedTable(positiveInt('maxSessions', options.maxSessions, 10_000), (_k, s) => s.close('evicted'));
    this.handshakes = new BoundedTable(positiveInt('maxHandshakes', options.maxHandshakes, 1_000), (k, hs) => {
      hs.dispose();
      this.failed(k, 'evicted: too many half-open handshakes', null);
    });
    this.hellos = new BoundedTable(positiveInt('maxHelloReassemblies', options.maxHelloReassemblies, 64), () => {});
    this.sessionHost = {
      sendDatagram: (s, d) => this.sendRaw(d, s.remotePort, s.remoteAddress),
      forget: (s, reason) => {
        this.sessionTable.delete(peerKey(s.remoteAddress, s.remotePort), s);
        this.emit('session-closed', s, reason);
      },
      now_ms: () => this.clock.now(),
    };
  }

  /** Bind the socket; resolves with the bound address (port 0 picks a free port). */
  async listen(): Promise<AddressInfo> {
    if (this.socket) throw new DtlsSocketError('DTLS server is already listening');
    const socket = createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (e) => reject(new DtlsSocketError(`cannot bind DTLS server to ${this.host}:${this.port}: ${e.message}`)));
      socket.bind(this.port, this.host, () => resolve());
    });
    socket.removeAllListeners('error');
    try {
      socket.setRecvBufferSize(this.receiveBuffer_bytes);
    } catch {
      // Not permitted here: keep the system default, retransmission covers the rest.
    }
    socket.on('error', (e) => {
      if (this.listenerCount('error') > 0) this.emit('error', new DtlsSocketError(`DTLS socket: ${e.message}`));
    });
    socket.on('message', (msg, rinfo) => this.receive(msg, rinfo));
    this.socket = socket;
    this.scheduleSweep();
    return this.address();
  }

  address(): AddressInfo {
    if (!this.socket) throw new DtlsSocketError('DTLS server is not listening');
    return this.socket.address();
  }

  getSession(address: string, port: number): DtlsSession | undefined {
    return this.sessionTable.get(peerKey(address, port));
  }

  sessions(): DtlsSession[] {
    return this.sessionTable.values();
  }

  /** Encrypt and send to the peer's session; false when there is none. */
  send(data: Buffer, port: number, address: string): boolean {
    return this.getSession(address, port)?.send(data) ?? false;
  }

  stats(): DtlsServerStats {
    return { sessions: this.sessionTable.size, handshakes: this.handshakes.size, helloReassemblies: this.hellos.size, ...this.counters };
  }

  /** Rotate the cookie secret now (it also rotates on the clock). */
  rotateCookieSecret(): void {
    this.cookies.rotate();
  }

  /** close_notify to every session, stop every timer, close the socket. */
  async close(): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    for (const s of this.sessionTable.values()) s.close('server-closed');
    for (const hs of this.handshakes.values()) hs.dispose();
    this.sweepTimer?.cancel();
    this.sweepTimer = null;
    this.cookies.close();
    this.socket = null;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    this.emit('close');
  }

  private sendRaw(datagram: Buffer, port: number, address: string): void {
    // A failed UDP send is like a lost datagram; retransmission or the peer deals with it.
    this.socket?.send(datagram, port, address, () => {});
  }

  private scheduleSweep(): void {
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweep();
      if (this.socket) this.scheduleSweep();
    }, this.sweep_ms);
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [key, hs] of this.handshakes.entries()) {
      if (now - hs.started_ms >= this.handshakeTimeout_ms) {
        hs.dispose();
        this.handshakes.delete(key, hs);
        this.failed(key, 'handshake timed out', null);
      }
    }
    for (const [key, h] of this.hellos.entries()) if (now - h.created_ms >= this.handshakeTimeout_ms) this.hellos.delete(key, h);
    for (const s of this.sessionTable.values()) if (now - s.lastActivity_ms >= this.idleTimeout_ms) s.close('idle-timeout');
  }

  private failed(key: string, reason: string, alert: number | null): void {
    this.counters.handshakesFailed++;
    const slash = key.lastIndexOf('/');
    this.emit('handshake-failed', { address: key.slice(0, slash), port: Number(key.slice(slash + 1)), reason, alert });
  }

  /** Handle one datagram as if it came from `rinfo` (the socket calls this; so can fuzz tests). */
  receive(msg: Buffer, rinfo: RemoteInfo): void {
    this.counters.datagramsIn++;
    const key = peerKey(rinfo.address, rinfo.port);
    for (const rec of parseRecords(msg)) {
      try {
        this.onRecord(key, rinfo, rec);
      } catch (e) {
        this.onRecordError(key, e);
      }
    }
  }

  private onRecordError(key: string, e: unknown): void {
    const hs = this.handshakes.get(key);
    if (!hs) return; // nothing to fail: a bad record from a stranger is just dropped
    if (e instanceof HandshakeAbort) hs.abort(e.message, e.alert);
    else if (e instanceof DecodeError) hs.abort(`malformed handshake message: ${e.message}`, AlertDescription.decodeError);
    else hs.abort(`internal error: ${e instanceof Error ? e.message : String(e)}`, AlertDescription.internalError);
  }

  private onRecord(key: string, rinfo: RemoteInfo, rec: DtlsRecord): void {
    const hs = this.handshakes.get(key);
    const session = this.sessionTable.get(key);
    if (rec.epoch === 0) {
      if (rec.type === ContentType.handshake && rec.fragment[0] === HandshakeType.clientHello) {
        this.onClientHelloRecord(key, rinfo, rec, hs, session);
      } else if (hs) {
        hs.handleEpoch0(rec);
      } else if (session && rec.type === ContentType.handshake) {
        session.resendLastFlight(); // a retransmitted ClientKeyExchange: our Finished was lost
      }
      // Epoch-0 alerts and ChangeCipherSpec against a session are unauthenticated: ignored.
      return;
    }
    if (rec.epoch !== 1) return; // no such epoch here: discard (§4.1)
    if (hs && hs.hasKeys) {
      if (hs.handleEpoch1(rec)) return;
      if (session && this.deliver(key, rinfo, session, rec)) return;
      throw new HandshakeAbort(AlertDescription.badRecordMac, 'client Finished does not authenticate (wrong key or unknown identity)');
    }
    if (session && this.deliver(key, rinfo, session, rec)) return;
    if (hs) hs.handleEpoch1(rec);
  }

  private deliver(key: string, rinfo: RemoteInfo, session: DtlsSession, rec: DtlsRecord): boolean {
    const plaintext = session.unprotect(rec);
    if (plaintext === null) return false;
    this.sessionTable.touch(key);
    session.handlePlaintext(rec.type, plaintext);
    if (rec.type === ContentType.applicationData && !session.isClosed) this.emit('message', plaintext, rinfo, session);
    return true;
  }

  /** A ClientHello must never disturb the peer's live handshake or session unless it is valid. */
  private onClientHelloRecord(key: string, rinfo: RemoteInfo, rec: DtlsRecord, hs: ServerHandshake | undefined, session: DtlsSession | undefined): void {
    let fragments;
    try {
      fragments = parseHandshakeFragments(rec.fragment);
    } catch {
      return;
    }
    for (const f of fragments) {
      if (f.msgType !== HandshakeType.clientHello || f.length > MAX_CLIENT_HELLO_BYTES) continue;
      let body: Buffer | null = null;
      if (f.fragmentOffset === 0 && f.body.length === f.length) {
        body = f.body;
      } else {
        // A fragmented ClientHello (tiny MTU) has to be held before its cookie can be checked;
        // the table of such partial hellos is small and bounded, so holding them is safe.
        let h = this.hellos.get(key);
        if (!h || h.messageSeq !== f.messageSeq) {
          h = { reassembler: new Reassembler(f.messageSeq, MAX_CLIENT_HELLO_BYTES), messageSeq: f.messageSeq, created_ms: this.clock.now() };
          this.hellos.set(key, h);
        }
        try {
          h.reassembler.add(f);
        } catch {
          this.hellos.delete(key, h);
          continue;
        }
        const m = h.reassembler.next();
        if (m === null) continue;
        this.hellos.delete(key, h);
        body = m.body;
      }
      this.onClientHello(key, rinfo, rec.seq, f.messageSeq, body, hs, session);
    }
  }

  private onClientHello(key: string, rinfo: RemoteInfo, recordSeq: number, messageSeq: number, body: Buffer, hs: ServerHandshake | undefined, session: DtlsSession | undefined): void {
    let hello;
    try {
      hello = parseClientHello(body);
    } catch {
      return; // garbage before any state exists: drop silently (no amplification)
    }
    if (hs && hello.random.equals(hs.clientRandom)) {
      hs.retransmit(); // the client did not get our flight 4
      return;
    }
    if (session && hello.random.equals(this.sessionRandoms.get(session) ?? Buffer.alloc(0))) return; // late duplicate
    if (!this.cookies.verify(rinfo.address, rinfo.port, cookieInput(hello), hello.cookie)) {
      // Stateless: the reply reuses the ClientHello's record and message sequence numbers.
      const cookie = this.cookies.make(rinfo.address, rinfo.port, cookieInput(hello));
      const hvr = encodeHandshake(HandshakeType.helloVerifyRequest, messageSeq, encodeHelloVerifyRequest(cookie));
      this.counters.helloVerifyRequests++;
      this.sendRaw(encodeRecord(ContentType.handshake, DTLS_1_0, 0, recordSeq, hvr), rinfo.port, rinfo.address);
      return;
    }
    if (hs) {
      hs.dispose();
      this.handshakes.delete(key, hs);
      this.failed(key, 'superseded by a new ClientHello', null);
    }
    const address = rinfo.address;
    const port = rinfo.port;
    let created: ServerHandshake | null = null;
    const host = {
      sendDatagram: (d: Buffer) => this.sendRaw(d, port, address),
      complete: (result: HandshakeResult) => {
        if (created) this.handshakes.delete(key, created);
        this.establish(key, address, port, result, hello.random);
      },
      fail: (reason: string, alert: number | null) => {
        if (created) this.handshakes.delete(key, created);
        this.failed(key, reason, alert);
      },
    };
    try {
      created = new ServerHandshake(this.config, host, hello, messageSeq, body, recordSeq);
    } catch (e) {
      if (!(e instanceof HandshakeAbort)) throw e;
      if (e.alert !== null) this.sendRaw(encodeRecord(ContentType.alert, DTLS_1_2, 0, recordSeq, Buffer.of(AlertLevel.fatal, e.alert)), port, address);
      this.failed(key, e.message, e.alert);
      return;
    }
    this.handshakes.set(key, created);
  }

  private establish(key: string, address: string, port: number, result: HandshakeResult, clientRandom: Buffer): void {
    this.counters.handshakesCompleted++;
    // The peer proved it holds the key: its old session (if any) is gone on its side.
    this.sessionTable.get(key)?.end('replaced');
    const session = new DtlsSession(this.sessionHost, {
      serial: this.nextSerial++,
      remoteAddress: address,
      remotePort: port,
      identity: result.identity,
      suite: result.suite,
      read: result.read,
      write: result.write,
      writeSeq0: result.writeSeq0,
      writeSeq1: result.writeSeq1,
      serverFinished: result.serverFinished,
    });
    this.sessionRandoms.set(session, Buffer.from(clientRandom));
    this.sessionTable.set(key, session);
    this.emit('session', session);
  }
}
