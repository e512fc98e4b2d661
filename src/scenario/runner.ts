/**
 * Runs one scenario end to end: the embedded update server (or an external one), one simulated
 * device per group member built like test/agent/helpers.ts (flash + factory image + Device +
 * agent firmware), a chaos proxy per device when network faults are asked, the release timeline
 * and every fault on ONE ScaledClock shared by server, devices and proxies; then waits until the
 * fleet has settled (or the wall-clock limit), powers everything off, checks the expectations and
 * the oracle per device, and returns a ScenarioResult.
 *
 * Determinism: fault decisions are keyed by (device, flash op index / download block / agent
 * state occurrence / datagram index), never by wall time; `faultLog` lists them in that form.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentFirmware } from '../agent/index.js';
import type { AgentConfig, AgentEvent } from '../agent/index.js';
import { boot } from '../boot/boot.js';
import { bootIsImgConfirmed } from '../boot/public.js';
import { inspectSwap } from '../boot/inspect.js';
import { programSlot } from '../boot/program.js';
import { ScaledClock } from '../clock.js';
import type { TimerHandle } from '../clock.js';
import { Device } from '../device/index.js';
import { Flash } from '../flash/index.js';
import type { BoardProfile, PartitionName } from '../flash/types.js';
import { createTrustStore, formatVersion, sameVersionText } from '../image/index.js';
import { ChaosProxy } from '../net/proxy/index.js';
import type { ChaosSchedule, ProxyFault } from '../net/proxy/index.js';
import { mixSeed } from '../prng.js';
import { UpdateServer } from '../server/index.js';
import type { ArtifactInfo, DeviceInfo, ReportRecord } from '../server/index.js';
import { loadScenario } from './load.js';
import type { BuiltImage, LoadedScenario } from './load.js';
import { checkOracle, mergeInvariants } from './oracle.js';
import type { OracleExpectation } from './oracle.js';
import { DeviceRecorder } from './recorder.js';
import type { DeviceResult, ExpectationResult, InvariantResult, ScenarioResult, Violation } from './result.js';
import { addNetworkFault } from './chaos-schedule.js';
import type { FaultSpec, GroupSpec } from './schema.js';

export interface RunScenarioOptions {
  /** Overrides the scenario's seed. */
  seed?: number;
  /** Overrides the scenario's timeScale (simulated ms -> wall ms factor). */
  timeScale?: number;
  onProgress?: (text: string) => void;
}

/** One fault decision, keyed so two runs with the same seed can be compared (no times). */
export interface FaultDecision {
  device: string;
  kind: string;
  /** e.g. "op:1234", "block:19", "state:downloading#1", "datagram:up:17", "at:60000". */
  key: string;
}

/** A ScenarioResult plus the fault decisions, for determinism checks. */
export type ScenarioRun = ScenarioResult & { faultLog: FaultDecision[] };

const DEFAULT_TIME_SCALE = 0.01;
const DEFAULT_WALL_LIMIT_S = 60;
const DEFAULT_SETTLE_MS = 40_000;
const DEFAULT_OFF_MS = 1000;
/** The agent's default manifest poll interval (AgentConfig.pollInterval_ms). */
const DEFAULT_POLL_MS = 60_000;
const DEFAULT_MAX_DOWNLOADS = 10;
const POLL_WALL_MS = 20;
/** Upper bound on fault decisions kept for the determinism log. */
const MAX_FAULT_LOG = 20_000;

interface SimDevice {
  id: string;
  index: number;
  group: GroupSpec;
  board: BoardProfile;
  flash: Flash;
  device: Device;
  recorder: DeviceRecorder;
  proxy: ChaosProxy | null;
  initial: BuiltImage;
  /** flash.opIndex once the factory image was programmed: op indices in faults count from here. */
  baseOp: number;
  lastState: string | null;
  lastChange_ms: number;
  stateCounts: Map<string, number>;
  downloads: number;
  /** The version of the download under way (from the last download-start). */
  downloading: string | null;
  blocks: number;
  blockSize_bytes: number;
  /** A power-on is scheduled (the device is off on purpose). */
  offUntilPowerOn: boolean;
  /** Op-index cuts not yet fired, ascending (absolute op indices). */
  opCuts: { atOp: number; torn: boolean; label: string; off_ms: number }[];
  /** The cut armed right now and why (null: none). */
  armed: { atOp: number; torn: boolean; kind: string; label: string; key: string; off_ms: number } | null;
  pendingFailures: { atOp: number; label: string }[];
  /** Arms a bootloader-phase cut for the boot about to happen, when one is due. */
  planBootCut: () => void;
}

// ---- helpers ---------------------------------------------------------------------------------

/** "1.1" and "1.1.0" become "1.1.0+0" (the form the device and the bootloader print). */
export function fullVersion(v: string): string {
  const [core = '', build = '0'] = v.split('+');
  const parts = core.split('.');
  while (parts.length < 3) parts.push('0');
  const out = `${parts.map((p) => String(Number(p))).join('.')}+${Number(build)}`;
  return /NaN/.test(out) ? v : out;
}

/** "1.1.0" matches "1.1.0+0"; "1.1.0+3" needs the build number too. */
export function sameVersion(expected: string, actual: string | null): boolean {
  return actual !== null && sameVersionText(expected, actual);
}

function appliesTo(list: readonly string[] | undefined, d: { id: string; group: GroupSpec }): boolean {
  return list === undefined || list.includes(d.id) || list.includes(d.group.name);
}

