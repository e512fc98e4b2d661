/**
 * The OTA agent's configuration, behaviour profiles (FORMATS.md "golioth" and "ota-sim"), the
 * Golioth report codes it sends, and the observable events it emits (for tests, the CLI and
 * reports). Nothing here survives a power cut: the agent's durable memory is the ota-state
 * partition (src/device OtaStateStore) and the MCUboot trailers.
 */
import type { Strategy } from '../flash/types.js';
import type { TrustStore } from '../image/verify.js';
import type { DtlsHandshakeBackend } from '../net/dtls-transport.js';
import type { CoapTiming } from '../net/timing.js';

export type AgentProfile = 'golioth' | 'ota-sim';

/**
 * Switchable, documented agent defects (FAULTS.md "A sweep is only as good as the bugs it
 * catches"), off by default; a sweep or a test turns one on to show that it is caught:
 * - `confirm-before-self-test`: the test boot calls boot_set_confirmed() before running the
 *   image's self-test, so an image whose self-test fails stays confirmed (no rollback).
 * - `progress-never-persisted`: the download progress record is never written (the attempt count
 *   still is), so a power cut mid-download restarts at block 0 even in the ota-sim profile.
 * - `pending-before-verify`: boot_set_pending() (the slot1 trailer) is written before the
 *   downloaded image is verified, so a refused image is still test-booted at the next reboot.
 * - `failure-report-from-ram`: the failure after a rollback is reported from a RAM variable
 *   instead of being derived from flash; RAM does not survive the reset that reverts the image,
 *   so the reverted firmware reports nothing (and, not knowing the version failed, tries it again).
 */
export type AgentDefect = 'confirm-before-self-test' | 'progress-never-persisted' | 'pending-before-verify' | 'failure-report-from-ram';
export const AGENT_DEFECTS: readonly AgentDefect[] = ['confirm-before-self-test', 'progress-never-persisted', 'pending-before-verify', 'failure-report-from-ram'];

/** Golioth report states (FORMATS.md). */
export const ReportState = { IDLE: 0, DOWNLOADING: 1, DOWNLOADED: 2, UPDATING: 3 } as const;

/** Golioth report reasons (FORMATS.md). */
export const ReportReason = {
  READY: 0,
  FIRMWARE_UPDATED_SUCCESSFULLY: 1,
  NOT_ENOUGH_FLASH_MEMORY: 2,
  OUT_OF_RAM: 3,
  CONNECTION_LOST: 4,
  INTEGRITY_CHECK_FAILURE: 5,
  UNSUPPORTED_PACKAGE_TYPE: 6,
  INVALID_URI: 7,
  FIRMWARE_UPDATE_FAILED: 8,
  UNSUPPORTED_PROTOCOL: 9,
  IO: 10,
  AWAIT_RETRY: 11,
} as const;

export interface AgentServer {
  /** 'udp': plain CoAP, the device names itself with `?id=IDENTITY`; 'dtls': PSK. */
  kind: 'udp' | 'dtls';
  host: string;
  port: number;
  identity: string;
  /** The PSK (DTLS only). */
  psk?: string;
}

/** Everything the agent needs; the same for every boot of one device. */
export interface AgentConfig {
  server: AgentServer;
  /** The board this firmware runs on (the image's board TLV must match). */
  board: string;
  strategy: Strategy;
  trust: TrustStore;
  /** Seed of the device PRNG (CoAP tokens and message IDs); mixed with the boot count. */
  seed: number;
  /** Default 'ota-sim'. */
  profile?: AgentProfile;
  /** The firmware package the agent acts on (default 'main'). */
  package?: string;
  /** Block2 size, 16..1024 (default 1024). */
  blockSize_bytes?: number;
  /** Outstanding block requests, 1..64 (default 1). */
  window?: number;
  /** Persist the download progress every N blocks (default 8, 1..1024). */
  persistEvery_blocks?: number;
  /** Rollback timer of a test boot (default 300 000 simulated ms). */
  rollbackTimer_ms?: number;
  /** Download attempts per target version before the agent gives it up (default 3, 1..100). */
  maxAttemptsPerVersion?: number;
  /** First backoff after a failed connect / download, doubling to the cap (defaults 2 000 / 60 000 ms). */
  backoffBase_ms?: number;
  backoffCap_ms?: number;
  /** Delay before a failed block is retried (default 1000 ms) and retries per block (default 5). */
  blockRetryDelay_ms?: number;
  maxBlockRetries?: number;
  /** Manifest poll interval when notifications stop (ota-sim profile; default 60 000 ms). */
  pollInterval_ms?: number;
  /** Retry an unsent outcome report after this long (default 30 000 ms). */
  reportRetry_ms?: number;
  coapTiming?: Partial<CoapTiming>;
  /** DTLS handshake attempts per connect (default 4). */
  handshakeAttempts?: number;
  handshakeTimeout_ms?: number;
  /** Who does the DTLS handshake: our lean client (default 'ota-sim') or node-dtls-client. */
  dtlsHandshake?: DtlsHandshakeBackend;
  /** Seeded defects (see AgentDefect); default none. */
  defects?: AgentDefect[];
  /** Observability: every state change and notable step (never used for decisions). */
  onEvent?: (event: AgentEvent) => void;
}

