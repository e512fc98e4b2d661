/**
 * The world of a whole-update sweep: one embedded update server (UDP and DTLS on 127.0.0.1,
 * ports picked by the OS) offering the target image to every device, and a way to run one
 * simulated device (flash + MCUboot model + OTA agent) against it until it settles, with a
 * DeviceRecorder attached. Every case gets its own device identity, so the server's records of
 * one case never mix with another's.
 */
import { agentFirmware } from '../agent/firmware.js';
import type { AgentConfig, AgentDefect } from '../agent/types.js';
import type { BootDefect } from '../boot/context.js';
import type { TrustedKey } from '../boot/validate.js';
import { ScaledClock } from '../clock.js';
import type { Clock } from '../clock.js';
import { Device } from '../device/device.js';
import type { Flash } from '../flash/flash.js';
import type { BoardProfile, Strategy } from '../flash/types.js';
import { createTrustStore } from '../image/verify.js';
import type { ReportRecord } from '../server/types.js';
import { UpdateServer } from '../server/update-server.js';
import { DeviceRecorder } from './recorder.js';
import type { RecorderPrior } from './recorder.js';

/** Agent settings a sweep case runs with (the rest are the agent's defaults). */
export type SweepAgentSettings = Pick<
  AgentConfig,
  'profile' | 'blockSize_bytes' | 'window' | 'persistEvery_blocks' | 'rollbackTimer_ms' | 'maxAttemptsPerVersion' | 'backoffBase_ms' | 'backoffCap_ms' | 'pollInterval_ms' | 'reportRetry_ms' | 'coapTiming'
>;

/** One complete OTA: a device on `from` is offered `to` (both signed image bytes). */
export interface UpdateCaseSpec {
  /** Shown in output and replay commands (e.g. the scenario's name). */
  name: string;
  board: BoardProfile;
  strategy: Strategy;
  trustedKeys: readonly TrustedKey[];
  from: { bytes: Uint8Array; version: string };
  to: { bytes: Uint8Array; version: string };
  /** The target should not stay: its self-test fails/crashes/hangs, or the agent refuses it. */
  targetFails: boolean;
  transport: 'udp' | 'dtls';
  agent?: SweepAgentSettings;
  /** Simulated/real time factor for every timer (default 0.01: a simulated second takes 10 ms). */
  timeScale?: number;
  /** Effort limits per case (defaults: see defaultLimits). */
  limits?: { maxReboots: number; maxDownloads: number; maxBytes: number };
}

export interface RunDeviceOptions {
  flash: Flash;
  identity: string;
  seed: number;
  prior?: RecorderPrior;
  storageBaseline?: Uint8Array | null;
  agentDefects?: readonly AgentDefect[];
  bootDefects?: readonly BootDefect[];
  /** Real-time bound of one case (default 60 s); a case that does not settle by then is reported. */
  wallLimit_ms?: number;
}

export interface DeviceRun {
  recorder: DeviceRecorder;
  reports: ReportRecord[];
  /** The device reached a quiet idle (or bricked / boot loop) before the wall limit. */
  settled: boolean;
}

/** Simulated quiet (no agent event) in idle after which a device counts as settled. */
const QUIET_MS = 12_000;
const POLL_WALL_MS = 10;
export const SWEEP_AGENT_DEFAULTS: Required<Omit<SweepAgentSettings, 'coapTiming'>> & Pick<SweepAgentSettings, 'coapTiming'> = {
  profile: 'ota-sim',
  blockSize_bytes: 512,
  window: 4,
  persistEvery_blocks: 8,
  rollbackTimer_ms: 300_000,
  maxAttemptsPerVersion: 3,
  backoffBase_ms: 1000,
  backoffCap_ms: 10_000,
  pollInterval_ms: 60_000,
  reportRetry_ms: 5_000,
  coapTiming: { ackTimeout_ms: 2000, ackRandomFactor: 1.5, maxRetransmit: 4, maxLatency_ms: 1000, processingDelay_ms: 500 },
};

/**
 * Effort limits for one case of a single update with at most one power cut. Reboots: the
 * update's own (one to test the image, one more to roll a failing one back) plus one. Downloads:
 * one, plus one restart from the first block. Bytes: a cut during the download may only cost
 * what a resume repeats (the blocks after the last persisted record, the window in flight, one
 * sector); a cut anywhere else may cost one whole download again (e.g. a cut between the
 * pending record and boot_set_pending makes the agent forget the staged image).
 */
export function defaultLimits(spec: UpdateCaseSpec, cutPhase: string | null = null): { maxReboots: number; maxDownloads: number; maxBytes: number } {
  const a = { ...SWEEP_AGENT_DEFAULTS, ...spec.agent };
  const sector = Math.max(...spec.board.flash.map((f) => Math.max(...f.sectors.map((s) => s.size))));
  const resume = (a.persistEvery_blocks + 2 * a.window) * a.blockSize_bytes + sector;
  const size = spec.to.bytes.length;
  return {
    // A failing target plus a cut in the bootloader's revert or in the record written after it looks,
    // on flash, like a cut during the test boot of a good image (the watchdog reset cause is lost):
    // the agent earns one bounded retry, i.e. one more test boot and its revert (2 reboots).
    maxReboots: spec.targetFails ? (cutPhase === 'revert' || cutPhase === 'record' ? 5 : 3) : 2,
    maxDownloads: 2,
    maxBytes: cutPhase === null || cutPhase === 'download' ? size + resume : 2 * size + resume,
  };
}

