/**
 * `runFleet`: N full devices against the embedded update server (started here, in the main
 * thread) or an external one, the devices split over worker threads (or run in this thread with
 * `workers: 0`). It builds (or takes) the images, registers the devices and a release rolled out
 * to `rolloutPercent`, runs until every device the rollout targets is updated (or the fleet
 * stalls, or the timeout), and returns counts, update milestones, failures and memory per device.
 */
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ScaledClock } from '../clock.js';
import { EnvironmentError, InputError, assert } from '../errors.js';
import { loadBoard } from '../flash/index.js';
import type { Strategy } from '../flash/types.js';
import { behaviourTlv, boardTlv, ed25519KeyPemFromSeed, parseImage, parseSigningKeyPem, publicKeyOf, publicKeyToPem, signImage } from '../image/index.js';
import type { PublicKey, SigningKey } from '../image/index.js';
import { Prng, mixSeed } from '../prng.js';
import { UpdateServer } from '../server/index.js';
import { inRollout } from '../server/rollout.js';
import { DeviceSlice } from './devices.js';
import { LagMeter } from './pace.js';
import { MAX_DEVICES, checkFileLimit, deviceSpec, milestones, readFileLimit, shardIndices, splitEven, updateOpsEstimate } from './plan.js';
import type { Shard } from './plan.js';
import { MAX_FAILING_LISTED, emptyProgress } from './types.js';
import type { DeviceOutcome, FailingNow, FleetDeviceSpec, FleetResult, FromWorker, SliceConfig, SliceProgress, ToWorker } from './types.js';

export interface FleetOptions {
  devices: number;
  board?: string;
  strategy?: Strategy;
  seed?: number;
  /** Share of the devices the release reaches (server-side buckets of identity + release id). Default 100. */
  rolloutPercent?: number;
  shard?: Shard;
  /** Worker threads running the devices; 0 runs them in this thread. Default: cores - 1 (at least 1). */
  workers?: number;
  /** Wall time per simulated time (default 0.04: a 300 s rollback timer is 12 wall seconds). */
  timeScale?: number;
  /** Payload size of the built images (default 64 KiB). */
  imageSize_bytes?: number;
  /** The release's image (default: a built 1.1.0 signed with the fleet key). */
  targetImage?: Uint8Array;
  /** What every device runs at the start (default: a built 1.0.0 signed with the fleet key). */
  initialImage?: Uint8Array;
  /** Further trusted keys (images given from files are signed with them). */
  trust?: PublicKey[];
  /** An external server (`coaps://HOST:PORT` or `coap://`); its devices from a PSK file, one per device, in order. */
  server?: { url: string; psk: { identity: string; key: string }[] } | null;
  /** Probability that a device has one power cut (seeded flash op during its update). Default 0. */
  powerCutRate?: number;
  blockSize_bytes?: number;
  window?: number;
  /** Give up after this much wall time (default 600 s). */
  timeout_ms?: number;
  /** Stop when nothing changed for this much wall time (default 15 s). */
  stall_ms?: number;
  idPrefix?: string;
  /** Content-addressed sharing of flash sectors (default true). */
  shareSectors?: boolean;
  /** Wall-ms floor of the agents' handshake and CoAP ACK timeouts (default 1000; see SliceConfig). */
  netTimeoutFloor_wallMs?: number;
  /**
   * Devices powered on per wall second, over all workers (default 200): all at once, their DTLS
   * handshakes outrun the server and the retransmissions make it worse.
   */
  startRate_perS?: number;
  /** Power-ons wait while the server's or the devices' event loop lags more than this (wall ms; default 25; 0: no pacing). */
  maxLag_wallMs?: number;
  /** The open-file limit to check against (default: /proc/self/limits). */
  fileLimit?: { soft: number | null; hard: number | null };
}

export interface FleetProgress {
  devices: number;
  expected: number;
  updated: number;
  bricked: number;
  /** Agent state (or device phase: off, booting, bricked, boot-loop) → devices. */
  states: Record<string, number>;
  /** Running version ("1.1.0+0"; "(none)" when bricked) → devices. */
  versions: Record<string, number>;
  /** The first MAX_FAILING_LISTED (200) devices failing now, of `failingTotal`. */
  failing: FailingNow[];
  failingTotal: number;
  /** Devices powered on so far (the others wait: start rate and pacing). */
  poweredOn: number;
  /** The version whose confirmation counts as updated. */
  targetVersion: string;
  /** Wall ms since the progress loop started. */
  elapsed_ms: number;
  /** Wall and simulated ms since the fleet started (the devices' clocks). */
  wall_ms: number;
  at_ms: number;
  /** The last call: the run is over (counts as they were just before the devices were powered off). */
  done: boolean;
}

