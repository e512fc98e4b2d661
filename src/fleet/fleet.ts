/**
 * `runFleet`: N full devices against the embedded update server (started here, in the main
 * thread) or an external one, the devices split over worker threads (or run in this thread with
 * `workers: 0`). It builds (or takes) the images, registers the devices and a release rolled out
 * to `rolloutPercent`, runs until every device the rollout targets is updated (or the fleet
 * stalls, or the timeout), and returns counts, update milestones, failures and memory per device.
 * Device mixes (boards, initial versions: seeded weighted picks per device), network chaos (a
 * seeded share of the devices behind their own chaos proxy) and scenario files (scenario.ts) only
 * change what each device starts from and how it reaches the server, never how it runs.
 */
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ScaledClock } from '../clock.js';
import { EnvironmentError, InputError, assert } from '../errors.js';
import { loadBoard } from '../flash/index.js';
import type { BoardProfile, Strategy } from '../flash/types.js';
import { behaviourTlv, boardTlv, compareVersions, ed25519KeyPemFromSeed, parseImage, parseSigningKeyPem, parseVersion, publicKeyOf, publicKeyToPem, signImage } from '../image/index.js';
import type { PublicKey, SigningKey } from '../image/index.js';
import { validateSchedule } from '../net/proxy/index.js';
import type { ChaosSchedule } from '../net/proxy/index.js';
import { Prng, mixSeed } from '../prng.js';
import type { LoadedScenario } from '../scenario/index.js';
import { UpdateServer } from '../server/index.js';
import { inRollout } from '../server/rollout.js';
import { DeviceSlice } from './devices.js';
import { LagMeter } from './pace.js';
import { MAX_DEVICES, checkFileLimit, chaosSocketsPerDevice, deviceSpec, milestones, pickWeighted, readFileLimit, shardIndices, splitEven, updateOpsEstimate } from './plan.js';
import type { DeviceMix, Shard, Weighted } from './plan.js';
import { groupOf, mixOfGroup, scenarioFleet } from './scenario.js';
import type { ScenarioFleet } from './scenario.js';
import { MAX_FAILING_LISTED, addChaosTotals, emptyChaosTotals, emptyProgress } from './types.js';
import type { ChaosTotals, DeviceOutcome, FailingNow, FleetDeviceSpec, FleetResult, FromWorker, MixCount, SliceConfig, SliceProgress, SliceTemplate, ToWorker } from './types.js';

