/**
 * A lean DTLS 1.2 PSK client: the handshake of client-handshake.ts (a list of AEAD suites, the
 * extended master secret, cookies, flight retransmission on the injected clock) and then the one
 * record layer, RecordChannel. Thousands fit in one process, so load tests and benchmarks of the
 * server use it (node-dtls-client has no retransmission: one lost datagram under load stalls it);
 * src/net/dtls-transport.ts uses the same handshake for the device.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:dgram';
import { ScaledClock } from '../clock.js';
import type { Clock } from '../clock.js';
import { suiteByName } from './cipher-suites.js';
import type { CipherSuiteName } from './cipher-suites.js';
import { ClientHandshake, DEFAULT_CLIENT_SUITES } from './client-handshake.js';
import type { ClientAssociation } from './client-handshake.js';
import { AlertDescription, AlertLevel, ContentType } from './constants.js';
import { DtlsOptionsError, DtlsSocketError } from './errors.js';
import type { RetransmitPolicy } from './flight-timer.js';
import type { RecordChannel } from './record-channel.js';

export interface DtlsClientOptions {
  host: string;
  port: number;
  identity: string | Buffer;
  psk: Buffer;
  /** Offer only this suite (shorthand for `cipherSuites: [name]`). */
  cipherSuite?: CipherSuiteName;
  /** Suites offered in preference order (default CCM_8, CCM, GCM); the server chooses. */
  cipherSuites?: readonly CipherSuiteName[];
  /** Offer the extended master secret (default true). */
  extendedMasterSecret?: boolean;
  clock?: Clock;
  retransmit?: RetransmitPolicy;
  /** Local port to bind (default 0: any). A fixed one lets a test play a device that rebooted. */
  localPort?: number;
  /** Aborting during the handshake closes the socket without a word and rejects connect(). */
  signal?: AbortSignal;
}

export interface DtlsClientEvents {
  message: [data: Buffer];
  alert: [level: number, description: number];
  close: [];
}

export class DtlsPskClient extends EventEmitter<DtlsClientEvents> {
  private readonly socket: Socket;
  private readonly channel: RecordChannel;
  private state: 'connected' | 'closed' = 'connected';
  /** The suite the server chose. */
  readonly cipherSuite: CipherSuiteName;

  private constructor(association: ClientAssociation) {
    super();
    this.socket = association.socket;
    this.channel = association.channel;
    this.cipherSuite = association.suite.name;
    this.socket.on('error', () => this.shutdown());
    this.socket.on('message', (d: Buffer) => this.onDatagram(d));
  }

  /** Handshake; resolves once the server's Finished verified. */
  static async connect(options: DtlsClientOptions): Promise<DtlsPskClient> {
    const names = options.cipherSuites ?? (options.cipherSuite !== undefined ? [options.cipherSuite] : DEFAULT_CLIENT_SUITES);
    for (const n of names) if (!suiteByName(n)) throw new DtlsOptionsError(`unknown cipher suite ${String(n)}`);
    const association = await new Promise<ClientAssociation>((resolve, reject) => {
      if (options.signal?.aborted) {
        reject(new DtlsSocketError('DTLS handshake aborted'));
        return;
      }
      const onAbort = (): void => {
        hs.abort();
        reject(new DtlsSocketError('DTLS handshake aborted'));
      };
      const hs = new ClientHandshake(
        {
          host: options.host,
          port: options.port,
          identity: options.identity,
          psk: options.psk,
          cipherSuites: names,
          clock: options.clock ?? new ScaledClock(1),
          retransmit: options.retransmit ?? { initial_ms: 1000, max_ms: 60_000, maxRetransmissions: 6 },
          ...(options.extendedMasterSecret !== undefined ? { extendedMasterSecret: options.extendedMasterSecret } : {}),
          ...(options.localPort !== undefined ? { localPort: options.localPort } : {}),
        },
        (r) => {
          options.signal?.removeEventListener('abort', onAbort);
          if (r.ok) resolve(r.association);
          else reject(new DtlsSocketError(r.error.message));
        },
      );
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
    return new DtlsPskClient(association);
  }

  send(data: Buffer): void {
    if (this.state !== 'connected') throw new DtlsSocketError('DTLS client is not connected');
    this.socket.send(this.channel.seal(ContentType.applicationData, data));
  }

  /** The local UDP port. */
  get localPort(): number {
    return this.socket.address().port;
  }

  /** Send one epoch-1 record of any content type (tests: renegotiation attempts, alerts). */
  sendRecord(type: number, plaintext: Buffer): Buffer {
    if (this.state !== 'connected') throw new DtlsSocketError('DTLS client is not connected');
    const record = this.channel.seal(type, plaintext);
    this.socket.send(record);
    return record;
  }

  /** Drop the connection without a word, as a device losing power would ('close' is still emitted). */
  abandon(): void {
    if (this.state !== 'closed') this.shutdown();
  }

  /** Power cut: no close_notify, and no event of any kind afterwards. */
  abort(): void {
    if (this.state === 'closed') return;
    this.removeAllListeners();
    this.shutdown();
  }

  close(): void {
    if (this.state === 'closed') return;
    try {
      this.socket.send(this.channel.seal(ContentType.alert, Buffer.of(AlertLevel.warning, AlertDescription.closeNotify)));
    } catch {
      // the socket is gone already
    }
    this.shutdown();
  }

  private shutdown(): void {
    this.state = 'closed';
    this.socket.removeAllListeners();
    this.socket.on('error', () => {});
    try {
      this.socket.close();
    } catch {
      // already closed
    }
    this.emit('close');
  }

  private onDatagram(datagram: Buffer): void {
    for (const rec of this.channel.open(datagram)) {
      if (this.state === 'closed') return;
      if (rec.type === ContentType.applicationData) this.emit('message', rec.data);
      else if (rec.type === ContentType.alert && rec.data.length === 2) {
        const level = rec.data.readUInt8(0);
        const description = rec.data.readUInt8(1);
        this.emit('alert', level, description);
        if (level === AlertLevel.fatal || description === AlertDescription.closeNotify) this.shutdown();
      }
      // handshake records (a retransmitted server Finished) need no answer from a client
    }
  }
}
