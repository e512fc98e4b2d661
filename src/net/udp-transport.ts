/**
 * Plain CoAP over UDP (node:dgram). The socket is connected to the server, so datagrams from
 * anyone else are dropped by the kernel. Binds to 127.0.0.1 when the server is on loopback.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { NetError } from './errors.js';
import { TransportHandlers } from './transport.js';
import type { Transport, TransportCloseReason } from './transport.js';

export interface UdpTransportOptions {
  host: string;
  port: number;
  /** Local port (default 0: the OS picks one). */
  localPort?: number;
  /** Local address (default 127.0.0.1 for a loopback server, else 0.0.0.0). */
  bindAddress?: string;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export class UdpTransport implements Transport {
  readonly kind = 'udp' as const;
  private readonly handlers = new TransportHandlers();

  private constructor(
    private readonly socket: Socket,
    readonly localPort: number,
  ) {
    socket.on('message', (datagram) => this.handlers.deliver(datagram));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // a server that is down answers with ICMP port unreachable: a lost datagram, not the end
      if (err.code === 'ECONNREFUSED') return;
      this.finish({ kind: 'failed', message: err.message });
    });
  }

  static async open(options: UdpTransportOptions): Promise<UdpTransport> {
    const socket = createSocket('udp4');
    const bindAddress = options.bindAddress ?? (isLoopback(options.host) ? '127.0.0.1' : '0.0.0.0');
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(options.localPort ?? 0, bindAddress, () => {
          socket.connect(options.port, options.host, () => {
            socket.off('error', reject);
            resolve();
          });
        });
      });
    } catch (err) {
      socket.close();
      throw new NetError('TRANSPORT_CLOSED', `cannot open UDP to ${options.host}:${options.port}: ${(err as Error).message}`);
    }
    return new UdpTransport(socket, socket.address().port);
  }

  get closed(): boolean {
    return this.handlers.isEnded;
  }

  send(datagram: Buffer): void {
    if (this.closed) return;
    this.socket.send(datagram, (err) => {
      // ECONNREFUSED (ICMP port unreachable) and the like: UDP loses datagrams, CoAP retransmits
      void err;
    });
  }

  onMessage(handler: (datagram: Buffer) => void): void {
    this.handlers.setMessage(handler);
  }

  onClose(handler: (reason: TransportCloseReason) => void): void {
    this.handlers.setClose(handler);
  }

  close(): void {
    this.finish({ kind: 'closed' });
  }

  abort(): void {
    this.finish({ kind: 'aborted' });
  }

  private finish(reason: TransportCloseReason): void {
    if (this.handlers.isEnded) return;
    this.handlers.end(reason);
    this.socket.removeAllListeners('message');
    this.socket.on('error', () => {});
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
