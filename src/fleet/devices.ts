/**
 * A slice of the fleet running in this thread: full devices (flash, MCUboot model, the OTA agent
 * with its own UDP socket and DTLS session), exactly as a single device runs them. All flashes of
 * the slice start as copy-on-write clones of one programmed template and share identical sectors
 * through one SectorStore, interned whenever a device settles (boot, idle, verified, test boot).
 * A mixed slice has one template per (board, initial image). Devices chosen for network chaos
 * talk to the server through their own seeded ChaosProxy (DeviceSlice.create starts them).
 */
import { agentFirmware } from '../agent/index.js';
import type { AgentEvent } from '../agent/index.js';
import { programSlot } from '../boot/program.js';
import { ScaledClock } from '../clock.js';
import { Device } from '../device/index.js';
import { assert } from '../errors.js';
import { Flash, SectorStore, loadBoard } from '../flash/index.js';
import type { BoardProfile } from '../flash/types.js';
import { createTrustStore, parseImage, parseKeyPem, publicKeyOf } from '../image/index.js';
import { ChaosProxy } from '../net/proxy/index.js';
import { CHAOS_MAX_FLOWS } from './plan.js';
import { REPORT_REASONS } from '../server/types.js';
import { LagMeter } from './pace.js';
import { MAX_FAILING_LISTED, emptyChaosTotals } from './types.js';
import type { ChaosTotals, DeviceOutcome, FailingNow, FleetDeviceSpec, SliceConfig, SliceProgress } from './types.js';

/** Key of the template made from SliceConfig.initialImage (devices without a `template`). */
const DEFAULT_TEMPLATE = '';
/**
 * A chaos flow with nothing in either direction for this long (simulated ms) is closed, as a NAT
 * forgets it: this frees the flows of the device's old sockets (each handshake attempt and reboot
 * opens a new one). It must outlast the longest quiet gap of a working exchange — the last CoAP
 * retransmission waits 16 ACK timeouts (× 1.5 random factor) — or a slow retransmission would be
 * rebound and lose its DTLS session; a device quiet for longer (idle, a longer blackhole) is
 * rebound, as behind a real NAT.
 */
function chaosIdle_ms(ackTimeout_ms: number): number {
  return Math.max(120_000, 30 * ackTimeout_ms);
}

/** Earlier failures named in a failing device's detail at most. */
const MAX_EARLIER_LISTED = 5;
/** The version a bricked device runs. */
export const NO_VERSION = '(none)';
/** Agent states after which a device's flash is interned (it just finished writing a phase). */
const INTERN_STATES = new Set(['idle', 'verifying', 'testing', 'reporting']);

interface Tracked {
  spec: FleetDeviceSpec;
  device: Device;
  flash: Flash;
  /** What slot0 holds before it first boots. */
  initialVersion: string;
  agentState: string;
  version: string | null;
  updatedAt_wallMs: number | null;
  failures: string[];
  /** Simulated ms after the fleet start of the first failure, null while none. */
  failingSince_ms: number | null;
  downloadStarts: number;
  powerCuts: number;
  bootLoop: boolean;
  bricked: boolean;
}

/** The agents' CoAP ACK timeout (simulated ms): 2 s, floored at `netTimeoutFloor_wallMs` of wall time. */
function ackTimeoutOf(config: SliceConfig): number {
  return Math.max(2000, config.netTimeoutFloor_wallMs / config.timeScale);
}