export interface FleetCallbacks {
  onProgress?: (p: FleetProgress) => void;
  /** Called once the server listens (the dashboard or a test may look at it). */
  onServer?: (server: UpdateServer) => void;
}

/** The fleet's built-in signing key (deterministic, public: a simulator's demo key). */
export function fleetKey(seed: number): SigningKey {
  return parseSigningKeyPem(ed25519KeyPemFromSeed(new Prng(mixSeed(seed, 0xf1ee7)).bytes(32)));
}

export const RELEASE_ID = 'fleet';
const PROGRESS_MS = 250;
const START_TICK_WALL_MS = 20;
/** Power-ons wait while a thread lags more than this (pace.ts); measured as the knee on 2 cores. */
export const DEFAULT_MAX_LAG_WALL_MS = 25;

function buildImage(key: SigningKey, version: string, board: string, size_bytes: number, slotSize_bytes: number): Uint8Array {
  const payload = new Prng(mixSeed(size_bytes, version.charCodeAt(2))).bytes(size_bytes);
  return signImage(payload, { key, headerSize_bytes: 0x200, padHeader: true, slotSize_bytes, align: 4, version, customTlvs: [behaviourTlv({}), boardTlv(board)] });
}

function parseServerUrl(url: string): { kind: 'udp' | 'dtls'; host: string; port: number } {
  const m = /^(coaps?):\/\/(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost):(\d{1,5})\/?$/.exec(url);
  if (!m) throw new InputError('BAD_ARGUMENT', `--server: expected coaps://127.x.x.x:PORT or coap://127.x.x.x:PORT (loopback), got ${JSON.stringify(url)}`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new InputError('BAD_ARGUMENT', `--server: port ${port} is not 1..65535`);
  return { kind: m[1] === 'coaps' ? 'dtls' : 'udp', host: m[2] === 'localhost' ? '127.0.0.1' : m[2]!, port };
}

/** The compiled worker entry (under dist/ when this module runs from the TypeScript sources). */
function workerUrl(): URL {
  const here = import.meta.url;
  const url = here.endsWith('.ts') ? new URL('../../dist/src/fleet/worker.js', here) : new URL('./worker.js', here);
  if (!existsSync(fileURLToPath(url))) throw new EnvironmentError('NO_BUILD', `fleet: the worker ${fileURLToPath(url)} is missing; run \`npm run build\` (or use --workers 0)`);
  return url;
}

/** One share of the devices: in this thread or in a worker. */
interface Runner {
  progress: SliceProgress | null;
  /** Tell the devices how far the server thread lags. */
  pace(serverLag_wallMs: number): void;
  stop(): Promise<Stopped>;
}

/** `live`: progress just before power-off (the final snapshot); `progress`: after it. */
interface Stopped {
  outcomes: DeviceOutcome[];
  progress: SliceProgress;
  live: SliceProgress;
}

function localRunner(config: SliceConfig, devices: FleetDeviceSpec[], onUpdated: (i: number, t: number) => void): Runner {
  const slice = new DeviceSlice(config, devices, onUpdated);
  slice.start();
  const r: Runner = {
    get progress() {
      return slice.progress();
    },
    pace() {
      // same thread as the server: the slice's own lag meter already sees the server's load
    },
    async stop() {
      const live = slice.progress();
      const outcomes = slice.stop();
      return { outcomes, progress: slice.progress(), live };
    },
  };
  return r;
}

function workerRunner(config: SliceConfig, devices: FleetDeviceSpec[], onUpdated: (i: number, t: number) => void, onError: (e: Error) => void): Runner {
  const worker = new Worker(workerUrl());
  let done: ((v: Stopped) => void) | null = null;
  let failed: ((e: Error) => void) | null = null;
  const r: Runner = {
    progress: null,
    pace(serverLag_wallMs) {
      worker.postMessage({ type: 'pace', serverLag_wallMs } satisfies ToWorker);
    },
    stop() {
      return new Promise((resolve, reject) => {
        done = resolve;
        failed = reject;
        worker.postMessage({ type: 'stop' } satisfies ToWorker);
      });
    },
  };
  worker.on('message', (m: FromWorker) => {
    if (m.type === 'progress') r.progress = m.progress;
    else if (m.type === 'updated') onUpdated(m.index, m.at_wallMs);
    else if (m.type === 'done') {
      r.progress = m.progress;
      done?.({ outcomes: m.outcomes, progress: m.progress, live: m.live });
      // its devices are off: nothing left in the thread may keep the process alive
      worker.unref();
      setTimeout(() => void worker.terminate(), 500).unref();
    } else if (m.type === 'error') {
      const e = new Error(`fleet worker: ${m.message}`);
      if (failed) failed(e);
      else onError(e);
    }
  });
  worker.on('error', (e) => (failed ? failed(e) : onError(e)));
  worker.postMessage({ type: 'start', config, devices } satisfies ToWorker);
  return r;
}

function sumProgress(list: (SliceProgress | null)[]): SliceProgress {
  const out = emptyProgress();
  for (const p of list) {
    if (!p) continue;
    for (const [k, v] of Object.entries(p.states)) out.states[k] = (out.states[k] ?? 0) + v;
    for (const [k, v] of Object.entries(p.versions)) out.versions[k] = (out.versions[k] ?? 0) + v;
    out.failingTotal += p.failingTotal;
    out.updated += p.updated;
    out.bricked += p.bricked;
    out.changes += p.changes;
    out.sectorsStored += p.sectorsStored;
    out.sectorsShared += p.sectorsShared;
    out.poweredOn += p.poweredOn;
    out.pausedTicks += p.pausedTicks;
    out.failing.push(...p.failing.slice(0, Math.max(0, MAX_FAILING_LISTED - out.failing.length)));
  }
  return out;
}

export async function runFleet(options: FleetOptions, callbacks: FleetCallbacks = {}): Promise<FleetResult> {
  const n = options.devices;
  if (!(Number.isInteger(n) && n >= 1 && n <= MAX_DEVICES)) throw new InputError('BAD_ARGUMENT', `--devices: a whole number 1..${MAX_DEVICES}, got ${n}`);
  const seed = options.seed ?? 1;
  const shard = options.shard ?? { index: 1, count: 1 };
  const rollout = options.rolloutPercent ?? 100;
  if (!(rollout >= 0 && rollout <= 100)) throw new InputError('BAD_ARGUMENT', `--rollout: a percentage 0..100, got ${rollout}`);
  const scale = options.timeScale ?? 0.04;
  if (!(scale > 0 && scale <= 1000)) throw new InputError('BAD_ARGUMENT', `--time-scale: a number in (0, 1000], got ${scale}`);
  const powerCutRate = options.powerCutRate ?? 0;
  if (!(powerCutRate >= 0 && powerCutRate <= 1)) throw new InputError('BAD_ARGUMENT', `--power-cut-rate: a probability 0..1, got ${powerCutRate}`);
  const boardName = options.board ?? 'nrf52840';
  const board = loadBoard(boardName);
  const strategy = options.strategy ?? 'swap-move';
  const workers = options.workers ?? Math.max(1, cpus().length - 1);
  if (!(Number.isInteger(workers) && workers >= 0 && workers <= 64)) throw new InputError('BAD_ARGUMENT', `--workers: a whole number 0..64, got ${workers}`);
  const external = options.server ?? null;
  if (external && external.psk.length < n) throw new InputError('BAD_PSK_FILE', `--psk-file: ${n} devices need ${n} identities, the file has ${external.psk.length}`);

  const indices = shardIndices(n, shard);
  // before anything opens a socket: one UDP socket per device must fit the open-file limit
  checkFileLimit(indices.length, options.fileLimit ?? readFileLimit());

  const key = fleetKey(seed);
  const imageSize = options.imageSize_bytes ?? 64 * 1024;
  if (!(Number.isInteger(imageSize) && imageSize >= 1024 && imageSize <= board.partitions.slot0.size)) throw new InputError('BAD_ARGUMENT', `--image-size: 1024..${board.partitions.slot0.size} bytes, got ${imageSize}`);
  const initialImage = options.initialImage ?? buildImage(key, '1.0.0', boardName, imageSize, board.partitions.slot0.size);
  const targetImage = options.targetImage ?? buildImage(key, '1.1.0', boardName, imageSize, board.partitions.slot0.size);
  const targetVersion = parseImage(targetImage).version;
  const trustPems = [publicKeyToPem(publicKeyOf(key)), ...(options.trust ?? []).map((k) => publicKeyToPem(k))];

  const specs = indices.map((index) => deviceSpec({ seed, index, prefix: options.idPrefix ?? 'fleet-', powerCutRate, cutWindow_ops: updateOpsEstimate(imageSize), ...(external ? { psk: external.psk[index]! } : {}) }));
  const clock = new ScaledClock(scale);
  let server: UpdateServer | null = null;
  let serverAddr: SliceConfig['server'];
  const releaseId = RELEASE_ID;
  if (external) {
    serverAddr = parseServerUrl(external.url);
  } else {
    server = await UpdateServer.start({
      port: null,
      dtlsPort: 0,
      adminPort: null,
      clock,
      offerNewest: false,
      devices: specs.map((s) => ({ identity: s.identity, key: s.psk, board: boardName, tags: [] })),
      maxObservers: Math.max(20_000, specs.length * 2 + 64),
      dtls: { maxSessions: specs.length + 256, maxHandshakes: Math.max(1000, specs.length + 64) },
    });
    const art = await server.model.addArtifact({ package: 'main', bytes: targetImage });
    await server.model.createRelease({ id: releaseId, artifacts: [art.id], rolloutPercent: rollout });
    serverAddr = { kind: 'dtls', host: '127.0.0.1', port: server.addresses().dtls!.port };
    callbacks.onServer?.(server);
  }
  // with an external server the rollout is its business: every device counts as targeted
  const targeted = new Set(specs.filter((s) => external !== null || inRollout(s.identity, releaseId, rollout)).map((s) => s.index));

  const rssBefore = process.memoryUsage().rss;
  let peakRss = rssBefore;
  const start_epochMs = performance.timeOrigin + performance.now();
  const config: SliceConfig = {
    server: serverAddr,
    board: boardName,
    strategy,
    initialImage,
    targetVersion,
    trustPems,
    timeScale: scale,
    blockSize_bytes: options.blockSize_bytes ?? 1024,
    window: options.window ?? 4,
    powerOff_ms: 2000,
    netTimeoutFloor_wallMs: options.netTimeoutFloor_wallMs ?? 1000,
    startBatch: Math.max(1, Math.round(((options.startRate_perS ?? 200) * START_TICK_WALL_MS) / 1000 / Math.max(1, workers))),
    startTick_wallMs: START_TICK_WALL_MS,
    maxLag_wallMs: options.maxLag_wallMs ?? DEFAULT_MAX_LAG_WALL_MS,
    shareSectors: options.shareSectors ?? true,
    fleetStart_epochMs: start_epochMs,
  };
  const updateTimes = new Map<number, number>();
  let workerError: Error | null = null;
  const onUpdated = (index: number, t: number): void => {
    if (targeted.has(index) && !updateTimes.has(index)) updateTimes.set(index, t);
  };
  const parts = workers === 0 ? [specs] : splitEven(specs, Math.min(workers, specs.length));
  const runners = parts.map((part) => (workers === 0 ? localRunner(config, part, onUpdated) : workerRunner(config, part, onUpdated, (e) => (workerError = e))));

  // the server thread's lag, passed to the workers for pacing their power-ons
  const serverLag = new LagMeter();
  const paceTimer = setInterval(() => {
    for (const r of runners) r.pace(serverLag.lag_ms);
  }, 50);
  paceTimer.unref();

  const timeout_ms = options.timeout_ms ?? 600_000;
  const stall_ms = options.stall_ms ?? 15_000;
  const wallStart = performance.now();
  const progressOf = (p: SliceProgress, now: number, done: boolean): FleetProgress => {
    const wall_ms = Math.max(0, performance.timeOrigin + now - start_epochMs);
    return {
      devices: specs.length,
      expected: targeted.size,
      updated: updateTimes.size,
      bricked: p.bricked,
      states: p.states,
      versions: p.versions,
      failing: p.failing,
      failingTotal: p.failingTotal,
      poweredOn: p.poweredOn,
      targetVersion,
      elapsed_ms: now - wallStart,
      wall_ms,
      at_ms: wall_ms / scale,
      done,
    };
  };
  let lastChanges = -1;
  let lastChangeAt = wallStart;
  // Bounded: every iteration waits PROGRESS_MS and the loop ends at the timeout at the latest.
  for (let i = 0; i < Math.ceil(timeout_ms / PROGRESS_MS) + 1; i++) {
    await new Promise((r) => setTimeout(r, PROGRESS_MS));
    if (workerError) break;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const p = sumProgress(runners.map((r) => r.progress));
    const now = performance.now();
    if (p.changes !== lastChanges) {
      lastChanges = p.changes;
      lastChangeAt = now;
    }
    // a worker that has not reported yet would show as devices in no state
    if (runners.every((r) => r.progress !== null)) callbacks.onProgress?.(progressOf(p, now, false));
    if (updateTimes.size >= targeted.size) break;
    if (now - lastChangeAt > stall_ms) break;
    if (now - wallStart > timeout_ms) break;
  }
  const durationMs = performance.now() - wallStart;
  clearInterval(paceTimer);
  serverLag.stop();
  const stopped = await Promise.all(runners.map((r) => r.stop()));
  if (workerError) throw workerError;
  // the final progress: as the devices were just before being powered off
  callbacks.onProgress?.(progressOf(sumProgress(stopped.map((s) => s.live)), performance.now(), true));
  const bytesServed = server ? server.metrics().artifactBytesServed : null;
  if (server) await server.close();

  const outcomes = stopped.flatMap((s) => s.outcomes);
  const final = sumProgress(stopped.map((s) => s.progress));
  assert(outcomes.length === specs.length, `fleet: ${outcomes.length} outcomes for ${specs.length} devices`);
  const failuresByReason: Record<string, number> = {};
  const failingDevices: FleetResult['failingDevices'] = [];
  for (const o of outcomes) {
    for (const f of o.failures) {
      const reason = f.split(':')[0]!;
      failuresByReason[reason] = (failuresByReason[reason] ?? 0) + 1;
    }
    if (targeted.has(o.index) && o.updatedAt_wallMs === null) {
      failuresByReason['not-updated'] = (failuresByReason['not-updated'] ?? 0) + 1;
      if (failingDevices.length < 1000) failingDevices.push({ identity: o.identity, reasons: [...new Set(o.failures), `ended ${o.lastState} on ${o.finalVersion ?? 'nothing'}`] });
    }
  }
  const times = [...updateTimes.values()].sort((a, b) => a - b);
  const bricked = outcomes.filter((o) => o.bricked).length;
  return {
    format: 'ota-sim-fleet/1',
    seed,
    fleetDevices: n,
    shard,
    devices: specs.length,
    expected: targeted.size,
    updated: updateTimes.size,
    bricked,
    targetReached: updateTimes.size >= targeted.size,
    rolloutPercent: rollout,
    targetVersion,
    board: boardName,
    durationMs,
    timeScale: scale,
    milestones: milestones(times, targeted.size, scale),
    updateTimes_wallMs: times,
    failuresByReason,
    failingDevices,
    retries: outcomes.reduce((s, o) => s + o.retries, 0),
    reboots: outcomes.reduce((s, o) => s + o.reboots, 0),
    powerCuts: outcomes.reduce((s, o) => s + o.powerCuts, 0),
    bytesServed,
    rssBytesPerDevice: specs.length > 0 ? Math.max(0, peakRss - rssBefore) / specs.length : 0,
    rssNote: RSS_NOTE,
    peakRssBytes: peakRss,
    workers,
    sectorsStored: final.sectorsStored,
    sectorsShared: final.sectorsShared,
    startPausedTicks: final.pausedTicks,
    maxLag_wallMs: config.maxLag_wallMs,
  };
}

export const RSS_NOTE =
  'process RSS growth from just before the devices started to its peak during the run, divided by the devices: their flash sectors, agents, CoAP/DTLS clients and socket buffers, the worker threads (each its own V8 heap), and — with the embedded server — its per-device DTLS session and observation';
