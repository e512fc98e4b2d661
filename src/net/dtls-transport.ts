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
 */
import { lookup as dnsLookup } from 'node:dns';
import { dtls } from 'node-dtls-client';
import type { Clock, TimerHandle } from '../clock.js';
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
}

export const MAX_HANDSHAKE_ATTEMPTS = 16;

/** node-dtls-client's process-clock handshake timer: set far out, ours on the injected clock decides. */
const LIBRARY_TIMEOUT_MS = 24 * 3600 * 1000;

/** What this module needs from node-dtls-client beyond its typings (checked against 2.0.3's source). */
interface DtlsSocketInternals {
  /** Closes the UDP socket without an alert and removes its listeners. */
  killConnection(err?: Error): void;
  udp?: { address(): { port: number } };
  _isClosed?: boolean;
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
    dnsLookup(hostname, { family: 4 }, (err, address, family) => callback(err, address, family));
    void options;
  };
}

export class DtlsTransport implements Transport {
  readonly kind = 'dtls' as const;
  private readonly handlers = new TransportHandlers();

  private constructor(
    private readonly socket: dtls.Socket,
    readonly localPort: number,
    /** Handshake attempts it took (1 = first try). */
    readonly handshakeAttempts: number,
  ) {
    socket.removeAllListeners('error');
    socket.removeAllListeners('close');
    socket.on('message', (datagram: Buffer) => this.handlers.deliver(datagram));
    socket.on('error', (err: Error) => this.handlers.end({ kind: 'failed', message: err.message }));
    socket.on('close', () => this.handlers.end({ kind: 'failed', message: 'the DTLS association closed' }));
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
        const transport = new DtlsTransport(outcome.socket, port, attempt);
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
      this.socket.send(datagram);
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
