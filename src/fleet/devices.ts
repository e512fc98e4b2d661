/**
 * A slice of the fleet running in this thread: full devices (flash, MCUboot model, the OTA agent
 * with its own UDP socket and DTLS session), exactly as a single device runs them. All flashes of
 * the slice start as copy-on-write clones of one programmed template and share identical sectors
 * through one SectorStore, interned whenever a device settles (boot, idle, verified, test boot).
 */
import { agentFirmware } from '../agent/index.js';
import type { AgentEvent } from '../agent/index.js';
import { programSlot } from '../boot/program.js';
import { ScaledClock } from '../clock.js';
import { Device } from '../device/index.js';
import { assert } from '../errors.js';
import { Flash, SectorStore, loadBoard } from '../flash/index.js';
import { createTrustStore, parseKeyPem, publicKeyOf } from '../image/index.js';
import { REPORT_REASONS } from '../server/types.js';
import type { DeviceOutcome, FleetDeviceSpec, SliceConfig, SliceProgress } from './types.js';

/** Failing devices listed in a progress snapshot at most. */
const MAX_FAILING_LISTED = 50;
/** Agent states after which a device's flash is interned (it just finished writing a phase). */
const INTERN_STATES = new Set(['idle', 'verifying', 'testing', 'reporting']);

interface Tracked {
  spec: FleetDeviceSpec;
  device: Device;
  flash: Flash;
  agentState: string;
  version: string | null;
  updatedAt_wallMs: number | null;
  failures: string[];
  downloadStarts: number;
  powerCuts: number;
  bootLoop: boolean;
  bricked: boolean;
}

function wallNow_epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export class DeviceSlice {
  private readonly tracked: Tracked[] = [];
  private readonly store = new SectorStore();
  private readonly clock: ScaledClock;
  private changes = 0;
  private started = 0;
  private stopped = false;
  private startTimer: { cancel(): void } | null = null;

  constructor(
    private readonly config: SliceConfig,
    specs: readonly FleetDeviceSpec[],
    private readonly onUpdated: (index: number, at_wallMs: number) => void,
  ) {
    this.clock = new ScaledClock(config.timeScale);
    const board = loadBoard(config.board);
    const keys = config.trustPems.map((pem, i) => publicKeyOf(parseKeyPem(pem, `trusted key ${i}`)));
    const trust = createTrustStore(keys);
    // One programmed template; every device flash is a copy-on-write clone of it.
    const template = Flash.create(board, { journal: false });
    programSlot(template, 'slot0', config.initialImage, 'confirm', config.strategy);
    if (config.shareSectors) template.intern(this.store);
    for (const spec of specs) {
      const flash = template.clone({ journal: false });
      const t: Tracked = { spec, device: null as unknown as Device, flash, agentState: 'off', version: null, updatedAt_wallMs: null, failures: [], downloadStarts: 0, powerCuts: 0, bootLoop: false, bricked: false };
      t.device = new Device({
        flash,
        strategy: config.strategy,
        trustedKeys: keys,
        clock: this.clock,
        firmware: agentFirmware({
          server: { ...config.server, identity: spec.identity, psk: spec.psk },
          board: config.board,
          strategy: config.strategy,
          trust,
          seed: spec.seed,
          blockSize_bytes: config.blockSize_bytes,
          window: config.window,
          // capped at the transport's doubling cap (8 s simulated)
          handshakeTimeout_ms: Math.min(8000, Math.max(1000, config.netTimeoutFloor_wallMs / config.timeScale)),
          coapTiming: { ackTimeout_ms: Math.max(2000, config.netTimeoutFloor_wallMs / config.timeScale) },
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
        t.failures.push('power-cut');
        this.changes++;
        this.clock.setTimeout(() => {
          if (!this.stopped && t.device.phase === 'off') t.device.powerOn();
        }, config.powerOff_ms);
      });
      t.device.on('bricked', (e) => {
        t.bricked = true;
        t.failures.push(`bricked: ${e.reason}`);
        this.changes++;
      });
      t.device.on('boot-loop', () => {
        t.bootLoop = true;
        t.failures.push('boot-loop');
        this.changes++;
      });
      t.device.on('watchdog', (e) => t.failures.push(`watchdog-${e.cause}`));
      this.tracked.push(t);
    }
  }

  /** Power devices on, `startBatch` per tick, so the server is not hit by every handshake at once. */
  start(): void {
    const tick = (): void => {
      this.startTimer = null;
      if (this.stopped) return;
      const end = Math.min(this.tracked.length, this.started + this.config.startBatch);
      for (; this.started < end; this.started++) {
        const t = this.tracked[this.started]!;
        if (t.spec.powerCutAfterOps !== null) t.flash.armPowerCut({ atOp: t.flash.opIndex + t.spec.powerCutAfterOps, kind: 'inside', seed: t.spec.seed });
        t.device.powerOn();
      }
      if (this.started < this.tracked.length) this.startTimer = this.clock.setTimeout(tick, this.config.startTick_wallMs / this.config.timeScale);
    };
    tick();
  }

  progress(): SliceProgress {
    const states: Record<string, number> = {};
    let updated = 0;
    let bricked = 0;
    const failing: { identity: string; reason: string }[] = [];
    for (const t of this.tracked) {
      const state = t.bricked ? 'bricked' : t.bootLoop ? 'boot-loop' : t.device.phase === 'running' ? t.agentState : t.device.phase;
      states[state] = (states[state] ?? 0) + 1;
      if (t.updatedAt_wallMs !== null) updated++;
      if (t.bricked) bricked++;
      if (t.failures.length > 0 && failing.length < MAX_FAILING_LISTED) failing.push({ identity: t.spec.identity, reason: t.failures[t.failures.length - 1]! });
    }
    return { states, updated, bricked, failing, changes: this.changes, sectorsStored: this.store.size, sectorsShared: this.store.hits };
  }

  /** Power every device off (sockets closed) and say how each ended. */
  stop(): DeviceOutcome[] {
    this.stopped = true;
    this.startTimer?.cancel();
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
      case 'confirmed':
        if (e.version === this.config.targetVersion) this.markUpdated(t);
        break;
      case 'refused':
        t.failures.push(`refused-${REPORT_REASONS[e.reason] ?? e.reason}`);
        break;
      case 'rollback':
        t.failures.push('rollback');
        break;
      case 'report':
        if (e.report.r >= 2 && e.report.r !== 11) t.failures.push(`report-${REPORT_REASONS[e.report.r] ?? e.report.r}`);
        break;
      default:
        break;
    }
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
