/**
 * Errors of the DTLS server. User-facing ones are typed (`src/errors.ts`); `DecodeError` and
 * `HandshakeAbort` are internal signals that the server catches and turns into a dropped datagram
 * or a fatal alert — they never escape to callers.
 */
import { EnvironmentError, InputError } from '../errors.js';

/** Bad server options (exit 2). */
export class DtlsOptionsError extends InputError {
  constructor(message: string) {
    super('DTLS_BAD_OPTIONS', `DTLS server options: ${message}`);
  }
}

/** The socket could not be bound or used (exit 3). */
export class DtlsSocketError extends EnvironmentError {
  constructor(message: string) {
    super('DTLS_SOCKET', message);
  }
}

/** Malformed bytes from the network. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

/** A handshake must stop; `alert` is the fatal alert description to send (or null for none). */
export class HandshakeAbort extends Error {
  constructor(
    readonly alert: number | null,
    message: string,
  ) {
    super(message);
    this.name = 'HandshakeAbort';
  }
}
