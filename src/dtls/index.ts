/** DTLS 1.2 PSK server for ota-sim: the public surface of src/dtls. */
export { DtlsServer } from './server.js';
export type { DtlsServerEvents, DtlsServerOptions, DtlsServerStats, HandshakeFailure, PskLookup } from './server.js';
export { DtlsSession } from './session.js';
export type { SessionCloseReason } from './session.js';
export { CIPHER_SUITES } from './cipher-suites.js';
export type { CipherSuiteName } from './cipher-suites.js';
export { DtlsOptionsError, DtlsSocketError } from './errors.js';
export { DtlsCoapSocket } from './coap-socket.js';
export type { DtlsCoapSocketOptions } from './coap-socket.js';
export { DtlsPskClient } from './client.js';
export type { DtlsClientOptions, DtlsClientEvents } from './client.js';