function delay(wall_ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, wall_ms));
}

/** What the bootloader would boot now, from a clone of the flash (the device's flash is left alone). */
function finalFacts(d: SimDevice, strategy: LoadedScenario['spec']['strategy'], loaded: LoadedScenario): { version: string | null; confirmed: boolean } {
  const copy = d.flash.clone({ journal: false });
  copy.powerOn();
  copy.disarmPowerCut();
  try {
    const r = boot(copy, { strategy, trustedKeys: loaded.trusted });
    if (r.kind !== 'booted') return { version: null, confirmed: false };
    return { version: formatVersion(r.header.version), confirmed: bootIsImgConfirmed(copy, strategy) };
  } catch {
    return { version: null, confirmed: false };
  }
}

function fullOrNull(v: string | undefined): string | null {
  return v === undefined ? null : fullVersion(v);
}

/**
 * The op index at which the next boot first writes or erases slot0's sector `sector` (0-based,
 * in slot0's own sector list, so mixed sector sizes count as they are), from a dry run of the
 * bootloader on a copy of the flash; null when that boot does not touch it.
 */
function firstOpOnSlot0Sector(flash: Flash, strategy: LoadedScenario['spec']['strategy'], loaded: LoadedScenario, sector: number): number | null {
  const area = flash.area('slot0');
  const sec = area.sectors[sector];
  if (!sec) return null;
  const chip = flash.board.flash.findIndex((c) => c.id === area.deviceId);
  const lo = area.offset + sec.offset;
  const hi = lo + sec.size;
  const copy = flash.clone({ journal: true });
  copy.disarmPowerCut();
  copy.powerOn();
  const startOp = copy.opIndex;
  try {
    boot(copy, { strategy, trustedKeys: loaded.trusted });
  } catch {
    // a panic still leaves the ops it did in the journal
  }
  const cursor = copy.cursor();
  for (let k = 0; k < cursor.length; k++) {
    const e = cursor.peek();
    if (e === null) break;
    if (e.chip === chip && e.addr < hi && e.addr + e.length > lo) return startOp + k;
    cursor.advance(1);
  }
  return null;
}

export function replayCommand(file: string | null, seed: number, timeScale: number | undefined): string {
  return `npx ota-sim run ${file ?? '<scenario.yaml>'} --seed ${seed}${timeScale === undefined ? '' : ` --time-scale ${timeScale}`}`;
}

// ---- the runner ------------------------------------------------------------------------------