export interface FleetOptions {
  /** Devices in the fleet; with `scenario` optional (default: the sum of its group counts). */
  devices?: number;
  board?: string;
  /** Boards with weights (device i's board: a seeded weighted pick); overrides `board`. */
  boards?: Weighted[];
  /** Built initial versions ("1.0.0", "0.9.0") with weights, a seeded weighted pick per device; not with `initialImage`. */
  initialVersions?: Weighted[];
  /** Probability that a device talks to the server through its own chaos proxy (default 1 with `chaos`, else 0). */
  chaosRate?: number;
  /** The chaos proxies' fault schedule (src/net/proxy). */
  chaos?: ChaosSchedule;
  /** The schedule as the user wrote it (kept in the result). */
  chaosSpec?: string;
  /** A loaded scenario file: groups, images, timeline and network faults (see scenario.ts). */
  scenario?: LoadedScenario;
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
  /** Simulated ms between a device's manifest polls (default 300 000: DEFAULT_FLEET_POLL_INTERVAL_MS). */
  pollInterval_ms?: number;
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
/**
 * A fleet device's manifest poll, the fallback behind Observe (the agent's own default is 60 s):
 * every idle device polls for as long as the fleet runs, so at 60 s a 10,000-device fleet at time
 * scale 0.04 sends ~4,000 polls per wall second and the idle devices starve the updating ones.
 * Five minutes keeps that load small and stays under the server's DTLS idle timeout (600 s), so
 * a poll keeps the session (at 600 s every idle device lost its session and handshook again, in
 * waves); `pollInterval_ms` (`--poll-interval-s`) changes it.
 */
export const DEFAULT_FLEET_POLL_INTERVAL_MS = 300_000;
/** Power-ons wait while a thread lags more than this (pace.ts); measured as the knee on 2 cores. */
export const DEFAULT_MAX_LAG_WALL_MS = 25;

function buildImage(key: SigningKey, version: string, boardName: string, board: BoardProfile, size_bytes: number): Uint8Array {
  const payload = new Prng(mixSeed(size_bytes, version.charCodeAt(2))).bytes(size_bytes);
  // a board with a hardware security counter (nrf9160dk) boots only images that carry SEC_CNT: 0 never blocks
  const counter = board.nvCounter !== undefined && board.nvCounter !== null ? { securityCounter: 0 } : {};
  return signImage(payload, { key, headerSize_bytes: 0x200, padHeader: true, slotSize_bytes: board.partitions.slot0.size, align: 4, version, customTlvs: [behaviourTlv({}), boardTlv(boardName)], ...counter });
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
  chaos: ChaosTotals;
}

async function localRunner(config: SliceConfig, devices: FleetDeviceSpec[], onUpdated: (i: number, t: number) => void): Promise<Runner> {
  const slice = await DeviceSlice.create(config, devices, onUpdated);
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
      const chaos = slice.chaosTotals();
      const outcomes = slice.stop();
      return { outcomes, progress: slice.progress(), live, chaos };
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
      done?.({ outcomes: m.outcomes, progress: m.progress, live: m.live, chaos: m.chaos });
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
  const scen: ScenarioFleet | null = options.scenario ? scenarioFleet(options.scenario, options.devices) : null;
  const n = scen ? scen.groups.reduce((s, g) => s + g.count, 0) : (options.devices ?? NaN);
  if (!(Number.isInteger(n) && n >= 1 && n <= MAX_DEVICES)) throw new InputError('BAD_ARGUMENT', `--devices: a whole number 1..${MAX_DEVICES}, got ${n}`);
  const seed = options.seed ?? scen?.seed ?? 1;
  const shard = options.shard ?? { index: 1, count: 1 };
  const rollout = options.rolloutPercent ?? 100;
  if (!(rollout >= 0 && rollout <= 100)) throw new InputError('BAD_ARGUMENT', `--rollout: a percentage 0..100, got ${rollout}`);
  const scale = options.timeScale ?? 0.04;
  if (!(scale > 0 && scale <= 1000)) throw new InputError('BAD_ARGUMENT', `--time-scale: a number in (0, 1000], got ${scale}`);
  const powerCutRate = options.powerCutRate ?? 0;
  if (!(powerCutRate >= 0 && powerCutRate <= 1)) throw new InputError('BAD_ARGUMENT', `--power-cut-rate: a probability 0..1, got ${powerCutRate}`);
  const chaosRate = options.chaosRate ?? (options.chaos ? 1 : 0);
  if (!(chaosRate >= 0 && chaosRate <= 1)) throw new InputError('BAD_ARGUMENT', `--chaos-rate: a probability 0..1, got ${chaosRate}`);
  if (chaosRate > 0 && !options.chaos) throw new InputError('BAD_ARGUMENT', '--chaos-rate: needs --chaos SPEC (the faults the chosen devices meet, e.g. loss=0.1,delay-ms=20)');
  if (options.chaos) validateSchedule(options.chaos, '--chaos');
  if (scen && options.chaos) throw new InputError('BAD_ARGUMENT', '--chaos: with --scenario the network faults come from the scenario\'s faults (kind: network, per group)');
  const boardsW: Weighted[] = scen ? scen.boards.map((name) => ({ name, weight: 1 })) : (options.boards ?? [{ name: options.board ?? 'nrf52840', weight: 1 }]);
  if (boardsW.length === 0 || new Set(boardsW.map((b) => b.name)).size !== boardsW.length) throw new InputError('BAD_ARGUMENT', `--board: each board once, got ${boardsW.map((b) => b.name).join(', ') || 'none'}`);
  const boards = new Map(boardsW.map((b) => [b.name, loadBoard(b.name)]));
  const boardName = boardsW[0]!.name;
  const strategy = options.strategy ?? scen?.strategy ?? 'swap-move';
  const workers = options.workers ?? Math.max(1, cpus().length - 1);
  if (!(Number.isInteger(workers) && workers >= 0 && workers <= 64)) throw new InputError('BAD_ARGUMENT', `--workers: a whole number 0..64, got ${workers}`);
  const external = options.server ?? null;
  if (external && external.psk.length < n) throw new InputError('BAD_PSK_FILE', `--psk-file: ${n} devices need ${n} identities, the file has ${external.psk.length}`);
  if (scen && external) throw new InputError('BAD_ARGUMENT', '--server: a --scenario fleet runs its timeline on the embedded server; leave --server out');

  const indices = shardIndices(n, shard);
  const key = fleetKey(seed);
  const imageSize = options.imageSize_bytes ?? 64 * 1024;
  const slotSize = Math.min(...[...boards.values()].map((b) => b.partitions.slot0.size));
  if (!(Number.isInteger(imageSize) && imageSize >= 1024 && imageSize <= slotSize)) throw new InputError('BAD_ARGUMENT', `--image-size: 1024..${slotSize} bytes, got ${imageSize}`);

  // ---- what each device starts from, and the release's image per board ----
  let templates: SliceTemplate[];
  let mixOf: (index: number) => DeviceMix;
  const targetImages = new Map<string, Uint8Array>();
  let targetVersion: string;
  if (scen) {
    templates = scen.templates;
    targetVersion = scen.targetVersion;
    mixOf = (index) => mixOfGroup(groupOf(scen.groups, index));
  } else {
    if (boardsW.length > 1 && options.targetImage) throw new InputError('BAD_ARGUMENT', '--image: one image file cannot be rolled out to several boards (--board given more than once); leave --image out to roll out a built 1.1.0 per board');
    if (boardsW.length > 1 && options.initialImage) throw new InputError('BAD_ARGUMENT', '--initial-image: one image file cannot start several boards (--board given more than once); use --initial-version');
    if (options.initialImage && options.initialVersions) throw new InputError('BAD_ARGUMENT', '--initial-image and --initial-version: give one of them');
    for (const [name, b] of boards) targetImages.set(name, options.targetImage ?? buildImage(key, '1.1.0', name, b, imageSize));
    targetVersion = parseImage(targetImages.get(boardName)!).version;
    const FILE = 'file';
    const initials: Weighted[] = options.initialImage ? [{ name: FILE, weight: 1 }] : (options.initialVersions ?? [{ name: '1.0.0', weight: 1 }]);
    if (new Set(initials.map((v) => v.name)).size !== initials.length) throw new InputError('BAD_ARGUMENT', '--initial-version: each version once');
    templates = [];
    for (const [name, b] of boards) {
      for (const v of initials) {
        let image: Uint8Array;
        if (v.name === FILE && options.initialImage) image = options.initialImage;
        else {
          if (!/^\d{1,3}\.\d{1,3}\.\d{1,5}$/.test(v.name)) throw new InputError('BAD_ARGUMENT', `--initial-version: expected a version like 1.0.0, got ${JSON.stringify(v.name)}`);
          if (compareVersions(parseVersion(v.name), parseVersion(targetVersion)) >= 0) throw new InputError('BAD_ARGUMENT', `--initial-version ${v.name}: must be older than the release's ${targetVersion}`);
          image = buildImage(key, v.name, name, b, imageSize);
        }
        templates.push({ key: `${name}/${v.name}`, board: name, image });
      }
    }
    mixOf = (index) => {
      const board = pickWeighted(boardsW, seed, index, 'board');
      return { board, template: `${board}/${pickWeighted(initials, seed, index, 'initial')}` };
    };
  }
  const initialVersionOf = new Map(templates.map((t) => [t.key, parseImage(t.image).version]));
  const trustPems = [publicKeyToPem(publicKeyOf(key)), ...[...(options.trust ?? []), ...(scen?.trusted ?? [])].map((k) => publicKeyToPem(k))];
  const schedules = scen ? scen.schedules : options.chaos ? [options.chaos] : [];

  const specs = indices.map((index) => {
    const mix = mixOf(index);
    const chaos = scen ? groupOf(scen.groups, index).chaos : null;
    return deviceSpec({ seed, index, prefix: options.idPrefix ?? 'fleet-', powerCutRate, cutWindow_ops: updateOpsEstimate(imageSize), mix, chaosRate, chaos, ...(external ? { psk: external.psk[index]! } : {}) });
  });
  // before anything opens a socket: one UDP socket per device (and its chaos proxy's) must fit the open-file limit
  const chaosSockets = specs.reduce((sum, sp) => {
    if (sp.chaos === undefined || sp.chaos === null) return sum;
    const sch = schedules[sp.chaos]!;
    return sum + chaosSocketsPerDevice(Boolean(sch.rebindEvery_ms) || (sch.rebindAt_ms ?? []).length > 0);
  }, 0);
  checkFileLimit(indices.length, options.fileLimit ?? readFileLimit(), chaosSockets);

  const clock = new ScaledClock(scale);
  let server: UpdateServer | null = null;
  let serverAddr: SliceConfig['server'];
  const releaseId = RELEASE_ID;
  const timelineTimers: { cancel(): void }[] = [];
  let timelineError: Error | null = null;
  if (external) {
    serverAddr = parseServerUrl(external.url);
  } else {
    server = await UpdateServer.start({
      port: null,
      dtlsPort: 0,
      adminPort: null,
      clock,
      offerNewest: false,
      devices: specs.map((s) => ({ identity: s.identity, key: s.psk, board: s.board ?? boardName, tags: s.tags ?? [] })),
      maxObservers: Math.max(20_000, specs.length * 2 + 64),
      dtls: { maxSessions: specs.length + 256, maxHandshakes: Math.max(1000, specs.length + 64) },
    });
    if (scen) {
      const srv = server;
      const identitiesOf = (groups: readonly string[]): string[] => specs.filter((sp) => sp.group !== undefined && groups.includes(sp.group)).map((sp) => sp.identity);
      for (const st of scen.steps) {
        if (st.at_ms > 0) continue;
        try {
          await scen.apply(srv, st.step, identitiesOf);
        } catch (e) {
          await srv.close();
          throw new InputError('BAD_SCENARIO', `${options.scenario?.file ?? 'scenario'}: ${st.where}: the server refused it: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      for (const st of scen.steps) {
        if (st.at_ms <= 0) continue;
        timelineTimers.push(
          clock.setTimeout(() => {
            scen.apply(srv, st.step, identitiesOf).catch((e: unknown) => {
              timelineError = new Error(`${st.where}: the server refused it: ${e instanceof Error ? e.message : String(e)}`);
            });
          }, st.at_ms),
        );
      }
    } else {
      const ids: string[] = [];
      for (const bytes of targetImages.values()) ids.push((await server.model.addArtifact({ package: 'main', bytes })).id);
      await server.model.createRelease({ id: releaseId, artifacts: ids, rolloutPercent: rollout });
    }
    serverAddr = { kind: 'dtls', host: '127.0.0.1', port: server.addresses().dtls!.port };
    callbacks.onServer?.(server);
  }
  // with an external server the rollout is its business: every device counts as targeted
  const targeted = new Set(specs.filter((s) => external !== null || (scen ? scen.targets(s) : inRollout(s.identity, releaseId, rollout))).map((s) => s.index));

  const rssBefore = process.memoryUsage().rss;
  let peakRss = rssBefore;
  const start_epochMs = performance.timeOrigin + performance.now();
  const config: SliceConfig = {
    server: serverAddr,
    board: templates[0]!.board,
    strategy,
    initialImage: templates[0]!.image,
    templates,
    chaos: schedules.length > 0 ? { schedules } : null,
    targetVersion,
    trustPems,
    timeScale: scale,
    blockSize_bytes: options.blockSize_bytes ?? 1024,
    window: options.window ?? 4,
    powerOff_ms: 2000,
    netTimeoutFloor_wallMs: options.netTimeoutFloor_wallMs ?? 1000,
    pollInterval_ms: options.pollInterval_ms ?? DEFAULT_FLEET_POLL_INTERVAL_MS,
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
  let runners: Runner[];
  try {
    runners = await Promise.all(parts.map((part) => (workers === 0 ? localRunner(config, part, onUpdated) : workerRunner(config, part, onUpdated, (e) => (workerError = e)))));
  } catch (e) {
    for (const t of timelineTimers) t.cancel();
    if (server) await server.close();
    throw e;
  }

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
    if (workerError || timelineError) break;
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
  for (const t of timelineTimers) t.cancel();
  const stopped = await Promise.all(runners.map((r) => r.stop()));
  if (workerError) throw workerError;
  // the final progress: as the devices were just before being powered off
  callbacks.onProgress?.(progressOf(sumProgress(stopped.map((s) => s.live)), performance.now(), true));
  const bytesServed = server ? server.metrics().artifactBytesServed : null;
  if (server) await server.close();
  if (timelineError) throw timelineError;

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
  // per board, initial version and (scenario) group: devices, targeted, updated
  const byBoard: Record<string, MixCount> = {};
  const byInitialVersion: Record<string, MixCount> = {};
  const byGroup: Record<string, MixCount> = {};
  const count = (into: Record<string, MixCount>, k: string, s: FleetDeviceSpec): void => {
    const c = (into[k] ??= { devices: 0, targeted: 0, updated: 0 });
    c.devices++;
    if (targeted.has(s.index)) c.targeted++;
    if (updateTimes.has(s.index)) c.updated++;
  };
  for (const sp of specs) {
    count(byBoard, sp.board ?? boardName, sp);
    count(byInitialVersion, initialVersionOf.get(sp.template ?? '') ?? '?', sp);
    if (sp.group !== undefined) count(byGroup, sp.group, sp);
  }
  const chaosTotals = emptyChaosTotals();
  for (const st of stopped) addChaosTotals(chaosTotals, st.chaos);
  assert(chaosTotals.devices === specs.filter((sp) => sp.chaos !== undefined && sp.chaos !== null).length, 'fleet: one chaos proxy per chaos device');
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
    rolloutPercent: scen ? scen.targetPercent : rollout,
    targetVersion,
    board: boardsW.map((b) => b.name).join('+'),
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
    pollInterval_ms: config.pollInterval_ms,
    byBoard,
    byInitialVersion,
    ...(scen ? { byGroup, scenario: scen.name, release: scen.targetRelease } : {}),
    ...(schedules.length > 0
      ? { chaosRate: scen ? 0 : chaosRate, chaosSpec: options.chaosSpec ?? JSON.stringify(schedules.length === 1 ? schedules[0] : schedules), chaosDevices: chaosTotals.devices, chaosFaults: chaosTotals.faults, chaosDatagrams: chaosTotals.datagrams }
      : {}),
  };
}

export const RSS_NOTE =
  'process RSS growth from just before the devices started to its peak during the run, divided by the devices: their flash sectors, agents, CoAP/DTLS clients and socket buffers, the worker threads (each its own V8 heap), and — with the embedded server — its per-device DTLS session and observation';
