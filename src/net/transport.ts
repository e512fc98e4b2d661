/**
 * A datagram transport the CoAP request layer runs on: plain UDP or DTLS. One transport is one
 * association with one server. It can end three ways: `close()` (graceful: DTLS sends
 * close_notify), `abort()` (a power cut: nothing more is sent and no callback fires afterwards),
 * or by itself (a fatal alert, a socket error), which is reported once through `onClose`.
 */

export type TransportKind = 'udp' | 'dtls';

export type TransportCloseReason =
  | { kind: 'closed' }
  | { kind: 'aborted' }
  /** The transport failed by itself: a socket error, a fatal DTLS alert, the peer's close_notify. */
  | { kind: 'failed'; message: string };

export interface Transport {
  readonly kind: TransportKind;
  /** The local UDP port (a re-created transport normally gets a new one, like a rebooted device). */
  readonly localPort: number;
  readonly closed: boolean;
  /** Send one datagram; silently dropped once the transport is closed. */
  send(datagram: Buffer): void;
  /** The one receiver of incoming datagrams (replaces any earlier one). */
  onMessage(handler: (datagram: Buffer) => void): void;
  /** Called once when the transport ends, whatever the way, except after `abort()`. */
  onClose(handler: (reason: TransportCloseReason) => void): void;
  close(): void;
  abort(): void;
}

/** Handler bookkeeping shared by the transports: at most one of each, silenced after the end. */
export class TransportHandlers {
  private message: ((datagram: Buffer) => void) | null = null;
  private close: ((reason: TransportCloseReason) => void) | null = null;
  private ended = false;

  get isEnded(): boolean {
    return this.ended;
  }

  setMessage(handler: (datagram: Buffer) => void): void {
    this.message = handler;
  }

  setClose(handler: (reason: TransportCloseReason) => void): void {
    this.close = handler;
  }

  deliver(datagram: Buffer): void {
    if (!this.ended) this.message?.(datagram);
  }

  /** Mark the end; report it unless it was an abort. Idempotent. */
  end(reason: TransportCloseReason): void {
    if (this.ended) return;
    this.ended = true;
    const handler = this.close;
    this.message = null;
    this.close = null;
    if (reason.kind !== 'aborted') handler?.(reason);
  }
}
