/**
 * What a scenario run produces: the one result schema that the console table, JUnit XML, the
 * JSON report and the HTML report (src/report) all read, and that `ota-sim run --json` and the
 * API return. Stable: add fields, never rename them (CLI.md "What --json guarantees").
 *
 * Times: `at_ms` values are simulated milliseconds since the scenario started (the scenario
 * clock, so they are the same whatever --time-scale was); `*_wallMs` values are real time.
 */

export const RUN_RESULT_SCHEMA = 'ota-sim/run-result@1';

/** The FAULTS.md oracle, one entry per invariant. */
export const INVARIANTS = [
  { id: 'never-bricked', title: 'Never bricked: the bootloader boots a valid, trusted image from the primary slot' },
  { id: 'only-verified-images-run', title: 'Never runs an unverified image: every image that ran verified (hash and signature)' },
  { id: 'converges', title: 'Converges: ends confirmed on the target (or on the previous version when the target fails its self-test)' },
  { id: 'no-revert-of-confirmed', title: 'A confirmed image is never reverted; a test image is never made permanent without a confirm' },
  { id: 'storage-untouched', title: 'The storage partition is byte-for-byte unchanged' },
  { id: 'honest-reports', title: 'What the device last reported to the server matches what it runs' },
  { id: 'bounded-effort', title: 'Bounded effort: reboots, downloads and bytes transferred stay within the stated limits' },
] as const;
export type InvariantId = (typeof INVARIANTS)[number]['id'];

export interface InvariantResult {
  id: InvariantId;
  /** Checked on every device of the scenario; false if any device violates it. */
  passed: boolean;
  /** 'checked', or why it did not apply (e.g. no storage partition on this board). */
  detail: string;
}

export interface Violation {
  invariant: InvariantId;
  device: string;
  /** The flash operation index of the power cut that led to it, when there was one. */
  opIndex: number | null;
  /** Simulated time when it was found. */
  at_ms: number | null;
  /** One sentence: what is wrong, from flash and server records. */
  message: string;
  /** The one command that replays this case exactly. */
  replay: string;
}

export type TimelineKind =
  | 'agent-state' // the agent's statechart entered a state (label = state name)
  | 'flash-phase' // download / stage / swap / confirm / revert ... (label = phase)
  | 'boot' // the bootloader booted an image (label = version and action)
  | 'power-cut'
  | 'reboot' // a reset: requested, watchdog
  | 'net-fault' // the chaos proxy dropped / delayed / corrupted ... a datagram, a blackhole, a rebind
  | 'report' // the device sent a state report
  | 'server' // a release created / activated / rolled out / rolled back, a server restart
  | 'fault'; // any other injected fault (flash error, wear-out, bad image ...)

export interface TimelineEvent {
  at_ms: number;
  kind: TimelineKind;
  label: string;
  /** For spans (a flash phase, a blackhole window, an agent state): where it ends; absent for points. */
  end_ms?: number;
  detail?: Record<string, string | number | boolean | null>;
}

export interface DeviceResult {
  id: string;
  group: string;
  board: string;
  strategy: string;
  initialVersion: string;
  /** What the bootloader would boot now (null when bricked). */
  finalVersion: string | null;
  confirmed: boolean;
  bricked: boolean;
  reboots: number;
  downloads: number;
  bytesDownloaded: number;
  powerCuts: number;
  netFaults: number;
  /** What the server recorded from this device, oldest first. */
  reports: { at_ms: number; s: number; r: number; v: string; t: string | null }[];
  timeline: TimelineEvent[];
  /** Timeline events left out because the recorder's cap was reached (absent when none). */
  timelineDropped?: number;
}

export interface ExpectationResult {
  /** e.g. "group fleet: final version 1.1.0 confirmed". */
  what: string;
  passed: boolean;
  /** What was seen instead, when it failed. */
  detail: string;
}

export interface ScenarioResult {
  name: string;
  /** The YAML file it came from (null when given as an object through the API). */
  file: string | null;
  description: string;
  seed: number;
  passed: boolean;
  /** One sentence saying why it failed (null when it passed). */
  failure: string | null;
  /** The command that runs this scenario again with the same seed. */
  replay: string;
  timeScale: number;
  simulated_ms: number;
  duration_wallMs: number;
  board: string;
  strategy: string;
  devices: DeviceResult[];
  /** Faults injected, by kind (power-cut, torn-write, loss, blackhole, rebind, server-restart, ...). */
  faultsInjected: Record<string, number>;
  expectations: ExpectationResult[];
  invariants: InvariantResult[];
  violations: Violation[];
}

export interface RunResult {
  schema: typeof RUN_RESULT_SCHEMA;
  passed: number;
  failed: number;
  duration_wallMs: number;
  /** Seed given on the command line (each scenario's own seed otherwise). */
  seed: number | null;
  scenarios: ScenarioResult[];
  /** The agent statechart's states, for the HTML report's drawing (agentStateNames). */
  agentStates: string[];
}
