/**
 * CoAP over DTLS 1.2 with a pre-shared key. Two handshake backends, the same transport after:
 * - 'ota-sim' (default): src/dtls/client-handshake.ts, a lean PSK handshake (CCM_8, CCM, GCM
 *   offered, the server chooses; cookie, identity hint, fragmented flights) that retransmits its
 *   flights on the injected clock. It costs a fraction of node-dtls-client's CPU per handshake,
 *   which mattered for a fleet of a thousand devices in one process.
 * - 'node-dtls-client': node-dtls-client 2.0.3 (kept as a tested, independent backend). That
 *   library has no handshake retransmission and times out on the process clock.
 * Either way this transport bounds each handshake attempt on the injected clock and retries with
 * a fresh socket (a new ClientHello, a new source port unless one is fixed), the timeout doubling
 * up to a cap, a bounded number of times. A fatal alert during the handshake (wrong key, unknown
 * identity) fails at once: retrying would not change the answer. An AbortSignal (`signal`) stops
 * a handshake in progress like a power cut: the socket closes without a word and open() rejects
 * with CANCELLED.
 *
 * `abort()` is a power cut: the UDP socket is closed without close_notify and no event of the old
 * socket reaches the caller. Re-creating the transport after a server restart, a lost session or
 * a port change is simply `DtlsTransport.open()` again: a full handshake.
 *
 * After the handshake our record layer runs (src/dtls/record-channel.ts) whenever the suite is
 * one of src/dtls's AEAD suites (CCM_8, CCM, GCM with AES-128: what our server and libcoap pick):
 * the 'ota-sim' handshake hands over its connected UDP socket and the channel; after
 * node-dtls-client's, this transport takes the association's keys from the library (whose record
 * layer costs several times the AES work per datagram, bench/agent.ts), keeps its UDP socket and
 * replaces only the 'message' listener. Alerts are handled as node-dtls-client would (fatal or
 * close_notify end the transport); handshake records after the handshake are ignored.
 * `ownRecordLayer: false`, or `ciphers` naming a suite src/dtls does not have, selects
 * node-dtls-client for the handshake and its record layer (`recordLayer` says which one runs).
 */