export type ResolvedAgentConfig = Required<Omit<AgentConfig, 'onEvent' | 'coapTiming' | 'handshakeTimeout_ms'>> &
  Pick<AgentConfig, 'onEvent' | 'coapTiming' | 'handshakeTimeout_ms'>;

export interface SentReport {
  s: number;
  r: number;
  pkg: string;
  v: string;
  t: string | null;
}

export type AgentEvent =
  | { type: 'state'; state: string; version: string; at_ms: number }
  | { type: 'block'; block: number; at_ms: number }
  | { type: 'download-start'; version: string; startBlock: number; at_ms: number }
  /** A download call finished: its blocks and the most payload bytes it held in RAM at once (≤ window × block size). */
  | { type: 'download-done'; version: string; startBlock: number; blocks: number; highWater_bytes: number; at_ms: number }
  /** A manifest reached the agent: in the registration response, a notification, or a poll. */
  | { type: 'manifest'; seq: number; via: 'registration' | 'notification' | 'poll'; at_ms: number }
  /** The agent registered its Observe of /.u/desired again on the same connection (a poll found a change it was not notified of). */
  | { type: 'reregistered'; at_ms: number }
  | { type: 'refused'; version: string; reason: number; message: string; at_ms: number }
  | { type: 'report'; report: SentReport; delivered: boolean; at_ms: number }
  | { type: 'confirmed'; version: string; at_ms: number }
  | { type: 'rollback'; version: string; why: string; at_ms: number };

function bounded(v: number, lo: number, hi: number, what: string): number {
  if (!(Number.isFinite(v) && v >= lo && v <= hi)) throw new RangeError(`agent: ${what} must be in ${lo}..${hi}, got ${v}`);
  return v;
}

function checkDefects(ds: readonly AgentDefect[]): AgentDefect[] {
  for (const d of ds) if (!AGENT_DEFECTS.includes(d)) throw new RangeError(`agent: unknown defect "${String(d)}"; known: ${AGENT_DEFECTS.join(', ')}`);
  return [...new Set(ds)];
}

function checkHandshake(h: DtlsHandshakeBackend): DtlsHandshakeBackend {
  if (h !== 'ota-sim' && h !== 'node-dtls-client') throw new RangeError(`agent: dtlsHandshake must be 'ota-sim' or 'node-dtls-client', got "${String(h)}"`);
  return h;
}

export function resolveAgentConfig(c: AgentConfig): ResolvedAgentConfig {
  const blockSize = c.blockSize_bytes ?? 1024;
  if (![16, 32, 64, 128, 256, 512, 1024].includes(blockSize)) throw new RangeError(`agent: blockSize_bytes must be a power of two 16..1024, got ${blockSize}`);
  if (c.server.kind === 'dtls' && (c.server.psk === undefined || c.server.psk === '')) throw new RangeError('agent: a DTLS server needs a PSK');
  return {
    server: c.server,
    board: c.board,
    strategy: c.strategy,
    trust: c.trust,
    seed: c.seed,
    profile: c.profile ?? 'ota-sim',
    package: c.package ?? 'main',
    blockSize_bytes: blockSize,
    window: bounded(c.window ?? 1, 1, 64, 'window'),
    persistEvery_blocks: bounded(c.persistEvery_blocks ?? 8, 1, 1024, 'persistEvery_blocks'),
    rollbackTimer_ms: bounded(c.rollbackTimer_ms ?? 300_000, 1, 86_400_000, 'rollbackTimer_ms'),
    maxAttemptsPerVersion: bounded(c.maxAttemptsPerVersion ?? 3, 1, 100, 'maxAttemptsPerVersion'),
    backoffBase_ms: bounded(c.backoffBase_ms ?? 2000, 1, 3_600_000, 'backoffBase_ms'),
    backoffCap_ms: bounded(c.backoffCap_ms ?? 60_000, 1, 86_400_000, 'backoffCap_ms'),
    blockRetryDelay_ms: bounded(c.blockRetryDelay_ms ?? 1000, 0, 3_600_000, 'blockRetryDelay_ms'),
    maxBlockRetries: bounded(c.maxBlockRetries ?? 5, 0, 100, 'maxBlockRetries'),
    pollInterval_ms: bounded(c.pollInterval_ms ?? 60_000, 1, 86_400_000, 'pollInterval_ms'),
    reportRetry_ms: bounded(c.reportRetry_ms ?? 30_000, 1, 86_400_000, 'reportRetry_ms'),
    handshakeAttempts: bounded(c.handshakeAttempts ?? 4, 1, 16, 'handshakeAttempts'),
    dtlsHandshake: checkHandshake(c.dtlsHandshake ?? 'ota-sim'),
    defects: checkDefects(c.defects ?? []),
    coapTiming: c.coapTiming,
    handshakeTimeout_ms: c.handshakeTimeout_ms,
    onEvent: c.onEvent,
  };
}
