/**
 * The device's network layer: CoAP request layer (tokens/MIDs from the device PRNG, timers on the
 * injected clock), UDP and DTLS-PSK transports, and the windowed Block2 download engine.
 */
export { CoapClient, MAX_OBSERVATIONS_LIMIT, MAX_OUTSTANDING_LIMIT, responseEtag } from './client.js';
export type { CoapClientOptions, CoapClientStats, CoapMethod, CoapRequest, CoapResponse, Observation, ObservationEnd } from './client.js';
export { download, MAX_BLOCK_RETRIES, MAX_WINDOW } from './block2-download.js';
export type { DownloadOptions, DownloadProgress, DownloadResult } from './block2-download.js';
export { DownloadError, NetError } from './errors.js';
export type { DownloadAbortReason, NetErrorCode } from './errors.js';
export { DTLS_HANDSHAKE_BACKENDS, DtlsTransport, MAX_HANDSHAKE_ATTEMPTS } from './dtls-transport.js';
export type { DtlsHandshakeBackend, DtlsTransportOptions } from './dtls-transport.js';
export { UdpTransport } from './udp-transport.js';
export type { UdpTransportOptions } from './udp-transport.js';
export type { Transport, TransportCloseReason, TransportKind } from './transport.js';
export { DEFAULT_COAP_TIMING, resolveTiming } from './timing.js';
export type { CoapTiming, ResolvedCoapTiming } from './timing.js';
export { OptionNumber, decodeBlock, encodeBlock, encodeUint, decodeUint, findOption, uintOption } from './options.js';
export type { BlockValue, CoapOption } from './options.js';
export { decodeMessage, encodeMessage } from './message.js';
export type { CoapMessage, CoapType } from './message.js';
export { isFresh } from './observe-freshness.js';