function wallNow_epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export class DeviceSlice {
  private readonly tracked: Tracked[] = [];
  private readonly store = new SectorStore();
  private readonly clock: ScaledClock;
  /** The chaos proxies of this slice's chaos devices (device index → proxy). */
  private readonly proxies: Map<number, ChaosProxy>;
  private changes = 0;
  private started = 0;
  private stopped = false;
  private startTimer: { cancel(): void } | null = null;
  private readonly lag = new LagMeter();
  /** The server thread's lag as last told (0 when the server runs in this thread or elsewhere). */
  private serverLag_wallMs = 0;
  /** Start ticks that powered nothing on because a thread lagged. */
  private pausedTicks = 0;

  /**
   * A slice whose chaos devices (spec.chaos set) each get a ChaosProxy in front of the server,
   * started here (they bind sockets) before the devices are made. Without chaos devices this is
   * `new DeviceSlice(...)`.
   */
  static async create(config: SliceConfig, specs: readonly FleetDeviceSpec[], onUpdated: (index: number, at_wallMs: number) => void): Promise<DeviceSlice> {
    const clock = new ScaledClock(config.timeScale);
    const proxies = new Map<number, ChaosProxy>();
    try {
      for (const spec of specs) {
        if (spec.chaos === undefined || spec.chaos === null) continue;
        const schedule = config.chaos?.schedules[spec.chaos];
        assert(schedule !== undefined, `device ${spec.identity}: chaos schedule ${spec.chaos} missing`);
        // labelled by the device: its decisions follow from (its seed, its datagram indices), whatever else runs
        proxies.set(spec.index, await ChaosProxy.start({ target: { host: config.server.host, port: config.server.port }, seed: spec.seed, clock, schedule, label: spec.identity, maxFlows: CHAOS_MAX_FLOWS, idleTimeout_ms: chaosIdle_ms(ackTimeoutOf(config)), faultLogLimit: 0 }));
      }
    } catch (e) {
      for (const p of proxies.values()) void p.close();
      throw e;
    }
    return new DeviceSlice(config, specs, onUpdated, { clock, proxies });
  }

  constructor(
    private readonly config: SliceConfig,
    specs: readonly FleetDeviceSpec[],
    private readonly onUpdated: (index: number, at_wallMs: number) => void,
    net?: { clock: ScaledClock; proxies: Map<number, ChaosProxy> },
  ) {
    this.clock = net?.clock ?? new ScaledClock(config.timeScale);
    this.proxies = net?.proxies ?? new Map();
    const keys = config.trustPems.map((pem, i) => publicKeyOf(parseKeyPem(pem, `trusted key ${i}`)));
    const trust = createTrustStore(keys);
    // One programmed template per starting point; every device flash is a copy-on-write clone of one.
    const boards = new Map<string, BoardProfile>();
    const templates = new Map<string, { flash: Flash; board: string; version: string }>();
    const sources = new Map<string, { board: string; image: Uint8Array }>([[DEFAULT_TEMPLATE, { board: config.board, image: config.initialImage }]]);
    for (const t of config.templates ?? []) sources.set(t.key, { board: t.board, image: t.image });
    const templateFor = (key: string): { flash: Flash; board: string; version: string } => {
      const known = templates.get(key);
      if (known) return known;
      const src = sources.get(key);
      assert(src !== undefined, `fleet: no template ${JSON.stringify(key)}`);
      let board = boards.get(src.board);
      if (!board) boards.set(src.board, (board = loadBoard(src.board)));
      const flash = Flash.create(board, { journal: false });
      programSlot(flash, 'slot0', src.image, 'confirm', config.strategy);
      if (config.shareSectors) flash.intern(this.store);
      const made = { flash, board: src.board, version: parseImage(src.image).version };
      templates.set(key, made);
      return made;
    };
    for (const spec of specs) {
      const template = templateFor(spec.template ?? DEFAULT_TEMPLATE);
      assert(spec.board === undefined || spec.board === template.board, `device ${spec.identity}: board ${spec.board} but template ${spec.template} is for ${template.board}`);
      const flash = template.flash.clone({ journal: false });
      const proxy = this.proxies.get(spec.index);
      const server = proxy ? { kind: config.server.kind, ...proxy.address } : config.server;
      const t: Tracked = { spec, device: null as unknown as Device, flash, initialVersion: template.version, agentState: 'off', version: null, updatedAt_wallMs: null, failures: [], failingSince_ms: null, downloadStarts: 0, powerCuts: 0, bootLoop: false, bricked: false };
      t.device = new Device({
        flash,
        strategy: config.strategy,
        trustedKeys: keys,
        clock: this.clock,
        firmware: agentFirmware({
          server: { ...server, identity: spec.identity, psk: spec.psk },
          board: template.board,
          strategy: config.strategy,
          trust,
          seed: spec.seed,
          blockSize_bytes: config.blockSize_bytes,
          window: config.window,
          // capped at the transport's doubling cap (8 s simulated)
          handshakeTimeout_ms: Math.min(8000, Math.max(1000, config.netTimeoutFloor_wallMs / config.timeScale)),
          coapTiming: { ackTimeout_ms: ackTimeoutOf(config) },
          pollInterval_ms: config.pollInterval_ms,
          onEvent: (e) => this.onAgentEvent(t, e),
        }),
      });
      t.device.on('booted', (e) => {
        t.version = e.version;
        this.intern(t);
        if (e.version === config.targetVersion && e.confirmed) this.markUpdated(t);
      });
      t.device.on('power-cut', () => {
        t.powerCuts++;
        this.fail(t, 'power-cut');
        this.changes++;
        this.clock.setTimeout(() => {
          if (!this.stopped && t.device.phase === 'off') t.device.powerOn();
        }, config.powerOff_ms);
      });
      t.device.on('bricked', (e) => {
        t.bricked = true;
        this.fail(t, `bricked: ${e.reason}`);
        this.changes++;
      });
      t.device.on('boot-loop', () => {
        t.bootLoop = true;
        this.fail(t, 'boot-loop');
        this.changes++;
      });
      t.device.on('watchdog', (e) => this.fail(t, `watchdog-${e.cause}`));
      this.tracked.push(t);
    }
  }

  /**
   * Power devices on, at most `startBatch` per tick, so the server is not hit by every handshake
   * at once, and none while this thread or the server's lags (see pace.ts).
   */
  start(): void {
    const tick = (): void => {
      this.startTimer = null;
      if (this.stopped) return;
      const limit_ms = this.config.maxLag_wallMs;
      const lagging = limit_ms > 0 && this.started > 0 && (this.lag.lag_ms > limit_ms || this.serverLag_wallMs > limit_ms);
      if (lagging) this.pausedTicks++;
      const end = lagging ? this.started : Math.min(this.tracked.length, this.started + this.config.startBatch);
      for (; this.started < end; this.started++) {
        const t = this.tracked[this.started]!;
        if (t.spec.powerCutAfterOps !== null) t.flash.armPowerCut({ atOp: t.flash.opIndex + t.spec.powerCutAfterOps, kind: 'inside', seed: t.spec.seed });
        t.device.powerOn();
      }
      if (this.started < this.tracked.length) this.startTimer = this.clock.setTimeout(tick, this.config.startTick_wallMs / this.config.timeScale);
    };
    tick();
  }

  /** The server thread's lag, from the main thread. */
  setServerLag(lag_wallMs: number): void {
    this.serverLag_wallMs = lag_wallMs;
  }

  progress(): SliceProgress {
    const states: Record<string, number> = {};
    const versions: Record<string, number> = {};
    let updated = 0;
    let bricked = 0;
    let failingTotal = 0;
    const failing: FailingNow[] = [];
    for (const t of this.tracked) {
      const state = this.stateOf(t);
      states[state] = (states[state] ?? 0) + 1;
      const version = this.versionOf(t);
      versions[version] = (versions[version] ?? 0) + 1;
      if (t.updatedAt_wallMs !== null) updated++;
      if (t.bricked) bricked++;
      // failing now: a failure it has not recovered from by updating (or bricked for good)
      if (t.failures.length > 0 && (t.bricked || t.updatedAt_wallMs === null)) {
        failingTotal++;
        if (failing.length < MAX_FAILING_LISTED) failing.push(this.failingRow(t, state, version));
      }
    }
    return { states, versions, updated, bricked, failing, failingTotal, changes: this.changes, sectorsStored: this.store.size, sectorsShared: this.store.hits, poweredOn: this.started, pausedTicks: this.pausedTicks };
  }

  private stateOf(t: Tracked): string {
    return t.bricked ? 'bricked' : t.bootLoop ? 'boot-loop' : t.device.phase === 'running' ? t.agentState : t.device.phase;
  }

  /** The running image, else the last booted one (a device off after a power cut), else slot0's. */
  private versionOf(t: Tracked): string {
    if (t.bricked) return NO_VERSION;
    return t.device.image?.version ?? t.version ?? t.initialVersion;
  }

  private failingRow(t: Tracked, state: string, version: string): FailingNow {
    const last = t.failures[t.failures.length - 1]!;
    const colon = last.indexOf(':');
    const reason = colon < 0 ? last : last.slice(0, colon);
    const parts = colon < 0 ? [] : [last.slice(colon + 1).trim()];
    parts.push(`${state} on ${version}`);
    if (t.failures.length > 1) {
      const earlier = t.failures.slice(0, -1);
      const shown = earlier.slice(-MAX_EARLIER_LISTED).join(', ');
      parts.push(`earlier: ${earlier.length > MAX_EARLIER_LISTED ? `… ${earlier.length - MAX_EARLIER_LISTED} more, ` : ''}${shown}`);
    }
    return { identity: t.spec.identity, reason, detail: parts.join('; '), since_ms: t.failingSince_ms ?? 0 };
  }

  /** Power every device off (sockets closed) and say how each ended. */
  stop(): DeviceOutcome[] {
    this.stopped = true;
    this.startTimer?.cancel();
    this.lag.stop();
    const out: DeviceOutcome[] = [];
    for (const t of this.tracked) {
      const running = t.device.image?.version ?? null;
      t.device.powerOff();
      out.push({
        index: t.spec.index,
        identity: t.spec.identity,
        updatedAt_wallMs: t.updatedAt_wallMs,
        finalVersion: running ?? t.version,
        lastState: t.bricked ? 'bricked' : t.bootLoop ? 'boot-loop' : t.agentState,
        bricked: t.bricked,
        bootLoop: t.bootLoop,
        reboots: t.device.reboots,
        powerCuts: t.powerCuts,
        retries: Math.max(0, t.downloadStarts - 1),
        failures: t.failures,
      });
    }
    // the devices are off; their proxies close in the background (nothing waits on them)
    for (const p of this.proxies.values()) void p.close();
    return out;
  }

  /** The chaos proxies' counters, summed (read before stop() for the final numbers). */
  chaosTotals(): ChaosTotals {
    const out = emptyChaosTotals();
    for (const p of this.proxies.values()) {
      const s = p.stats();
      out.devices++;
      for (const [k, v] of Object.entries(s.faults)) out.faults[k] = (out.faults[k] ?? 0) + (v ?? 0);
      out.datagrams += s.datagrams.up + s.datagrams.down;
      out.forwarded += s.forwarded.up + s.forwarded.down;
      const d = s.dropped;
      if (d) out.droppedOther += d.overflow + d.flowLimit + d.oversize + d.stale;
    }
    return out;
  }

  /** Flashes of this slice (tests count their distinct sector buffers). */
  flashes(): Flash[] {
    return this.tracked.map((t) => t.flash);
  }

  private onAgentEvent(t: Tracked, e: AgentEvent): void {
    switch (e.type) {
      case 'state':
        t.agentState = e.state;
        this.changes++;
        if (INTERN_STATES.has(e.state)) this.intern(t);
        break;
      case 'download-start':
        t.downloadStarts++;
        break;
      case 'block':
        // progress without a state change (a slow, lossy download is not a stalled fleet)
        this.changes++;
        break;
      case 'confirmed':
        if (e.version === this.config.targetVersion) this.markUpdated(t);
        break;
      case 'refused':
        this.fail(t, `refused-${REPORT_REASONS[e.reason] ?? e.reason}`);
        break;
      case 'rollback':
        this.fail(t, 'rollback');
        break;
      case 'report':
        if (e.report.r >= 2 && e.report.r !== 11) this.fail(t, `report-${REPORT_REASONS[e.report.r] ?? e.report.r}`);
        break;
      default:
        break;
    }
  }

  /** Record a failure ("name" or "name: detail"); the first one starts the device's failing time. */
  private fail(t: Tracked, failure: string): void {
    t.failures.push(failure);
    t.failingSince_ms ??= Math.max(0, (wallNow_epochMs() - this.config.fleetStart_epochMs) / this.config.timeScale);
  }

  private markUpdated(t: Tracked): void {
    if (t.updatedAt_wallMs !== null) return;
    t.updatedAt_wallMs = wallNow_epochMs() - this.config.fleetStart_epochMs;
    assert(t.updatedAt_wallMs >= -1000, 'update time before the fleet started');
    this.changes++;
    this.onUpdated(t.spec.index, t.updatedAt_wallMs);
  }

  private intern(t: Tracked): void {
    if (this.config.shareSectors && t.flash.powered) t.flash.intern(this.store);
  }
}