import { lookup as dnsLookup } from 'node:dns';
import type { Socket as UdpSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { dtls } from 'node-dtls-client';
import type { Clock, TimerHandle } from '../clock.js';
import { suiteById, suiteByName } from '../dtls/cipher-suites.js';
import type { CipherSuiteName } from '../dtls/cipher-suites.js';
import { ClientHandshake, MAX_IDENTITY_BYTES } from '../dtls/client-handshake.js';
import type { ClientAssociation } from '../dtls/client-handshake.js';
import { AlertDescription, AlertLevel, ContentType } from '../dtls/constants.js';
import { RecordChannel } from '../dtls/record-channel.js';
import { NetError } from './errors.js';
import { TransportHandlers } from './transport.js';
import type { Transport, TransportCloseReason } from './transport.js';
import { isLoopback } from './udp-transport.js';

/** Who does the DTLS handshake (see the header). */
export type DtlsHandshakeBackend = 'ota-sim' | 'node-dtls-client';
export const DTLS_HANDSHAKE_BACKENDS: readonly DtlsHandshakeBackend[] = ['ota-sim', 'node-dtls-client'];

export interface DtlsTransportOptions {
  host: string;
  port: number;
  identity: string;
  psk: Buffer | string;
  clock: Clock;
  /** Handshake backend (default 'ota-sim'). */
  handshake?: DtlsHandshakeBackend;
  /** First handshake attempt's timeout (default 1000 ms, RFC 6347's initial retransmission timer). */
  handshakeTimeout_ms?: number;
  /** Cap of the doubling handshake timeout (default 8000 ms). */
  handshakeTimeoutMax_ms?: number;
  /** Handshake attempts before giving up (default 4, at most 16). */
  handshakeAttempts?: number;
  /** Local port (default 0: a new one per attempt). */
  localPort?: number;
  /**
   * Cipher suites to offer (default: 'ota-sim' offers CCM_8, CCM and GCM with AES-128;
   * node-dtls-client its own list, which includes CoAP's mandatory CCM_8). A suite src/dtls does
   * not have selects the node-dtls-client backend.
   */
  ciphers?: dtls.Options['ciphers'];
  /** Run our record layer after the handshake when the suite allows (default true); false selects node-dtls-client for both. */
  ownRecordLayer?: boolean;
  /** Aborting stops a handshake in progress (no alert, socket closed): open() rejects with CANCELLED. */
  signal?: AbortSignal;
}

export const MAX_HANDSHAKE_ATTEMPTS = 16;

/** node-dtls-client's process-clock handshake timer: set far out, ours on the injected clock decides. */
const LIBRARY_TIMEOUT_MS = 24 * 3600 * 1000;

/** Flight resends within one 'ota-sim' attempt (the attempt's own timeout ends it first). */
const MAX_FLIGHT_RETRANSMISSIONS = 8;

/** What this module needs from node-dtls-client beyond its typings (checked against 2.0.3's source). */
interface DtlsSocketInternals {
  /** Closes the UDP socket without an alert and removes its listeners. */
  killConnection(err?: Error): void;
  udp?: UdpSocket;
  _isClosed?: boolean;
  recordLayer?: {
    readEpochNr: number;
    writeEpochNr: number;
    epochs: ({ writeSequenceNumber: number; connectionState: LibraryConnectionState } | undefined)[];
  };
}

interface LibraryConnectionState {
  entity: string;
  cipherSuite: { id: number };
  protocolVersion?: { major: number; minor: number };
  key_material?: { client_write_key: Buffer; server_write_key: Buffer; client_write_IV: Buffer; server_write_IV: Buffer };
}

/**
 * Our record layer for node-dtls-client's association, or null to leave it to the library (a
 * suite src/dtls does not have, or internals that are not what 2.0.3 has).
 */
function takeOverRecords(socket: dtls.Socket): RecordChannel | null {
  const { recordLayer: rl, udp } = socket as unknown as DtlsSocketInternals;
  if (!rl || !udp || rl.readEpochNr !== rl.writeEpochNr || rl.writeEpochNr < 1) return null;
  const epoch = rl.epochs[rl.writeEpochNr];
  const cs = epoch?.connectionState;
  const km = cs?.key_material;
  const suite = cs ? suiteById(cs.cipherSuite.id) : undefined;
  if (!epoch || !cs || !km || !suite || cs.entity !== 'client' || !cs.protocolVersion) return null;
  const version = ((cs.protocolVersion.major & 0xff) << 8) | (cs.protocolVersion.minor & 0xff);
  try {
    return new RecordChannel({
      suite,
      epoch: rl.writeEpochNr,
      version,
      write: { key: km.client_write_key, salt: km.client_write_IV },
      read: { key: km.server_write_key, salt: km.server_write_IV },
      nextWriteSeq: epoch.writeSequenceNumber + 1,
    });
  } catch {
    return null; // key sizes not as the suite says: not the association we expected
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * node-dtls-client binds without an address (0.0.0.0). dgram resolves the bind address through
 * the socket's `lookup` option, so a lookup that maps the wildcard to 127.0.0.1 keeps a loopback
 * association on loopback.
 */
function loopbackLookup(bindAddress: string) {
  return (hostname: string, options: unknown, callback: LookupCallback): void => {
    if (hostname === '0.0.0.0') {
      callback(null, bindAddress, 4);
      return;
    }
    // dgram looks the destination up at every send: an address literal needs no resolver hop
    const family = isIP(hostname);
    if (family !== 0) {
      callback(null, hostname, family);
      return;
    }
    dnsLookup(hostname, { family: 4 }, (err, address, family) => callback(err, address, family));
    void options;
  };
}

/**
 * The association under the transport: node-dtls-client's socket (with our record layer over its
 * UDP socket, or the library's), or the lean handshake's connected UDP socket and channel.
 */
type Link =
  | { kind: 'library'; socket: dtls.Socket; udp: UdpSocket | null; channel: RecordChannel | null }
  | { kind: 'lean'; udp: UdpSocket; channel: RecordChannel; suite: CipherSuiteName };

export class DtlsTransport implements Transport {
  readonly kind = 'dtls' as const;
  private readonly handlers = new TransportHandlers();

  /** Which record layer runs after the handshake: ours (src/dtls/record-channel.ts) or node-dtls-client's. */
  readonly recordLayer: 'own' | 'library';
  /** Which backend did the handshake. */
  readonly handshakeBackend: DtlsHandshakeBackend;
  /** The cipher suite the server chose ('ota-sim' backend; null with node-dtls-client). */
  readonly cipherSuite: CipherSuiteName | null;
  private readonly channel: RecordChannel | null;

  private constructor(
    private readonly link: Link,
    readonly localPort: number,
    /** Handshake attempts it took (1 = first try). */
    readonly handshakeAttempts: number,
    private readonly remote: { host: string; port: number },
  ) {
    this.channel = link.channel;
    this.recordLayer = link.channel ? 'own' : 'library';
    this.handshakeBackend = link.kind === 'lean' ? 'ota-sim' : 'node-dtls-client';
    this.cipherSuite = link.kind === 'lean' ? link.suite : null;
    if (link.kind === 'lean') {
      link.udp.on('message', (datagram: Buffer) => this.onDatagram(datagram));
      link.udp.on('error', (err: Error) => this.handlers.end({ kind: 'failed', message: err.message }));
      return;
    }
    const socket = link.socket;
    socket.removeAllListeners('error');
    socket.removeAllListeners('close');
    if (link.channel && link.udp) {
      // node-dtls-client's UDP listener goes; its 'close' and 'error' listeners stay (they end us below)
      link.udp.removeAllListeners('message');
      link.udp.on('message', (datagram: Buffer) => this.onDatagram(datagram));
    } else {
      socket.on('message', (datagram: Buffer) => this.handlers.deliver(datagram));
    }
    socket.on('error', (err: Error) => this.handlers.end({ kind: 'failed', message: err.message }));
    socket.on('close', () => this.handlers.end({ kind: 'failed', message: 'the DTLS association closed' }));
  }

  /** Records received through our record layer: opened, and dropped (other epoch, replayed, forged). */
  get recordStats(): { sealed: number; opened: number; dropped: number } | null {
    return this.channel ? { ...this.channel.stats } : null;
  }

  private onDatagram(datagram: Buffer): void {
    if (this.closed || !this.channel) return;
    for (const rec of this.channel.open(datagram)) {
      if (this.closed) return;
      if (rec.type === ContentType.applicationData) this.handlers.deliver(rec.data);
      else if (rec.type === ContentType.alert && rec.data.length === 2) this.onAlert(rec.data.readUInt8(0), rec.data.readUInt8(1));
      // handshake (a retransmitted Finished, a HelloRequest) and ChangeCipherSpec: nothing to do
    }
  }

  /** As node-dtls-client does: a fatal alert kills the association; close_notify is answered, then the end. */
  private onAlert(level: number, description: number): void {
    if (description === AlertDescription.closeNotify) {
      this.handlers.end({ kind: 'failed', message: 'the server closed the DTLS association (close_notify)' });
      this.sendCloseNotifyAndKill();
    } else if (level === AlertLevel.fatal) {
      this.handlers.end({ kind: 'failed', message: `received fatal alert: ${description}` });
      this.kill();
    }
  }

  /** One sealed record to the server over the UDP socket (connected for 'ota-sim'). */
  private sendSealed(record: Buffer, done?: () => void): void {
    const link = this.link;
    if (link.kind === 'lean') link.udp.send(record, done);
    else if (link.udp) link.udp.send(record, this.remote.port, this.remote.host, done);
    else throw new Error('assertion failed: sealed record without a UDP socket');
  }

  /** Close the UDP socket without an alert; no listener of ours fires afterwards. */
  private kill(): void {
    const link = this.link;
    if (link.kind === 'library') {
      kill(link.socket);
      return;
    }
    link.udp.removeAllListeners();
    link.udp.on('error', () => {});
    try {
      link.udp.close();
    } catch {
      // already closed
    }
  }

  /** Our close_notify, then the UDP socket closes (once the datagram is out). */
  private sendCloseNotifyAndKill(): void {
    if (!this.channel || (this.link.kind === 'library' && !this.link.udp)) {
      this.kill();
      return;
    }
    try {
      this.sendSealed(this.channel.seal(ContentType.alert, Buffer.of(AlertLevel.warning, AlertDescription.closeNotify)), () => this.kill());
    } catch {
      this.kill();
    }
  }

  static async open(options: DtlsTransportOptions): Promise<DtlsTransport> {
    const attempts = options.handshakeAttempts ?? 4;
    if (!(Number.isInteger(attempts) && attempts >= 1 && attempts <= MAX_HANDSHAKE_ATTEMPTS)) {
      throw new NetError('BAD_REQUEST', `handshakeAttempts ${attempts} must be in [1, ${MAX_HANDSHAKE_ATTEMPTS}]`);
    }
    let timeout_ms = options.handshakeTimeout_ms ?? 1000;
    const cap_ms = options.handshakeTimeoutMax_ms ?? 8000;
    if (!(timeout_ms > 0 && cap_ms >= timeout_ms)) throw new NetError('BAD_REQUEST', `handshake timeouts ${timeout_ms}/${cap_ms} ms`);
    const backend = options.handshake ?? 'ota-sim';
    if (!DTLS_HANDSHAKE_BACKENDS.includes(backend)) throw new NetError('BAD_REQUEST', `handshake backend ${String(backend)}: expected ${DTLS_HANDSHAKE_BACKENDS.join(' or ')}`);
    // the lean handshake has src/dtls's suites and record layer only
    const lean = backend === 'ota-sim' && options.ownRecordLayer !== false && (options.ciphers ?? []).every((c) => suiteByName(c) !== undefined);
    if (lean && Buffer.byteLength(options.identity) > MAX_IDENTITY_BYTES) throw new NetError('BAD_REQUEST', `PSK identity longer than ${MAX_IDENTITY_BYTES} bytes`);
    const remote = { host: options.host, port: options.port };
    const failures: string[] = [];
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (options.signal?.aborted) throw cancelled(options);
      const outcome = lean ? await leanHandshakeOnce(options, timeout_ms) : await handshakeOnce(options, timeout_ms);
      if (outcome.kind === 'connected') {
        const a = outcome.association;
        return new DtlsTransport({ kind: 'lean', udp: a.socket, channel: a.channel, suite: a.suite.name }, a.localPort, attempt, remote);
      }
      if (outcome.kind === 'library-connected') {
        const internals = outcome.socket as unknown as DtlsSocketInternals;
        const port = internals.udp?.address().port ?? 0;
        const channel = options.ownRecordLayer === false ? null : takeOverRecords(outcome.socket);
        const transport = new DtlsTransport({ kind: 'library', socket: outcome.socket, udp: internals.udp ?? null, channel }, port, attempt, remote);
        // the association may have died between the handshake's end and now
        if (internals._isClosed) transport.handlers.end({ kind: 'failed', message: 'the DTLS association closed right after the handshake' });
        return transport;
      }
      if (outcome.kind === 'cancelled') throw cancelled(options);
      failures.push(`attempt ${attempt}: ${outcome.message}`);
      if (outcome.kind === 'alert') break;
      timeout_ms = Math.min(cap_ms, timeout_ms * 2);
    }
    throw new NetError('HANDSHAKE_FAILED', `DTLS handshake with ${options.host}:${options.port} failed (${failures.join('; ')})`);
  }

  get closed(): boolean {
    return this.handlers.isEnded;
  }

  send(datagram: Buffer): void {
    if (this.closed) return;
    try {
      if (this.channel) this.sendSealed(this.channel.seal(ContentType.applicationData, datagram));
      else if (this.link.kind === 'library') this.link.socket.send(datagram);
    } catch (err) {
      this.handlers.end({ kind: 'failed', message: (err as Error).message });
    }
  }

  onMessage(handler: (datagram: Buffer) => void): void {
    this.handlers.setMessage(handler);
  }

  onClose(handler: (reason: TransportCloseReason) => void): void {
    this.handlers.setClose(handler);
  }

  /** Graceful: close_notify, then the socket closes. */
  close(): void {
    if (this.closed) return;
    this.handlers.end({ kind: 'closed' });
    if (this.channel || this.link.kind === 'lean') {
      this.sendCloseNotifyAndKill();
      return;
    }
    try {
      this.link.socket.close();
    } catch {
      (this.link.socket as unknown as DtlsSocketInternals).killConnection();
    }
  }

  /** Power cut: no alert, no more events. */
  abort(): void {
    if (this.closed) return;
    this.handlers.end({ kind: 'aborted' });
    this.kill();
  }
}

type HandshakeOutcome =
  | { kind: 'connected'; association: ClientAssociation }
  | { kind: 'library-connected'; socket: dtls.Socket }
  | { kind: 'cancelled' }
  | { kind: 'timeout' | 'error' | 'alert'; message: string };

function cancelled(options: DtlsTransportOptions): NetError {
  return new NetError('CANCELLED', `DTLS handshake with ${options.host}:${options.port} aborted`);
}

function kill(socket: dtls.Socket): void {
  socket.removeAllListeners('message');
  socket.removeAllListeners('close');
  socket.removeAllListeners('connected');
  socket.removeAllListeners('error');
  socket.on('error', () => {});
  (socket as unknown as DtlsSocketInternals).killConnection();
}

/**
 * One attempt of the lean handshake, bounded by `timeout_ms` on the injected clock. Within it the
 * handshake resends a flight that got no answer after half the attempt's time (doubling): one
 * lost datagram costs a retransmission, not a whole new attempt.
 */
function leanHandshakeOnce(options: DtlsTransportOptions, timeout_ms: number): Promise<HandshakeOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    let timer: TimerHandle | null = null;
    let hs: ClientHandshake | null = null;
    const settle = (outcome: HandshakeOutcome): void => {
      if (settled) return;
      settled = true;
      timer?.cancel();
      options.signal?.removeEventListener('abort', onAbort);
      if (outcome.kind !== 'connected') hs?.abort();
      resolve(outcome);
    };
    const onAbort = (): void => settle({ kind: 'cancelled' });
    try {
      hs = new ClientHandshake(
        {
          host: options.host,
          port: options.port,
          identity: options.identity,
          psk: Buffer.from(options.psk),
          clock: options.clock,
          retransmit: { initial_ms: Math.max(1, timeout_ms / 2), max_ms: timeout_ms, maxRetransmissions: MAX_FLIGHT_RETRANSMISSIONS },
          bindAddress: isLoopback(options.host) ? '127.0.0.1' : '0.0.0.0',
          ...(options.ciphers ? { cipherSuites: options.ciphers as CipherSuiteName[] } : {}),
          ...(options.localPort !== undefined && options.localPort !== 0 ? { localPort: options.localPort } : {}),
        },
        (r) => settle(r.ok ? { kind: 'connected', association: r.association } : { kind: r.error.kind, message: r.error.message }),
      );
    } catch (err) {
      settle({ kind: 'error', message: (err as Error).message });
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    timer = options.clock.setTimeout(() => settle({ kind: 'timeout', message: `no handshake within ${timeout_ms} ms` }), timeout_ms);
  });
}