export async function runScenario(source: LoadedScenario | string | object, opts: RunScenarioOptions = {}): Promise<ScenarioRun> {
  const loaded: LoadedScenario = typeof source === 'string' ? loadScenario(source) : 'spec' in source && 'images' in source && source.images instanceof Map ? (source as LoadedScenario) : loadScenario(source);
  const spec = loaded.spec;
  const seed = opts.seed ?? spec.seed ?? 1;
  const timeScale = opts.timeScale ?? spec.timeScale ?? DEFAULT_TIME_SCALE;
  const wallLimit_ms = (spec.wallLimit_s ?? DEFAULT_WALL_LIMIT_S) * 1000;
  // After a server restart a device learns of new releases only by its poll (its observation died
  // with the server), so an idle device counts as settled only after two poll intervals (the
  // first poll may only find the session gone and reconnect). Behind a network fault the reply to
  // its Observe registration or a notification may be lost for good: the next poll is how it
  // learns, so an idle device counts as settled only after one poll interval.
  const maxPoll_ms = Math.max(...spec.groups.map((g) => g.agent?.pollInterval_ms ?? DEFAULT_POLL_MS));
  const faultKinds = new Set((spec.faults ?? []).map((f) => f.kind));
  const settle_ms =
    spec.settle_ms ??
    (faultKinds.has('server-restart') ? Math.max(DEFAULT_SETTLE_MS, 2 * maxPoll_ms + 20_000) : faultKinds.has('network') ? Math.max(DEFAULT_SETTLE_MS, maxPoll_ms + 20_000) : DEFAULT_SETTLE_MS);
  const replay = replayCommand(loaded.file, seed, opts.timeScale);
  const wallStart = performance.now();
  const clock = new ScaledClock(timeScale);
  const startedAt_ms = clock.now();
  const sim = (): number => clock.now() - startedAt_ms;
  const progress = (t: string): void => opts.onProgress?.(t);

  const faults: FaultSpec[] = spec.faults ?? [];
  const faultsInjected: Record<string, number> = {};
  const faultLog: FaultDecision[] = [];
  const problems: string[] = [];
  const timers: TimerHandle[] = [];
  const later = (delay_ms: number, fn: () => void): void => {
    timers.push(clock.setTimeout(fn, delay_ms));
  };

  // Everything started is closed again, also when the run itself throws.
  const closers: (() => Promise<void> | void)[] = [];
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch {
        // best effort: the run's own error (if any) is the one to report
      }
    }
  };
  try {
    // ---- server ----
    const external = spec.server !== undefined && 'url' in spec.server ? spec.server : null;
    const transport: 'udp' | 'dtls' = external ? (external.url.startsWith('coaps') ? 'dtls' : 'udp') : spec.server && 'embedded' in spec.server ? (spec.server.transport ?? 'dtls') : 'dtls';
    const devicesInfo: DeviceInfo[] = [];
    let index = 0;
    for (const g of spec.groups) {
      for (let i = 0; i < g.count; i++, index++) {
        const psk = external?.psks?.[index];
        devicesInfo.push({ identity: psk?.identity ?? `${g.name}-${i}`, key: psk?.key ?? `psk-${mixSeed(seed, index).toString(16)}`, board: g.board ?? spec.board, tags: g.tags ?? [] });
      }
    }
    const needsStateDir = faults.some((f) => f.kind === 'server-restart');
    const stateDir = needsStateDir ? mkdtempSync(join(tmpdir(), 'ota-sim-scenario-')) : null;
    if (stateDir) closers.push(() => rmSync(stateDir, { recursive: true, force: true }));
    let server: UpdateServer | null = null;
    let target: { host: string; port: number };
    let serverPorts: { udp: number | null; dtls: number | null } = { udp: null, dtls: null };
    const startServer = async (): Promise<UpdateServer> =>
      UpdateServer.start({ port: serverPorts.udp ?? 0, dtlsPort: serverPorts.dtls ?? 0, adminPort: null, clock, devices: devicesInfo, offerNewest: false, stateDir });
    if (external) {
      const u = new URL(external.url);
      target = { host: u.hostname, port: Number(u.port) };
    } else {
      server = await startServer();
      closers.push(() => server?.close());
      const addr = server.addresses();
      serverPorts = { udp: addr.udp?.port ?? null, dtls: addr.dtls?.port ?? null };
      const port = transport === 'udp' ? serverPorts.udp : serverPorts.dtls;
      if (port === null) throw new Error('assertion failed: the embedded server listens');
      target = { host: '127.0.0.1', port };
    }

    const sims: SimDevice[] = [];
    const recordDecision = (d: SimDevice | null, kind: string, key: string, label: string, detail?: Record<string, string | number | boolean | null>): void => {
      faultsInjected[kind] = (faultsInjected[kind] ?? 0) + 1;
      if (faultLog.length < MAX_FAULT_LOG) faultLog.push({ device: d?.id ?? '*', kind, key });
      const targets = d ? [d] : sims;
      for (const t of targets) t.recorder.noteFault(kind, label, detail);
    };

    // ---- server-side operations, serialized (a restart must not interleave with a release) ----
    let serverChain: Promise<void> = Promise.resolve();
    let serverBusy = 0;
    let lastServerStep_ms = 0;
    const artifacts = new Map<string, ArtifactInfo>();
    const onServer = (what: string, fn: (s: UpdateServer) => Promise<void>): void => {
      serverBusy++;
      serverChain = serverChain
        .then(async () => {
          if (!server) throw new Error('the server is not running');
          await fn(server);
        })
        .catch((e: unknown) => {
          problems.push(`${what} failed: ${e instanceof Error ? e.message : String(e)}`);
        })
        .finally(() => {
          serverBusy--;
          lastServerStep_ms = sim();
        });
    };
    const artifactFor = async (s: UpdateServer, name: string): Promise<ArtifactInfo> => {
      const known = artifacts.get(name);
      if (known) return known;
      const im = loaded.images.get(name);
      if (!im) throw new Error(`assertion failed: image ${name} exists`);
      // the header's version, as the server names an uploaded image; the spec's text only for bytes that do not parse
      const a = await s.model.addArtifact({ package: 'main', version: im.version ?? im.releaseVersion, board: im.board, bytes: im.bytes });
      artifacts.set(name, a);
      for (const f of faults) {
        if (f.kind === 'wrong-manifest-hash' && f.image === name) {
          const served = s.model.artifactAt(a.uri);
          if (served) {
            const at = Math.min(0x300, served.bytes.length - 1);
            served.bytes[at] = served.bytes[at]! ^ 0xff; // the manifest keeps the original SHA-256
            recordDecision(null, 'wrong-manifest-hash', `artifact:${a.id}`, `served ${a.id} differs from the manifest's SHA-256`, { artifact: a.id });
          }
        }
      }
      return a;
    };

    // ---- devices ----
    index = 0;
    for (const g of spec.groups) {
      const board = loaded.boards.get(g.board ?? spec.board)!;
      const initial = loaded.images.get(g.image)!;
      for (let i = 0; i < g.count; i++, index++) {
        const info = devicesInfo[index]!;
        const id = `${g.name}-${i}`;
        const flash = Flash.create(board);
        programSlot(flash, 'slot0', initial.bytes, 'confirm', spec.strategy);
        const baseOp = flash.opIndex;
        const d = {
          id,
          index,
          group: g,
          board,
          flash,
          initial,
          baseOp,
          proxy: null,
          lastState: null,
          lastChange_ms: 0,
          stateCounts: new Map(),
          downloads: 0,
          downloading: null,
          blocks: 0,
          blockSize_bytes: g.agent?.blockSize_bytes ?? 512,
          offUntilPowerOn: false,
          opCuts: [],
          armed: null,
          pendingFailures: [],
          planBootCut: () => undefined,
        } as unknown as SimDevice;
        // network faults: one proxy per device, its schedule merged from every network fault for it
        const net = faults.filter((f): f is Extract<FaultSpec, { kind: 'network' }> => f.kind === 'network' && appliesTo(f.devices, d));
        if (net.length > 0) {
          const schedule: ChaosSchedule = {};
          for (const f of net) addNetworkFault(schedule, f);
          closers.push(() => d.proxy?.close());
          d.proxy = await ChaosProxy.start({
            target,
            seed: mixSeed(seed, index, 0x6e6574),
            clock,
            schedule,
            label: id,
            onFault: (pf: ProxyFault) => {
              const kind = pf.kind === 'burst-loss' ? 'burst-loss' : pf.kind;
              recordDecision(d, kind, pf.index === null ? `${pf.kind}` : `datagram:${pf.direction ?? '-'}:${pf.index}`, `${pf.kind}${pf.direction ? ` ${pf.direction}` : ''}${pf.index === null ? '' : ` #${pf.index}`}`, {
                direction: pf.direction,
                index: pf.index,
              });
            },
          });
        }
        const via = d.proxy ? d.proxy.address : target;
        const agentCfg: AgentConfig = {
          server: { kind: transport, host: via.host, port: via.port, identity: info.identity, psk: info.key ?? undefined },
          board: board.name,
          strategy: spec.strategy,
          trust: createTrustStore(loaded.trusted),
          seed: mixSeed(seed, index),
          profile: g.agent?.profile,
          blockSize_bytes: d.blockSize_bytes,
          window: g.agent?.window ?? 4,
          persistEvery_blocks: g.agent?.persistEvery_blocks,
          rollbackTimer_ms: g.agent?.rollbackTimer_ms,
          maxAttemptsPerVersion: g.agent?.maxAttemptsPerVersion,
          backoffBase_ms: g.agent?.backoffBase_ms,
          backoffCap_ms: g.agent?.backoffCap_ms,
          blockRetryDelay_ms: g.agent?.blockRetryDelay_ms,
          maxBlockRetries: g.agent?.maxBlockRetries,
          pollInterval_ms: g.agent?.pollInterval_ms,
          reportRetry_ms: g.agent?.reportRetry_ms,
          handshakeAttempts: g.agent?.handshakeAttempts,
          coapTiming: { ackTimeout_ms: g.agent?.ackTimeout_ms ?? 2000, ackRandomFactor: 1.5, maxRetransmit: g.agent?.maxRetransmit ?? 4, maxLatency_ms: 1000, processingDelay_ms: 500 },
          onEvent: (e: AgentEvent) => {
            d.recorder.onAgentEvent(e);
            onAgentEvent(d, e);
          },
        };
        d.device = new Device({
          flash,
          strategy: spec.strategy,
          trustedKeys: loaded.trusted,
          clock,
          firmware: agentFirmware(agentCfg),
          watchdogTimeout_ms: g.agent?.watchdogTimeout_ms,
          maxReboots: g.agent?.maxReboots,
        });
        d.recorder = new DeviceRecorder({
          id,
          group: g.name,
          board: board.name,
          strategy: spec.strategy,
          device: d.device,
          flash,
          trustedKeys: loaded.trusted,
          clock,
          startedAt_ms,
          initialVersion: initial.version ?? initial.releaseVersion,
        });
        sims.push(d);
        closers.push(() => d.device.powerOff());
      }
    }

    // ---- fault wiring ----
    const armNext = (d: SimDevice): void => {
      // Cuts are cleared at every power-off (Flash.powerOffNow), so the next pending one is re-armed before each power-on.
      if (d.armed && d.armed.atOp >= d.flash.opIndex) {
        d.flash.armPowerCut(d.armed.torn ? { atOp: d.armed.atOp, kind: 'inside', seed: mixSeed(seed, d.index, d.armed.atOp) } : { atOp: d.armed.atOp, kind: 'before' });
        return;
      }
      d.armed = null;
      while (d.opCuts.length > 0 && d.opCuts[0]!.atOp < d.flash.opIndex) d.opCuts.shift(); // passed while a failure or another cut took its op
      const next = d.opCuts.shift();
      if (!next) return;
      d.armed = { atOp: next.atOp, torn: next.torn, kind: next.torn ? 'torn-cut' : 'power-cut', label: next.label, key: `op:${next.atOp - d.baseOp}`, off_ms: next.off_ms };
      d.flash.armPowerCut(next.torn ? { atOp: next.atOp, kind: 'inside', seed: mixSeed(seed, d.index, next.atOp) } : { atOp: next.atOp, kind: 'before' });
    };
    /** Arm a cut at the next flash op (block and boot faults), replacing any armed op cut (put back in the queue). */
    const armNow = (d: SimDevice, atOp: number, torn: boolean, kind: string, key: string, label: string, off_ms: number): void => {
      if (d.armed && d.armed.kind !== 'block-cut' && d.armed.kind !== 'boot-cut') d.opCuts.unshift({ atOp: d.armed.atOp, torn: d.armed.torn, label: d.armed.label, off_ms: d.armed.off_ms });
      d.armed = { atOp, torn, kind, label, key, off_ms };
      d.flash.armPowerCut(torn ? { atOp, kind: 'inside', seed: mixSeed(seed, d.index, atOp) } : { atOp, kind: 'before' });
    };
    /** Cuts are cleared at every power-off, so the pending ones are armed again before each power-on. */
    const beforePowerOn = (d: SimDevice): void => {
      armNext(d);
      d.planBootCut();
    };
    const powerOnLater = (d: SimDevice, off_ms: number): void => {
      d.offUntilPowerOn = true;
      later(off_ms, () => {
        d.offUntilPowerOn = false;
        if (d.device.phase !== 'off' || stopped) return;
        beforePowerOn(d);
        d.device.powerOn();
      });
    };

    let stopped = false;
    /** Faults fired by the first device to write a download block (of one image's version, when given). */
    const globalBlockFaults: { atBlock: number; version?: string; fire: (d: SimDevice) => void; done: boolean }[] = [];
    const blockFaults = new Map<SimDevice, { test: (block: number) => boolean; fire: (block: number) => void }[]>();
    const stateFaults = new Map<SimDevice, { state: string; occurrence: number; fire: () => void }[]>();

    for (const d of sims) {
      blockFaults.set(d, []);
      stateFaults.set(d, []);
      const bootFaults: { f: Extract<FaultSpec, { kind: 'power-cut-in-boot' }>; left: number; started: boolean }[] = [];
      faults.forEach((f, fi) => {
        if ('devices' in f && !appliesTo(f.devices, d)) return;
        switch (f.kind) {
          case 'power-cut':
            d.opCuts.push({ atOp: d.baseOp + f.atOp, torn: f.torn ?? false, label: `faults[${fi}] op ${f.atOp}`, off_ms: f.off_ms ?? DEFAULT_OFF_MS });
            break;
          case 'power-cut-in-state':
            stateFaults.get(d)!.push({
              state: f.state,
              occurrence: f.occurrence ?? 1,
              fire: () =>
                later(f.delay_ms ?? 0, () => {
                  if (stopped || d.device.phase !== 'running') return;
                  const key = `state:${f.state}#${f.occurrence ?? 1}+${f.delay_ms ?? 0}`;
                  if (f.torn) armNow(d, d.flash.opIndex, true, 'state-cut', key, `torn cut in ${f.state}`, f.off_ms ?? DEFAULT_OFF_MS);
                  else {
                    recordDecision(d, 'power-cut', key, `power cut in state ${f.state} (+${f.delay_ms ?? 0} ms)`, { state: f.state, opIndex: d.flash.opIndex, opFromStart: d.flash.opIndex - d.baseOp });
                    d.device.powerCut();
                    powerOnLater(d, f.off_ms ?? DEFAULT_OFF_MS);
                  }
                }),
            });
            break;
          case 'power-cut-at-block': {
            let cuts = 0;
            let highest = -1;
            const max = f.maxCuts ?? (f.atBlock !== undefined ? 1 : 100);
            blockFaults.get(d)!.push({
              test: (block) => {
                if (cuts >= max || block <= highest) return false;
                return f.atBlock !== undefined ? block >= f.atBlock : (block + 1) % f.everyBlocks! === 0;
              },
              fire: (block) => {
                cuts++;
                highest = block;
                armNow(d, d.flash.opIndex, f.torn ?? false, 'block-cut', `block:${block}`, `power cut after download block ${block}`, f.off_ms ?? DEFAULT_OFF_MS);
              },
            });
            break;
          }
          case 'power-cut-in-boot':
            bootFaults.push({ f, left: f.cuts ?? 1, started: false });
            break;
          case 'flash-failure':
            for (let k = 0; k < (f.count ?? 1); k++) {
              d.flash.armFailure(d.baseOp + f.atOp + k);
              d.pendingFailures.push({ atOp: d.baseOp + f.atOp + k, label: `flash op ${f.atOp + k} fails` });
            }
            break;
          case 'wear-out': {
            const area = d.flash.area(f.partition as PartitionName);
            const counts = Array.from(d.flash.eraseCounts(area.deviceId));
            const endurance = d.flash.spec(area.deviceId).enduranceCycles;
            const sectors = d.flash.sectors(area.deviceId);
            let worn = 0;
            sectors.forEach((s, si) => {
              if (s.start >= area.offset && s.start < area.offset + area.size) {
                counts[si] = Math.max(0, endurance - (f.erasesLeft ?? 0));
                worn++;
              }
            });
            d.flash.restoreCounters({ opIndex: d.flash.opIndex, elapsedUs: d.flash.elapsedUs, eraseCounts: { [area.deviceId]: counts } });
            recordDecision(d, 'wear-out', `partition:${f.partition}:${f.erasesLeft ?? 0}`, `${f.partition}: ${worn} sectors with ${f.erasesLeft ?? 0} erases left`, { partition: f.partition, erasesLeft: f.erasesLeft ?? 0 });
            break;
          }
          case 'network':
            if (f.blackholeAtBlock) {
              const bh = f.blackholeAtBlock;
              let done = false;
              blockFaults.get(d)!.push({
                test: (block) => !done && block >= bh.atBlock,
                fire: (block) => {
                  done = true;
                  d.proxy?.blackhole(bh.for_ms);
                  recordDecision(d, 'blackhole', `block:${block}`, `link down for ${bh.for_ms} ms at block ${block}`, { for_ms: bh.for_ms });
                },
              });
            }
            if (f.rebindAtBlock !== undefined) {
              const at = f.rebindAtBlock;
              let done = false;
              blockFaults.get(d)!.push({
                test: (block) => !done && block >= at,
                fire: () => {
                  done = true;
                  d.proxy?.rebind();
                },
              });
            }
            break;
          default:
            break;
        }
      });
      d.opCuts.sort((a, b) => a.atOp - b.atOp);
      d.planBootCut = (): void => {
        for (const bf of bootFaults) {
          if (bf.left <= 0) continue;
          const view = d.flash.clone({ journal: false }); // the device is off: read a powered copy
          view.disarmPowerCut();
          view.powerOn();
          const ins = inspectSwap(view, spec.strategy);
          const type = ins.interrupted ? ins.interrupted.swapType : ins.pending;
          const phase = type === 'revert' ? 'revert' : type === 'test' || type === 'perm' ? 'swap' : null;
          if (phase === null || (bf.f.phase !== 'any' && bf.f.phase !== phase)) continue;
          let atOp: number;
          let where: string;
          if (!bf.started) {
            // a dry run of this boot on a copy of the flash tells which op first touches the chosen slot0 sector
            const first = firstOpOnSlot0Sector(d.flash, spec.strategy, loaded, bf.f.sector ?? 1);
            if (first === null) continue;
            atOp = first + (bf.f.afterOps ?? 0);
            where = `slot0 sector ${bf.f.sector ?? 1}`;
          } else {
            atOp = d.flash.opIndex + (bf.f.afterOps ?? 0); // a brown-out loop: soon after power returns
            where = `${bf.f.afterOps ?? 0} ops after power-on`;
          }
          bf.started = true;
          bf.left--;
          const n = (bf.f.cuts ?? 1) - bf.left;
          armNow(d, atOp, bf.f.torn ?? false, 'boot-cut', `boot:${phase}:cut${n}:op${atOp - d.baseOp}`, `power cut in the bootloader's ${phase} at ${where} (cut ${n} of ${bf.f.cuts ?? 1})`, bf.f.off_ms ?? DEFAULT_OFF_MS);
          return;
        }
      };
      d.device.on('reboot', () => beforePowerOn(d));
      d.device.on('power-cut', (e) => {
        const a = d.armed;
        const kind = a ? (a.torn ? 'torn-cut' : 'power-cut') : 'power-cut';
        recordDecision(d, kind, a?.key ?? `op:${e.opIndex - d.baseOp}`, a?.label ?? `power cut at op ${e.opIndex - d.baseOp}`, { opIndex: e.opIndex, opFromStart: e.opIndex - d.baseOp, during: e.during, torn: a?.torn ?? false });
        d.armed = null;
        powerOnLater(d, a?.off_ms ?? DEFAULT_OFF_MS);
      });
    }

    // global (first device to reach a block) faults: server restart, artifact replacement
    for (const [fi, f] of faults.entries()) {
      if (f.kind === 'server-restart') {
        const restart = (d: SimDevice | null, key: string): void => {
          recordDecision(d, 'server-restart', key, `server restart (down ${f.down_ms ?? 5000} ms)`, { down_ms: f.down_ms ?? 5000 });
          serverBusy++;
          serverChain = serverChain
            .then(async () => {
              const old = server;
              server = null;
              await old?.close();
              await new Promise<void>((r) => later(f.down_ms ?? 5000, r));
              server = await startServer();
            })
            .catch((e: unknown) => {
              problems.push(`faults[${fi}] server restart failed: ${e instanceof Error ? e.message : String(e)}`);
            })
            .finally(() => {
              serverBusy--;
              lastServerStep_ms = sim();
            });
        };
        if (f.at_ms !== undefined) {
          const at = f.at_ms;
          later(at, () => restart(null, `at:${at}`));
        } else globalBlockFaults.push({ atBlock: f.atBlock!, done: false, fire: (d) => restart(d, `block:${f.atBlock}`) });
      } else if (f.kind === 'replace-artifact') {
        globalBlockFaults.push({
          atBlock: f.atBlock ?? 0,
          version: loaded.images.get(f.image)!.releaseVersion,
          done: false,
          fire: (d) => {
            const a = artifacts.get(f.image);
            const withBytes = loaded.images.get(f.with)!.bytes;
            const served = a && server ? server.model.artifactAt(a.uri) : undefined;
            if (!served) {
              problems.push(`faults[${fi}]: image ${f.image} was not released before block ${f.atBlock ?? 0}`);
              return;
            }
            served.bytes.set(withBytes);
            recordDecision(d, 'replace-artifact', `block:${f.atBlock ?? 0}`, `artifact ${a!.id} replaced by image ${f.with} mid-download`, { artifact: a!.id });
          },
        });
      }
    }

    function onAgentEvent(d: SimDevice, e: AgentEvent): void {
      if (e.type === 'state') {
        d.lastState = e.state;
        d.lastChange_ms = sim();
        const n = (d.stateCounts.get(e.state) ?? 0) + 1;
        d.stateCounts.set(e.state, n);
        for (const sf of stateFaults.get(d) ?? []) if (sf.state === e.state && sf.occurrence === n) sf.fire();
      } else if (e.type === 'download-start') {
        d.downloads++;
        d.downloading = e.version;
      }
      else if (e.type === 'block') {
        d.blocks++;
        for (const bf of blockFaults.get(d) ?? []) if (bf.test(e.block)) bf.fire(e.block);
        for (const g of globalBlockFaults) {
          if (!g.done && e.block >= g.atBlock && (g.version === undefined || (d.downloading !== null && sameVersion(g.version, d.downloading)))) {
            g.done = true;
            g.fire(d);
          }
        }
      }
    }

    // ---- timeline ----
    const steps = spec.timeline ?? [];
    let stepsDone = 0;
    for (const [si, step] of steps.entries()) {
      later(step.at_ms ?? 0, () =>
        onServer(`timeline[${si}]`, async (s) => {
          if ('release' in step) {
            const r = step.release;
            const ids: string[] = [];
            for (const n of r.images) ids.push((await artifactFor(s, n)).id);
            const devices = r.groups ? sims.filter((d) => r.groups!.includes(d.group.name)).map((d) => devicesInfo[d.index]!.identity) : [];
            await s.model.createRelease({ id: r.id, artifacts: ids, rolloutPercent: r.rolloutPercent, tags: r.tags, devices, activate: r.activate });
            progress(`release ${r.id} (${r.images.join(', ')}) at ${r.rolloutPercent ?? 100}%`);
          } else if ('activate' in step) await s.model.activate(step.activate);
          else if ('rollout' in step) await s.model.setRollout(step.rollout.release, step.rollout.percent);
          else await s.model.rollback(step.rollback === true ? undefined : step.rollback);
          for (const d of sims) d.recorder.noteFault('server', `timeline[${si}]`, { step: JSON.stringify(step).slice(0, 120) });
          stepsDone++;
        }),
      );
    }

    // ---- run ----
    for (const d of sims) {
      beforePowerOn(d);
      d.device.powerOn();
    }
    const lastFaultTime_ms = Math.max(
      0,
      ...faults.flatMap((f) => (f.kind === 'network' ? [...(f.blackholes ?? []).map((b) => b.at_ms + b.for_ms), ...(f.rebindAt_ms ?? [])] : f.kind === 'server-restart' && f.at_ms !== undefined ? [f.at_ms + (f.down_ms ?? 5000)] : [])),
    );
    const settled = (): boolean => {
      if (stepsDone < steps.length || serverBusy > 0) return false;
      const now = sim();
      if (now < lastFaultTime_ms) return false;
      const since = Math.max(lastServerStep_ms, 0);
      for (const d of sims) {
        const p = d.device.phase;
        if (p === 'bricked' || p === 'boot-loop') continue;
        if (p !== 'running' || d.offUntilPowerOn) return false;
        if (d.lastState !== 'idle') return false;
        if (now - Math.max(d.lastChange_ms, since) < settle_ms) return false;
      }
      return true;
    };
    let wallLimitHit = false;
    let lastProgress = 0;
    for (;;) {
      if (settled()) break;
      if (performance.now() - wallStart > wallLimit_ms) {
        wallLimitHit = true;
        break;
      }
      if (problems.length > 0 && problems.some((p) => p.startsWith('timeline'))) break;
      if (performance.now() - lastProgress > 1000) {
        lastProgress = performance.now();
        progress(`${spec.name}: ${Math.round(sim() / 1000)} s simulated`);
      }
      await delay(POLL_WALL_MS);
    }
    const simulated_ms = sim();

    // ---- stop everything, then judge ----
    stopped = true;
    for (const t of timers) t.cancel();
    for (const d of sims) {
      d.device.powerOff();
      d.flash.disarmPowerCut();
      d.flash.powerOn(); // the device stays off; power to the flash only so the oracle can read it
    }
    await serverChain;
    for (const d of sims) {
      for (const pf of d.pendingFailures) if (d.flash.opIndex > pf.atOp) recordDecision(d, 'flash-failure', `op:${pf.atOp - d.baseOp}`, pf.label, { opIndex: pf.atOp - d.baseOp });
    }
    const reportsOf = (d: SimDevice): ReportRecord[] => {
      if (!server) return [];
      try {
        return server.model.reports(devicesInfo[d.index]!.identity).history;
      } catch {
        return [];
      }
    };

    const devices: DeviceResult[] = [];
    const expectations: ExpectationResult[] = [];
    const perDevice: InvariantResult[][] = [];
    const violations: Violation[] = [];
    const releasedVersionsFor = (d: SimDevice): string[] => {
      const out: string[] = [];
      for (const step of steps) {
        if (!('release' in step)) continue;
        if (step.release.groups && !step.release.groups.includes(d.group.name)) continue;
        for (const n of step.release.images) {
          const im = loaded.images.get(n)!;
          if (im.board === null || im.board === d.board.name) out.push(im.releaseVersion);
        }
      }
      return out;
    };
    const groupFacts = new Map<string, { id: string; version: string | null; confirmed: boolean; reboots: number; downloads: number; bytes: number; reports: ReportRecord[] }[]>();
    for (const d of sims) {
      const reports = reportsOf(d);
      const final = finalFacts(d, spec.strategy, loaded);
      let result: DeviceResult;
      try {
        result = d.recorder.result(reports);
      } catch (e) {
        problems.push(`${d.id}: the recorder failed: ${e instanceof Error ? e.message : String(e)}`);
        result = { id: d.id, group: d.group.name, board: d.board.name, strategy: spec.strategy, initialVersion: d.initial.version ?? '', finalVersion: final.version, confirmed: final.confirmed, bricked: final.version === null, reboots: d.device.reboots, downloads: d.downloads, bytesDownloaded: d.blocks * d.blockSize_bytes, powerCuts: 0, netFaults: 0, reports: [], timeline: [] };
      }
      devices.push(result);
      const list = groupFacts.get(d.group.name) ?? [];
      list.push({ id: d.id, version: final.version, confirmed: final.confirmed, reboots: d.device.reboots, downloads: d.downloads, bytes: d.blocks * d.blockSize_bytes, reports });
      groupFacts.set(d.group.name, list);

      const ge = spec.expect.groups[d.group.name]!;
      const initialVersion = d.initial.version ?? d.initial.releaseVersion;
      const offered = releasedVersionsFor(d).filter((v) => !sameVersion(v, initialVersion));
      const targetFails = ge.targetFails ?? (sameVersion(ge.version, initialVersion) && offered.length > 0);
      const expect: OracleExpectation = {
        targetVersion: targetFails ? fullOrNull(offered[offered.length - 1]) : sameVersion(ge.version, initialVersion) ? null : fullVersion(ge.version),
        previousVersion: fullVersion(initialVersion),
        targetFails,
        mustConverge: !wallLimitHit,
        limits: { maxReboots: spec.expect.maxReboots ?? d.device.maxReboots, maxDownloads: spec.expect.maxDownloads ?? DEFAULT_MAX_DOWNLOADS, maxBytes: spec.expect.maxBytes ?? Number.MAX_SAFE_INTEGER },
      };
      try {
        const o = checkOracle({ recorder: d.recorder, reports, expect, replay });
        perDevice.push(o.invariants);
        violations.push(...o.violations);
      } catch (e) {
        problems.push(`${d.id}: the oracle failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }

    // expectations, per group (every device of the group must meet them)
    for (const g of spec.groups) {
      const ge = spec.expect.groups[g.name]!;
      const facts = groupFacts.get(g.name) ?? [];
      const wantConfirmed = ge.confirmed ?? true;
      const bad = facts.filter((f) => !sameVersion(ge.version, f.version) || f.confirmed !== wantConfirmed);
      expectations.push({
        what: `group ${g.name}: every device ends on ${ge.version} ${wantConfirmed ? 'confirmed' : 'not confirmed'}`,
        passed: bad.length === 0,
        detail: bad.length === 0 ? '' : bad.slice(0, 5).map((f) => `${f.id} ends on ${f.version ?? 'nothing bootable'}${f.version ? (f.confirmed ? ' confirmed' : ' unconfirmed') : ''}`).join('; '),
      });
      const matches = (r: ReportRecord, want: { s?: number; r?: number; t?: string }): boolean =>
        r.report !== null && (want.s === undefined || r.report.s === want.s) && (want.r === undefined || r.report.r === want.r) && (want.t === undefined || sameVersion(want.t, r.report.t));
      const text = (w: { s?: number; r?: number; t?: string }): string => [w.s === undefined ? '' : `s=${w.s}`, w.r === undefined ? '' : `r=${w.r}`, w.t === undefined ? '' : `t=${w.t}`].filter(Boolean).join(' ');
      for (const want of ge.reports ?? []) {
        const missing = facts.filter((f) => !f.reports.some((r) => matches(r, want)));
        expectations.push({ what: `group ${g.name}: the server saw a report ${text(want)} from every device`, passed: missing.length === 0, detail: missing.length === 0 ? '' : `none from ${missing.slice(0, 5).map((f) => f.id).join(', ')}` });
      }
      for (const want of ge.noReports ?? []) {
        const seen = facts.filter((f) => f.reports.some((r) => matches(r, want)));
        expectations.push({ what: `group ${g.name}: no report ${text(want)}`, passed: seen.length === 0, detail: seen.length === 0 ? '' : `seen from ${seen.slice(0, 5).map((f) => f.id).join(', ')}` });
      }
      const limits: [string, number | undefined, (f: (typeof facts)[number]) => number][] = [
        ['reboots', spec.expect.maxReboots, (f) => f.reboots],
        ['downloads', spec.expect.maxDownloads, (f) => f.downloads],
        ['bytes downloaded', spec.expect.maxBytes, (f) => f.bytes],
      ];
      for (const [what, max, get] of limits) {
        if (max === undefined) continue;
        const over = facts.filter((f) => get(f) > max);
        expectations.push({ what: `group ${g.name}: at most ${max} ${what} per device`, passed: over.length === 0, detail: over.length === 0 ? '' : over.slice(0, 5).map((f) => `${f.id}: ${get(f)}`).join('; ') });
      }
    }
    for (const kind of spec.expect.faultsInjected ?? []) {
      const n = faultsInjected[kind] ?? 0;
      expectations.push({ what: `fault ${kind} injected at least once`, passed: n > 0, detail: n > 0 ? '' : `no ${kind} fault was injected (injected: ${Object.keys(faultsInjected).join(', ') || 'none'})` });
    }

    // ---- clean up ----
    await cleanup();

    let invariants: InvariantResult[] = [];
    try {
      invariants = mergeInvariants(perDevice);
    } catch (e) {
      problems.push(`the oracle failed to merge verdicts: ${e instanceof Error ? e.message : String(e)}`);
    }
    const failedExpectation = expectations.find((e) => !e.passed);
    let failure: string | null = null;
    if (wallLimitHit) failure = `the fleet had not settled when the wall-clock limit of ${wallLimit_ms / 1000} s was hit (${Math.round(simulated_ms / 1000)} s simulated)${failedExpectation ? `; ${failedExpectation.what}: ${failedExpectation.detail}` : ''}`;
    else if (problems.length > 0) failure = problems[0]!;
    else if (violations.length > 0) failure = `invariant ${violations[0]!.invariant} violated on ${violations[0]!.device}: ${violations[0]!.message}`;
    else if (failedExpectation) failure = `${failedExpectation.what}: ${failedExpectation.detail}`;
    return {
      name: spec.name,
      file: loaded.file,
      description: spec.description,
      seed,
      passed: failure === null,
      failure,
      replay,
      timeScale,
      simulated_ms,
      duration_wallMs: performance.now() - wallStart,
      board: spec.board,
      strategy: spec.strategy,
      devices,
      faultsInjected,
      expectations,
      invariants,
      violations,
      faultLog,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
