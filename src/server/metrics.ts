/** Counters the update server keeps; `GET /api/metrics` and `UpdateServer.metrics()` return them. */

export interface ServerMetrics {
  /** CoAP requests handled (after duplicate suppression), by transport. */
  requests: { udp: number; dtls: number };
  /** Requests answered with a 4.xx/5.xx code. */
  errorResponses: number;
  /**
   * Duplicates of a request that arrived while the first was still being handled, dropped (the
   * client's next retransmission gets the cached response).
   */
  duplicatesInFlight: number;
  manifestRequests: number;
  /** Artifact responses (one per block; a whole small artifact counts as one). */
  blocksServed: number;
  artifactBytesServed: number;
  /** Observe notifications sent after the registration response. */
  notifications: number;
  /**
   * Notification (re)transmissions held back because their observation had ended or its DTLS
   * session was gone (node-coap's retransmission timer outlives the observation).
   */
  notificationsDropped: number;
  observers: number;
  reportsAccepted: number;
  reportsRejected: number;
  /** Established DTLS sessions now. */
  activeSessions: number;
  /** DTLS handshakes that failed (unknown identity, wrong key, timeout, superseded). */
  handshakesFailed: number;
  devices: number;
  artifacts: number;
  releases: number;
}

export function emptyMetrics(): ServerMetrics {
  return {
    requests: { udp: 0, dtls: 0 },
    errorResponses: 0,
    duplicatesInFlight: 0,
    manifestRequests: 0,
    blocksServed: 0,
    artifactBytesServed: 0,
    notifications: 0,
    notificationsDropped: 0,
    observers: 0,
    reportsAccepted: 0,
    reportsRejected: 0,
    activeSessions: 0,
    handshakesFailed: 0,
    devices: 0,
    artifacts: 0,
    releases: 0,
  };
}