export class UpdateWorld {
  readonly clock: Clock;
  readonly startedAt_ms: number;
  private constructor(
    readonly spec: UpdateCaseSpec,
    readonly server: UpdateServer,
    clock: Clock,
  ) {
    this.clock = clock;
    this.startedAt_ms = clock.now();
  }

  static async create(spec: UpdateCaseSpec): Promise<UpdateWorld> {
    const clock = new ScaledClock(spec.timeScale ?? 0.01);
    const server = await UpdateServer.start({ port: spec.transport === 'udp' ? 0 : null, dtlsPort: spec.transport === 'dtls' ? 0 : null, adminPort: null, offerNewest: false, clock });
    try {
      // board null: offered to every device whatever its board (a wrong-board image must reach the agent to be refused)
      const a = await server.model.addArtifact({ package: 'main', bytes: spec.to.bytes, version: spec.to.version, board: null });
      await server.model.createRelease({ artifacts: [a.id] });
    } catch (e) {
      await server.close();
      throw e;
    }
    return new UpdateWorld(spec, server, clock);
  }

  async close(): Promise<void> {
    await this.server.close();
  }

  private port(): number {
    const addr = this.server.addresses();
    const p = this.spec.transport === 'udp' ? addr.udp?.port : addr.dtls?.port;
    if (p === undefined) throw new Error(`assertion failed: the server has no ${this.spec.transport} listener`);
    return p;
  }

  /** Power a fresh device on `flash` and run it until it settles; the device is off afterwards. */
  async runDevice(o: RunDeviceOptions): Promise<DeviceRun> {
    const spec = this.spec;
    const psk = `psk-${o.identity}`;
    await this.server.model.addDevice({ identity: o.identity, key: psk, board: spec.board.name, tags: [] });
    const a = { ...SWEEP_AGENT_DEFAULTS, ...spec.agent };
    let lastEvent_ms = this.clock.now();
    let agentState: string | null = null;
    // idle counts as settled only once a manifest reached it there (it may offer more work)
    let manifestInIdle = false;
    // the device is made first so the recorder can subscribe before it powers on
    let recorder: DeviceRecorder | null = null;
    const device = new Device({
      flash: o.flash,
      strategy: spec.strategy,
      trustedKeys: spec.trustedKeys,
      clock: this.clock,
      boot: o.bootDefects && o.bootDefects.length > 0 ? { defects: o.bootDefects } : {},
      firmware: agentFirmware({
        server: { kind: spec.transport, host: '127.0.0.1', port: this.port(), identity: o.identity, psk },
        board: spec.board.name,
        strategy: spec.strategy,
        trust: createTrustStore(spec.trustedKeys),
        seed: o.seed,
        ...a,
        ...(o.agentDefects && o.agentDefects.length > 0 ? { defects: [...o.agentDefects] } : {}),
        onEvent: (e) => {
          lastEvent_ms = this.clock.now();
          if (e.type === 'state') {
            agentState = e.state;
            manifestInIdle = false;
          } else if (e.type === 'manifest' && agentState === 'idle') manifestInIdle = true;
          recorder?.onAgentEvent(e);
        },
      }),
    });
    recorder = new DeviceRecorder({
      id: o.identity,
      group: spec.name,
      board: spec.board.name,
      strategy: spec.strategy,
      device,
      flash: o.flash,
      trustedKeys: spec.trustedKeys,
      clock: this.clock,
      startedAt_ms: this.startedAt_ms,
      initialVersion: spec.from.version,
      ...(o.bootDefects && o.bootDefects.length > 0 ? { bootOptions: { defects: o.bootDefects } } : {}),
      ...(o.prior ? { prior: o.prior } : {}),
      ...(o.storageBaseline !== undefined ? { storageBaseline: o.storageBaseline } : {}),
    });
    const wallLimit = o.wallLimit_ms ?? 60_000;
    const t0 = performance.now();
    let settled = false;
    let phaseAt = device.phase;
    device.on('reboot', () => (agentState = null));
    try {
      device.powerOn();
      for (;;) {
        await new Promise((r) => setTimeout(r, POLL_WALL_MS));
        if (device.phase !== phaseAt) {
          phaseAt = device.phase;
          lastEvent_ms = this.clock.now();
        }
        if (device.phase === 'bricked' || device.phase === 'boot-loop' || device.phase === 'off') {
          settled = true;
          break;
        }
        if (device.phase === 'running' && agentState === 'idle' && manifestInIdle && this.clock.now() - lastEvent_ms >= QUIET_MS) {
          settled = true;
          break;
        }
        if (performance.now() - t0 > wallLimit) break;
      }
    } finally {
      device.powerOff();
      recorder.detach();
    }
    let reports: ReportRecord[] = [];
    try {
      reports = this.server.model.reports(o.identity).history;
    } catch {
      reports = [];
    }
    return { recorder, reports, settled };
  }
}
