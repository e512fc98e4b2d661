/**
 * DTLS 1.2 wire constants (RFC 6347, RFC 5246, RFC 4279): content types, handshake types, alert
 * codes, versions and the extension numbers the server understands. Numbers only, no behaviour.
 */

/** DTLS 1.2 on the wire (ones' complement of 1.2). */
export const DTLS_1_2 = 0xfefd;
/** DTLS 1.0: the version a HelloVerifyRequest always carries (RFC 6347 §4.2.1). */
export const DTLS_1_0 = 0xfeff;

export const ContentType = {
  changeCipherSpec: 20,
  alert: 21,
  handshake: 22,
  applicationData: 23,
} as const;

export const HandshakeType = {
  helloRequest: 0,
  clientHello: 1,
  serverHello: 2,
  helloVerifyRequest: 3,
  certificate: 11,
  serverKeyExchange: 12,
  certificateRequest: 13,
  serverHelloDone: 14,
  certificateVerify: 15,
  clientKeyExchange: 16,
  finished: 20,
} as const;

export const AlertLevel = { warning: 1, fatal: 2 } as const;

export const AlertDescription = {
  closeNotify: 0,
  unexpectedMessage: 10,
  badRecordMac: 20,
  handshakeFailure: 40,
  illegalParameter: 47,
  decodeError: 50,
  decryptError: 51,
  protocolVersion: 70,
  internalError: 80,
  noRenegotiation: 100,
  unknownPskIdentity: 115,
} as const;

export const ExtensionType = {
  extendedMasterSecret: 0x0017,
  renegotiationInfo: 0xff01,
} as const;

/** TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746): a cipher-suite value that means "RI supported". */
export const EMPTY_RENEGOTIATION_INFO_SCSV = 0x00ff;

/** Record header: type(1) version(2) epoch(2) sequence_number(6) length(2). */
export const RECORD_HEADER_BYTES = 13;
/** Handshake header: msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3). */
export const HANDSHAKE_HEADER_BYTES = 12;
/** Largest record fragment a peer may send: 2^14 plaintext + 2048 expansion (RFC 5246 §6.2.3). */
export const MAX_RECORD_FRAGMENT_BYTES = 16384 + 2048;
/** Largest 48-bit record sequence number; a connection must not wrap it. */
export const MAX_RECORD_SEQ = 2 ** 48 - 1;
