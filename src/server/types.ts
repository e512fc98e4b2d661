/**
 * The update server's data model, as plain serialisable records: artifacts (package, version,
 * board, bytes), releases (artifacts + targeting + rollout), devices (PSK identity, board, tags)
 * and the state reports devices send. Everything here is JSON-safe so the admin API and the
 * state-dir journal use the same shapes.
 */

/** A firmware artifact: the bytes of one package version (optionally for one board). */
export interface ArtifactInfo {
  /** `package@version` or `package@version/board`: unique. */
  id: string;
  package: string;
  version: string;
  /** The board the artifact is built for (the image's 0xa1 TLV or given), null for any. */
  board: string | null;
  /** SHA-256 of the bytes, 64 lowercase hex chars. */
  sha256: string;
  size_bytes: number;
  /** The CoAP path a device downloads it from, e.g. `/.u/c/main@1.2.0`. */
  uri: string;
  created_ms: number;
}

export type ReleaseState = 'draft' | 'active' | 'paused' | 'rolled-back';

/** A release: a set of artifacts (one per package and board) offered to the devices it targets. */
export interface ReleaseInfo {
  id: string;
  /** Artifact ids. */
  artifacts: string[];
  /** Empty: every board. */
  boards: string[];
  /** Empty: no tag condition; otherwise a device needs at least one of them. */
  tags: string[];
  /** Empty: no device condition; otherwise only these identities. */
  devices: string[];
  /** 0..100; a device is in when its bucket (hash of identity + release id) is below it. */
  rolloutPercent: number;
  state: ReleaseState;
  /**
   * Stamped from a server-wide counter each time the release becomes active (again): the
   * manifest sequence number, and the order in which active releases take precedence.
   */
  activationSeq: number;
  created_ms: number;
}

/** A device the server knows: a PSK identity (and key, for DTLS), its board and tags. */
export interface DeviceInfo {
  identity: string;
  /** The PSK (ASCII, as in the PSK file); null for a device seen only over plain UDP. */
  key: string | null;
  board: string | null;
  tags: string[];
}

/** A state report as the device sent it (FORMATS.md), once validated. */
export interface StateReport {
  /** 0 IDLE, 1 DOWNLOADING, 2 DOWNLOADED, 3 UPDATING. */
  s: number;
  /** 0 READY .. 11 AWAIT_RETRY. */
  r: number;
  pkg: string;
  v: string | null;
  t: string | null;
}

/** One received report, accepted or rejected (a malformed one keeps its diagnostic and bytes). */
export interface ReportRecord {
  at_ms: number;
  /** The package named by the request path. */
  package: string;
  transport: 'udp' | 'dtls';
  report: StateReport | null;
  /** Null when accepted; the diagnostic sent with 4.00 otherwise. */
  error: string | null;
  /** The payload as hex, kept for rejected reports only. */
  rawHex: string | null;
}

export const REPORT_STATES = ['IDLE', 'DOWNLOADING', 'DOWNLOADED', 'UPDATING'] as const;
export const REPORT_REASONS = [
  'READY',
  'FIRMWARE_UPDATED_SUCCESSFULLY',
  'NOT_ENOUGH_FLASH_MEMORY',
  'OUT_OF_RAM',
  'CONNECTION_LOST',
  'INTEGRITY_CHECK_FAILURE',
  'UNSUPPORTED_PACKAGE_TYPE',
  'INVALID_URI',
  'FIRMWARE_UPDATE_FAILED',
  'UNSUPPORTED_PROTOCOL',
  'IO',
  'AWAIT_RETRY',
] as const;