function handshakeOnce(options: DtlsTransportOptions, timeout_ms: number): Promise<HandshakeOutcome> {
  return new Promise((resolve) => {
    const socketOptions: dtls.Options & { lookup: ReturnType<typeof loopbackLookup> } = {
      type: 'udp4',
      address: options.host,
      port: options.port,
      psk: { [options.identity]: options.psk },
      timeout: LIBRARY_TIMEOUT_MS,
      lookup: loopbackLookup(isLoopback(options.host) ? '127.0.0.1' : '0.0.0.0'),
      ...(options.localPort !== undefined && options.localPort !== 0 ? { listenPort: options.localPort } : {}),
      ...(options.ciphers ? { ciphers: options.ciphers } : {}),
    };
    let settled = false;
    let timer: TimerHandle | null = null;
    let socket: dtls.Socket;
    const settle = (outcome: HandshakeOutcome): void => {
      if (settled) return;
      settled = true;
      timer?.cancel();
      options.signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('connected');
      if (outcome.kind !== 'library-connected') kill(socket);
      resolve(outcome);
    };
    const onAbort = (): void => settle({ kind: 'cancelled' });
    try {
      socket = dtls.createSocket(socketOptions);
    } catch (err) {
      resolve({ kind: 'error', message: (err as Error).message });
      return;
    }
    socket.on('connected', () => settle({ kind: 'library-connected', socket }));
    socket.on('error', (err: Error) => settle({ kind: /alert/.test(err.message) ? 'alert' : 'error', message: err.message }));
    socket.on('close', () => settle({ kind: 'error', message: 'socket closed during the handshake' }));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    timer = options.clock.setTimeout(() => settle({ kind: 'timeout', message: `no handshake within ${timeout_ms} ms` }), timeout_ms);
  });
}
