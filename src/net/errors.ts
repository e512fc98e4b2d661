/**
 * Typed errors of the network layer. Every failure the agent may react to has a stable code, so a
 * statechart can branch on `code` (retry, re-handshake, restart the download at block 0) instead
 * of parsing messages.
 */
import { EnvironmentError } from '../errors.js';

export type NetErrorCode =
  /** A confirmable request got no ACK after MAX_RETRANSMIT retransmissions, or no separate response in time. */
  | 'TIMEOUT'
  /** The peer answered a request with RST. */
  | 'RESET'
  /** The transport closed (fatal alert, socket error, close()) while the request was outstanding. */
  | 'TRANSPORT_CLOSED'
  /** More requests than `maxOutstanding` at once, or more observations than `maxObservations`. */
  | 'TOO_MANY_OUTSTANDING'
  /** The DTLS handshake failed on every attempt (timeouts, alerts, socket errors). */
  | 'HANDSHAKE_FAILED'
  /** The caller cancelled the request (AbortSignal). */
  | 'CANCELLED'
  /** The request does not fit in one datagram, or an argument is out of its documented range. */
  | 'BAD_REQUEST';

export class NetError extends EnvironmentError {
  declare readonly code: NetErrorCode;
  constructor(code: NetErrorCode, message: string) {
    super(code, message);
  }
}

/** Why a Block2 download stopped before its last block. */
export type DownloadAbortReason =
  /** The resource's ETag differs from the one the download started with (or was given): restart at block 0. */
  | 'ETAG_CHANGED'
  /** The resource's Size2 changed between blocks: same remedy as ETAG_CHANGED. */
  | 'SIZE_CHANGED'
  /** A block failed more than `maxBlockRetries` times (timeouts, 5.xx). */
  | 'BLOCK_FAILED'
  /** The server answered with a client error (4.xx) for a block that exists, e.g. 4.04. */
  | 'SERVER_REFUSED'
  /** A response that breaks RFC 7959 (wrong block number, bigger block than asked, no Block2 past block 0). */
  | 'BAD_RESPONSE'
  /** `onBlock` threw (a flash error, a power cut): the cause is attached. */
  | 'SINK_FAILED'
  /** The transport closed under the download. */
  | 'TRANSPORT_CLOSED'
  /** The caller aborted the download. */
  | 'CANCELLED';

export class DownloadError extends EnvironmentError {
  constructor(
    readonly reason: DownloadAbortReason,
    message: string,
    /** The block the download was waiting for when it stopped (resume from here unless ETAG/SIZE changed). */
    readonly nextBlock: number,
    /** The CoAP response code, for SERVER_REFUSED and BLOCK_FAILED on 5.xx. */
    readonly responseCode: string | null = null,
    options: { cause?: unknown } = {},
  ) {
    super(`DOWNLOAD_${reason}`, message);
    if (options.cause !== undefined) this.cause = options.cause;
  }
}
