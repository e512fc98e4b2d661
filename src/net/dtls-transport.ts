/**
 * CoAP over DTLS 1.2 with a pre-shared key, on node-dtls-client 2.0.3. That library has no
 * handshake retransmission and times out on the process clock, so this transport bounds each
 * handshake attempt on the injected clock and retries with a fresh socket (a new ClientHello, a
 * new source port unless one is fixed), the timeout doubling up to a cap, a bounded number of times.
 * A fatal alert during the handshake (wrong key, unknown identity) fails at once: retrying would
 * not change the answer.
 *
 * `abort()` is a power cut: the UDP socket is closed without close_notify and no event of the old
 * socket reaches the caller. Re-creating the transport after a server restart, a lost session or
 * a port change is simply `DtlsTransport.open()` again: a full handshake.
 *
 * After the handshake, when the negotiated suite is one of src/dtls's AEAD suites (CCM_8, CCM,
 * GCM with AES-128: what our server and libcoap pick), this transport takes the association's
 * keys from node-dtls-client and runs the record layer itself (src/dtls/record-channel.ts):
 * node-dtls-client's costs several times the AES work per datagram, which made a windowed
 * download CPU-bound (bench/agent.ts). Its UDP socket stays; only the 'message' listener is
 * replaced. Alerts are handled as node-dtls-client would (fatal or close_notify end the
 * transport); handshake records after the handshake are ignored. Other suites keep
 * node-dtls-client's record layer (`recordLayer` says which one runs).
 */
import { lookup as dnsLookup } from 'node:dns';
import type { Socket as UdpSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { dtls } from 'node-dtls-client';
import type { Clock, TimerHandle } from '../clock.js';
import { suiteById } from '../dtls/cipher-suites.js';
import { AlertDescription, AlertLevel, ContentType } from '../dtls/constants.js';
import { RecordChannel } from '../dtls/record-channel.js';
import { NetError } from './errors.js';
import { TransportHandlers } from './transport.js';
import type { Transport, TransportCloseReason } from './transport.js';
import { isLoopback } from './udp-transport.js';

export interface DtlsTransportOptions {
  host: string;
  port: number;
  identity: string;
  psk: Buffer | string;
  clock: Clock;
  /** First handshake attempt's timeout (default 1000 ms, RFC 6347's initial retransmission timer). */
  handshakeTimeout_ms?: number;
  /** Cap of the doubling handshake timeout (default 8000 ms). */
  handshakeTimeoutMax_ms?: number;
  /** Handshake attempts before giving up (default 4, at most 16). */
  handshakeAttempts?: number;
  /** Local port (default 0: a new one per attempt). */
  localPort?: number;
  /** Cipher suites to offer (default node-dtls-client's list, which includes CoAP's mandatory CCM_8). */
  ciphers?: dtls.Options['ciphers'];
  /** Run our record layer after the handshake when the suite allows (default true); false keeps node-dtls-client's. */
  ownRecordLayer?: boolean;
}

export const MAX_HANDSHAKE_ATTEMPTS = 16;

/** node-dtls-client's process-clock handshake timer: set far out, ours on the injected clock decides. */
const LIBRARY_TIMEOUT_MS = 24 * 3600 * 1000;

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

export class DtlsTransport implements Transport {
  readonly kind = 'dtls' as const;
  private readonly handlers = new TransportHandlers();

  /** Which record layer runs after the handshake: ours (src/dtls/record-channel.ts) or node-dtls-client's. */
  readonly recordLayer: 'own' | 'library';

  private constructor(
    private readonly socket: dtls.Socket,
    readonly localPort: number,
    /** Handshake attempts it took (1 = first try). */
    readonly handshakeAttempts: number,
    private readonly remote: { host: string; port: number },
    /** Our record layer, or null when node-dtls-client's runs. */
    private readonly channel: RecordChannel | null,
  ) {
    this.recordLayer = channel ? 'own' : 'library';
    socket.removeAllListeners('error');
    socket.removeAllListeners('close');
    const udp = (socket as unknown as DtlsSocketInternals).udp;
    if (channel && udp) {
      // node-dtls-client's UDP listener goes; its 'close' and 'error' listeners stay (they end us below)
      udp.removeAllListeners('message');
      udp.on('message', (datagram: Buffer) => this.onDatagram(datagram));
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
      kill(this.socket);
    }
  }

  /** Our close_notify, then the UDP socket closes (once the datagram is out). */
  private sendCloseNotifyAndKill(): void {
    const udp = (this.socket as unknown as DtlsSocketInternals).udp;
    if (!this.channel || !udp) {
      kill(this.socket);
      return;
    }
    try {
      udp.send(this.channel.seal(ContentType.alert, Buffer.of(AlertLevel.warning, AlertDescription.closeNotify)), this.remote.port, this.remote.host, () => kill(this.socket));
    } catch {
      kill(this.socket);
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
    const failures: string[] = [];
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const outcome = await handshakeOnce(options, timeout_ms);
      if (outcome.kind === 'connected') {
        const internals = outcome.socket as unknown as DtlsSocketInternals;
        const port = internals.udp?.address().port ?? 0;
        const transport = new DtlsTransport(outcome.socket, port, attempt, { host: options.host, port: options.port }, options.ownRecordLayer === false ? null : takeOverRecords(outcome.socket));
        // the association may have died between the handshake's end and now
        if (internals._isClosed) transport.handlers.end({ kind: 'failed', message: 'the DTLS association closed right after the handshake' });
        return transport;
      }
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
      const udp = (this.socket as unknown as DtlsSocketInternals).udp;
      if (this.channel && udp) udp.send(this.channel.seal(ContentType.applicationData, datagram), this.remote.port, this.remote.host);
      else this.socket.send(datagram);
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
    if (this.channel) {
      this.sendCloseNotifyAndKill();
      return;
    }
    try {
      this.socket.close();
    } catch {
      (this.socket as unknown as DtlsSocketInternals).killConnection();
    }
  }

  /** Power cut: no alert, no more events. */
  abort(): void {
    if (this.closed) return;
    this.handlers.end({ kind: 'aborted' });
    kill(this.socket);
  }
}

type HandshakeOutcome =
  | { kind: 'connected'; socket: dtls.Socket }
  | { kind: 'timeout' | 'error' | 'alert'; message: string };

function kill(socket: dtls.Socket): void {
  socket.removeAllListeners('message');
  socket.removeAllListeners('close');
  socket.removeAllListeners('connected');
  socket.removeAllListeners('error');
  socket.on('error', () => {});
  (socket as unknown as DtlsSocketInternals).killConnection();
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
      socket.removeAllListeners('connected');
      if (outcome.kind !== 'connected') kill(socket);
      resolve(outcome);
    };
    try {
      socket = dtls.createSocket(socketOptions);
    } catch (err) {
      resolve({ kind: 'error', message: (err as Error).message });
      return;
    }
    socket.on('connected', () => settle({ kind: 'connected', socket }));
    socket.on('error', (err: Error) => settle({ kind: /alert/.test(err.message) ? 'alert' : 'error', message: err.message }));
    socket.on('close', () => settle({ kind: 'error', message: 'socket closed during the handshake' }));
    timer = options.clock.setTimeout(() => settle({ kind: 'timeout', message: `no handshake within ${timeout_ms} ms` }), timeout_ms);
  });
}
