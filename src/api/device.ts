/**
 * API facade, one simulated device: flash + MCUboot model + the OTA agent as its firmware (built
 * like test/agent/helpers.ts and the scenario runner), with a DeviceRecorder attached from the
 * start so checkOracle() can judge it later from flash and server facts.
 *
 * Power cuts are armed the way scenarios arm them (src/scenario/runner.ts): at a flash op index
 * (counted from device creation), right after a download block (the next flash op is cut), or
 * when the agent enters a state; 'now' cuts at once. The flash forgets an armed cut at every
 * power-off, so the pending ones are armed again before every power-on. Unless `off_ms` is null,
 * power returns by itself after `off_ms` simulated ms (default 1000), as after a brown-out.
 */
import { agentFirmware } from '../agent/index.js';
import type { AgentConfig, AgentEvent } from '../agent/index.js';
import type { BootOptions } from '../boot/boot.js';
import { bootIsImgConfirmed } from '../boot/public.js';
import { ScaledClock } from '../clock.js';
import type { Clock, TimerHandle } from '../clock.js';
import { Device } from '../device/index.js';
import type { DevicePhase, ResetCause } from '../device/index.js';
import { EnvironmentError, CheckError, InputError, OtaSimError } from '../errors.js';
import { Flash } from '../flash/flash.js';
import type { BoardProfile, Strategy } from '../flash/types.js';
import { createTrustStore, publicKeyOf, sameVersionText } from '../image/index.js';
import type { AnyKey, ImageHeader, PublicKey } from '../image/index.js';
import { mixSeed } from '../prng.js';
import { DeviceRecorder, verifySlot0 } from '../scenario/recorder.js';
import { DeviceEventStream } from './events.js';
import type { DeviceEvent } from './events.js';
import { boardOf, createFlash } from './flash.js';
import type { BoardRef } from './flash.js';
import { isServerHandle } from './server.js';
import type { ServerHandle } from './server.js';
import { ALL_STRATEGIES } from '../flash/types.js';

/** Agent settings a caller may change (the rest comes from the device options). */
export type DeviceAgentOptions = Omit<AgentConfig, 'server' | 'board' | 'strategy' | 'trust' | 'seed' | 'onEvent'>;

export interface CreateDeviceOptions {
  /** Board name, board file or profile (default: the flash's board). */
  board?: BoardRef;
  /** The device's flash (default: a fresh one for `board`). */
  flash?: Flash;
  /** Factory image programmed confirmed into slot0 of the fresh flash (ignored with `flash`). */
  image?: Uint8Array;
  /** MCUboot upgrade strategy (default 'swap-move'). */
  strategy?: Strategy;
  /** Keys the bootloader and the agent trust (public or private; a private key counts as its public half). */
  trust: AnyKey | readonly AnyKey[];
  /** `coaps://HOST:PORT` (DTLS PSK), `coap://HOST:PORT` (plain UDP), or a handle from startServer. */
  server: string | ServerHandle;
  /** With a server handle: which of its listeners to use (default 'dtls' when it has one). */
  transport?: 'dtls' | 'udp';
  /** PSK identity (plain UDP: the `?id=`). With a handle, default `device-N`, registered on the server. */
  identity?: string;
  /** The PSK (ASCII, DTLS). With a handle, default derived from the seed. */
  psk?: string;
  /** Tags the device is registered with (a handle only; releases can target tags). */
  tags?: string[];
  /** Device PRNG seed (CoAP tokens, message ids); default 1. */
  seed?: number;
  /** Default: the server handle's clock, else real time. Give server and device the same clock. */
  clock?: Clock;
  /** Agent settings (block size, window, profile, timers, defects ...). */
  agent?: DeviceAgentOptions;
  /** Watchdog timeout of a hung firmware (simulated ms, default 8000). */
  watchdogTimeout_ms?: number;
  /** Resets allowed before the device counts as boot-looping (default 32). */
  maxReboots?: number;
  /** Further bootloader options (validatePrimary, defects ...). */
  boot?: Omit<BootOptions, 'strategy' | 'trustedKeys'>;
  /** How long power stays away after a cut before it returns by itself (simulated ms, default 1000; null: stays off). */
  off_ms?: number | null;
  /** Name in oracle verdicts and results (default: the identity). */
  name?: string;
}

/** Where a power cut happens. */
export type PowerCutAt =
  /** Now. */
  | 'now'
  /** Before flash op N, counting the ops the device did since createDevice (0 = its first). */
  | number
  /** Right after the download writes Block2 block N (blocks count from 0): the next flash op is cut. */
  | { block: number }
  /** When the agent enters `state` for the `occurrence`-th time (default 1), `delay_ms` later (default 0). */
  | { state: string; occurrence?: number; delay_ms?: number };

export interface PowerCutOptions {
  at?: PowerCutAt;
  /** Cut inside the op (a torn write / partial erase, seeded) instead of before it. */
  torn?: boolean;
  /** Override the device's off_ms for this cut (null: stays off until powerOn()). */
  off_ms?: number | null;
}

/** What runs now, read from the flash at this moment. */
export interface RunningImageInfo {
  /** "major.minor.revision+build". */
  version: string;
  /** slot0's image_ok is set now (the agent confirmed it, or it was booted permanent). */
  confirmed: boolean;
  /** image_ok at boot. */
  confirmedAtBoot: boolean;
  /** The bootloader's action at this boot: 'none', 'test', 'perm', 'revert'. */
  bootAction: string;
  /** The boot completed a swap a power cut had interrupted. */
  resumed: boolean;
  board: string | null;
  resetCause: ResetCause;
  header: ImageHeader;
}

/** A snapshot for waitFor predicates. */
export interface DeviceStatus {
  phase: DevicePhase;
  /** The agent's state (leaf name, e.g. 'idle', 'downloading'); null while no firmware runs. */
  agentState: string | null;
  running: RunningImageInfo | null;
  reboots: number;
  powerCuts: number;
  /** Flash ops since createDevice. */
  ops: number;
}

/** What waitFor waits for: an agent state or device phase name, a running version, or any predicate. */
export type WaitTarget = string | { version: string; confirmed?: boolean } | ((status: DeviceStatus, event: DeviceEvent | null) => boolean);

export interface WaitOptions {
  /** Real (wall) ms before WAIT_TIMEOUT (default 30 000). */
  timeout_ms?: number;
}

export interface DeviceHandle {
  /** The name used in verdicts (default the identity). */
  readonly name: string;
  readonly identity: string;
  readonly board: BoardProfile;
  readonly strategy: Strategy;
  readonly flash: Flash;
  readonly clock: Clock;
  readonly trustedKeys: readonly PublicKey[];
  readonly events: DeviceEventStream;
  /** The device model underneath (src/device). */
  readonly device: Device;
  /** The oracle's evidence, gathered since createDevice. */
  readonly recorder: DeviceRecorder;
  /** The server handle it was made with (null for a URL). */
  readonly serverHandle: ServerHandle | null;
  readonly closed: boolean;
  status(): DeviceStatus;
  /** Power on (boot, then the agent starts). DEVICE_NOT_OFF unless the device is off. */
  powerOn(): void;
  /** Cut the power now or arm a cut (see PowerCutAt). */
  powerCut(options?: PowerCutOptions): void;
  /** Orderly power-off (no automatic power-on). */
  powerOff(): void;
  /** A reset through the bootloader (counts as a reboot); from off, a power-on. */
  reboot(): void;
  /** Resolve with the status once `target` holds (checked now and at every event). */
  waitFor(target: WaitTarget, options?: WaitOptions): Promise<DeviceStatus>;
  /** What runs now (null when nothing does). */
  runningImage(): RunningImageInfo | null;
  /** Power off, stop listening, end the event stream (the flash stays usable). */
  close(): Promise<void>;
}

const STRATEGIES = ALL_STRATEGIES;
const DEFAULT_OFF_MS = 1000;
const DEFAULT_WAIT_MS = 30_000;
const MAX_WAIT_MS = 3_600_000;
const WAIT_POLL_WALL_MS = 25;
/** Armed cuts per device at most (a guard against a runaway loop arming cuts). */
const MAX_PENDING_CUTS = 10_000;
/** Registered identities skipped at most when picking a default `device-N`. */
const MAX_IDENTITY_TRIES = 100_000;
/** A counter per server handle for default identities. */
const identityCounters = new WeakMap<ServerHandle, number>();
let urlDevices = 0;

function parseServerUrl(url: string): { kind: 'udp' | 'dtls'; host: string; port: number } {
  const m = /^(coaps?):\/\/([^/:\s]+|\[[^\]\s]+\]):(\d{1,5})\/?$/.exec(url);
  if (!m) throw new InputError('BAD_URL', `server: expected coap://HOST:PORT or coaps://HOST:PORT, got ${JSON.stringify(url)}`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new InputError('BAD_URL', `server: port ${port} is not 1..65535`);
  const host = m[2] === 'localhost' ? '127.0.0.1' : m[2]!.replace(/^\[|\]$/g, '');
  return { kind: m[1] === 'coaps' ? 'dtls' : 'udp', host, port };
}

function checkOff(what: string, v: number | null | undefined): void {
  if (v !== undefined && v !== null && !(Number.isFinite(v) && v >= 0 && v <= 86_400_000)) throw new InputError('BAD_ARGUMENT', `${what}: expected simulated ms 0..86400000 or null, got ${v}`);
}

/** Build one device (powered off). Power it on with `powerOn()`. */
export async function createDevice(options: CreateDeviceOptions): Promise<DeviceHandle> {
  if (typeof options !== 'object' || options === null) throw new InputError('BAD_ARGUMENT', 'createDevice: expected an options object');
  const strategy = options.strategy ?? 'swap-move';
  if (!STRATEGIES.includes(strategy)) throw new InputError('BAD_ARGUMENT', `createDevice: strategy must be one of ${STRATEGIES.join(', ')}, got ${JSON.stringify(strategy)}`);
  const trustList: readonly AnyKey[] = Array.isArray(options.trust) ? (options.trust as readonly AnyKey[]) : options.trust ? [options.trust as AnyKey] : [];
  if (trustList.length === 0 || trustList.some((k) => typeof k !== 'object' || k === null || (k.kind !== 'public' && k.kind !== 'private'))) {
    throw new InputError('BAD_KEY', 'createDevice: trust must be a key (or keys) from generateKey / parseKeyPem / keyFromSeed');
  }
  const trustedKeys = trustList.map(publicKeyOf);
  checkOff('createDevice: off_ms', options.off_ms);
  const seed = options.seed ?? 1;
  if (!Number.isSafeInteger(seed)) throw new InputError('BAD_ARGUMENT', `createDevice: seed must be a whole number, got ${seed}`);

  // ---- flash and board ----
  let flash: Flash;
  let board: BoardProfile;
  if (options.flash !== undefined) {
    if (!(options.flash instanceof Flash)) throw new InputError('BAD_ARGUMENT', 'createDevice: flash must come from createFlash / openFlash');
    flash = options.flash;
    board = flash.board;
    if (options.board !== undefined && boardOf(options.board).name !== board.name) throw new InputError('BOARD_MISMATCH', `createDevice: the flash is for board ${board.name}, not ${boardOf(options.board).name}`);
  } else {
    if (options.board === undefined) throw new InputError('BAD_ARGUMENT', 'createDevice: give a board (or a flash)');
    board = boardOf(options.board);
    flash = createFlash(board, options.image !== undefined ? { image: options.image, strategy } : {});
  }
  if (!flash.powered) flash.powerOn(); // reads below need power; the device powers it properly at powerOn()

  // ---- server ----
  const handle = isServerHandle(options.server) ? options.server : null;
  let target: { kind: 'udp' | 'dtls'; host: string; port: number };
  let identity = options.identity;
  let psk = options.psk;
  if (handle) {
    if (handle.closed) throw new EnvironmentError('SERVER_CLOSED', 'createDevice: the server handle was closed');
    const kind = options.transport ?? (handle.urls.coaps ? 'dtls' : 'udp');
    const url = kind === 'dtls' ? handle.urls.coaps : handle.urls.coap;
    if (url === null) throw new InputError('BAD_ARGUMENT', `createDevice: the server has no ${kind === 'dtls' ? 'DTLS' : 'plain UDP'} listener (startServer transport)`);
    target = parseServerUrl(url);
    if (identity === undefined) {
      // the next device-N the server does not know yet (never take over a registered identity)
      let n = identityCounters.get(handle) ?? 0;
      for (let tries = 0; tries < MAX_IDENTITY_TRIES; tries++) {
        n++;
        if (handle.server.model.device(`device-${n}`) === undefined) break;
      }
      identityCounters.set(handle, n);
      identity = `device-${n}`;
    }
    psk ??= `psk-${mixSeed(seed, identity.length, identity.charCodeAt(identity.length - 1)).toString(16)}`;
    await handle.addDevice({ identity, psk, board: board.name, tags: options.tags ?? [] });
  } else {
    if (typeof options.server !== 'string') throw new InputError('BAD_URL', 'createDevice: server must be a coap:// or coaps:// URL or a handle from startServer');
    target = parseServerUrl(options.server);
    if (options.transport !== undefined && options.transport !== target.kind) throw new InputError('BAD_ARGUMENT', `createDevice: transport ${options.transport} contradicts the URL ${options.server}`);
    if (identity === undefined) {
      if (target.kind === 'dtls') throw new InputError('BAD_ARGUMENT', 'createDevice: a coaps:// server needs identity and psk');
      identity = `device-${++urlDevices}`;
    }
    if (target.kind === 'dtls' && (psk === undefined || psk === '')) throw new InputError('BAD_ARGUMENT', 'createDevice: a coaps:// server needs a psk');
  }
  const clock = options.clock ?? handle?.clock ?? new ScaledClock(1);
  const name = options.name ?? identity;

  // ---- the device, its agent, the recorder ----
  const events = new DeviceEventStream();
  let agentState: string | null = null;
  let recorder: DeviceRecorder | null = null;
  let onAgent: (e: AgentEvent) => void = () => undefined;
  const agentConfig: AgentConfig = {
    ...options.agent,
    server: { kind: target.kind, host: target.host, port: target.port, identity, ...(psk !== undefined ? { psk } : {}) },
    board: board.name,
    strategy,
    trust: createTrustStore(trustedKeys),
    seed,
    onEvent: (e) => {
      recorder?.onAgentEvent(e);
      onAgent(e);
    },
  };
  // The agent and the device model check their options with RangeError; the API promises typed errors.
  const typed = <T>(code: string, make: () => T): T => {
    try {
      return make();
    } catch (e) {
      if (e instanceof RangeError) throw new InputError(code, `createDevice: ${e.message}`);
      throw e;
    }
  };
  const firmware = typed('BAD_AGENT_OPTION', () => agentFirmware(agentConfig));
  const device = typed('BAD_DEVICE_OPTION', () => new Device({ flash, strategy, trustedKeys, clock, firmware, watchdogTimeout_ms: options.watchdogTimeout_ms, maxReboots: options.maxReboots, boot: options.boot }));
  const initial = verifySlot0(flash, trustedKeys);
  const startedAt_ms = clock.now();
  recorder = new DeviceRecorder({
    id: name,
    group: 'api',
    board: board.name,
    strategy,
    device,
    flash,
    trustedKeys,
    clock,
    startedAt_ms,
    initialVersion: initial.version ?? 'none',
    ...(options.boot ? { bootOptions: options.boot } : {}),
  });
  const rec = recorder;
  const baseOp = flash.opIndex;
  let closed = false;
  let powerCuts = 0;

  // ---- power cuts ----
  interface Armed {
    atOp: number;
    torn: boolean;
    off_ms: number | null;
    trigger: string;
  }
  const defaultOff = options.off_ms === undefined ? DEFAULT_OFF_MS : options.off_ms;
  let pending: Armed[] = [];
  let armed: Armed | null = null;
  const blockCuts: { atBlock: number; torn: boolean; off_ms: number | null; fired: boolean }[] = [];
  const stateCuts: { state: string; occurrence: number; delay_ms: number; torn: boolean; off_ms: number | null; fired: boolean }[] = [];
  const stateCounts = new Map<string, number>();
  const timers = new Set<TimerHandle>();
  let powerOnTimer: TimerHandle | null = null;
  const later = (delay_ms: number, fn: () => void): TimerHandle => {
    const h = clock.setTimeout(() => {
      timers.delete(h);
      if (!closed) fn();
    }, delay_ms);
    timers.add(h);
    return h;
  };
  const armOnFlash = (a: Armed): void => {
    flash.armPowerCut(a.torn ? { atOp: a.atOp, kind: 'inside', seed: mixSeed(seed, a.atOp) } : { atOp: a.atOp, kind: 'before' });
  };
  /** Arm the next pending op cut (the flash forgot it at power-off). */
  const armNext = (): void => {
    if (armed && armed.atOp >= flash.opIndex) {
      armOnFlash(armed);
      return;
    }
    armed = null;
    pending = pending.filter((p) => p.atOp >= flash.opIndex);
    const next = pending.shift();
    if (!next) return;
    armed = next;
    armOnFlash(next);
  };
  /** Arm a cut at the next flash op; an armed op cut goes back to the queue. */
  const armNow = (a: Armed): void => {
    if (armed && !armed.trigger.startsWith('block') && !armed.trigger.startsWith('state')) pending.unshift(armed);
    armed = a;
    armOnFlash(a);
  };
  const emitNow = (e: DeviceEvent): void => events.emit(e);
  const safePowerOn = (): void => {
    try {
      armNext();
      device.powerOn();
    } catch (e) {
      emitNow({ type: 'error', message: e instanceof Error ? e.message : String(e), code: e instanceof OtaSimError ? e.code : null, at_ms: clock.now() });
    }
  };
  const powerOnAfter = (off_ms: number | null): void => {
    if (off_ms === null) return;
    powerOnTimer?.cancel();
    powerOnTimer = later(off_ms, () => {
      powerOnTimer = null;
      if (device.phase !== 'off') return;
      emitNow({ type: 'power-on', at_ms: clock.now() });
      safePowerOn();
    });
  };
  /** A cut by the API between flash ops (not armed on the flash): the device gives no event, so tell the recorder. */
  const cutNow = (trigger: string, off_ms: number | null): void => {
    if (device.phase === 'off') return;
    const during = device.phase === 'booting' ? 'boot' : 'firmware';
    const opIndex = flash.opIndex;
    powerCuts++;
    device.powerCut();
    rec.noteFault('power-cut', `power cut (${trigger})`, { opIndex, trigger });
    emitNow({ type: 'power-cut', opIndex, during, trigger, at_ms: clock.now() });
    powerOnAfter(off_ms);
  };

  // ---- device and agent events ----
  const unsubscribe: (() => void)[] = [];
  unsubscribe.push(
    device.on('booted', (e) => emitNow({ type: 'booted', version: e.version, confirmed: e.confirmed, action: e.image.bootAction, resumed: e.image.resumed, at_ms: e.at_ms })),
    device.on('bricked', (e) => emitNow({ type: 'bricked', reason: e.reason, at_ms: e.at_ms })),
    device.on('reboot', (e) => {
      agentState = null;
      armNext(); // the reset cleared the flash's armed cut; the bootloader runs right after this event
      emitNow({ type: 'reboot', reason: e.reason, reboots: e.reboots, at_ms: e.at_ms });
    }),
    device.on('watchdog', (e) => emitNow({ type: 'watchdog', cause: e.cause, at_ms: e.at_ms })),
    device.on('boot-loop', (e) => emitNow({ type: 'boot-loop', reboots: e.reboots, at_ms: e.at_ms })),
    device.on('power-cut', (e) => {
      agentState = null;
      const a = armed;
      armed = null;
      powerCuts++;
      emitNow({ type: 'power-cut', opIndex: e.opIndex, during: e.during, trigger: a?.trigger ?? `op:${e.opIndex - baseOp}`, at_ms: e.at_ms });
      powerOnAfter(a ? a.off_ms : defaultOff);
    }),
  );
  onAgent = (e) => {
    if (e.type === 'state') {
      agentState = e.state;
      const n = (stateCounts.get(e.state) ?? 0) + 1;
      stateCounts.set(e.state, n);
      for (const sc of stateCuts) {
        if (sc.fired || sc.state !== e.state || sc.occurrence !== n) continue;
        sc.fired = true;
        const trigger = `state:${sc.state}#${sc.occurrence}`;
        later(sc.delay_ms, () => {
          if (device.phase !== 'running') return;
          if (sc.torn) armNow({ atOp: flash.opIndex, torn: true, off_ms: sc.off_ms, trigger });
          else cutNow(trigger, sc.off_ms);
        });
      }
    } else if (e.type === 'block') {
      for (const bc of blockCuts) {
        if (bc.fired || e.block < bc.atBlock) continue;
        bc.fired = true;
        armNow({ atOp: flash.opIndex, torn: bc.torn, off_ms: bc.off_ms, trigger: `block:${e.block}` });
        break;
      }
    }
    emitNow(e);
  };

  // ---- status and waiting ----
  const runningImage = (): RunningImageInfo | null => {
    const img = device.image;
    if (!img || !flash.powered) return null;
    return {
      version: img.version,
      confirmed: bootIsImgConfirmed(flash, strategy),
      confirmedAtBoot: img.confirmed,
      bootAction: img.bootAction,
      resumed: img.resumed,
      board: img.board,
      resetCause: img.resetCause,
      header: img.header,
    };
  };
  const status = (): DeviceStatus => ({
    phase: device.phase,
    agentState: device.phase === 'running' ? agentState : null,
    running: device.phase === 'running' ? runningImage() : null,
    reboots: device.reboots,
    powerCuts,
    ops: flash.opIndex - baseOp,
  });
  const matcher = (t: WaitTarget): ((s: DeviceStatus, e: DeviceEvent | null) => boolean) => {
    if (typeof t === 'function') return t;
    if (typeof t === 'string') {
      if (t === '') throw new InputError('BAD_ARGUMENT', 'waitFor: an empty state name');
      return (s) => s.agentState === t || (['off', 'bricked', 'boot-loop'].includes(t) && s.phase === t);
    }
    if (typeof t === 'object' && t !== null && typeof t.version === 'string') {
      const want = t;
      return (s) => s.running !== null && sameVersionText(s.running.version, want.version) && (want.confirmed === undefined || s.running.confirmed === want.confirmed);
    }
    throw new InputError('BAD_ARGUMENT', 'waitFor: expected a state name, { version, confirmed? } or a predicate');
  };

  const h: DeviceHandle = {
    name,
    identity,
    board,
    strategy,
    flash,
    clock,
    trustedKeys,
    events,
    device,
    recorder: rec,
    serverHandle: handle,
    get closed() {
      return closed;
    },
    status,
    powerOn() {
      if (closed) throw new InputError('DEVICE_CLOSED', `device ${name}: closed`);
      if (device.phase !== 'off') throw new InputError('DEVICE_NOT_OFF', `device ${name}: powerOn() while it is ${device.phase}`);
      powerOnTimer?.cancel();
      powerOnTimer = null;
      emitNow({ type: 'power-on', at_ms: clock.now() });
      armNext();
      device.powerOn();
    },
    powerCut(o = {}) {
      if (closed) throw new InputError('DEVICE_CLOSED', `device ${name}: closed`);
      checkOff('powerCut: off_ms', o.off_ms);
      const at = o.at ?? 'now';
      const off_ms = o.off_ms === undefined ? defaultOff : o.off_ms;
      const torn = o.torn ?? false;
      if (pending.length + blockCuts.length + stateCuts.length >= MAX_PENDING_CUTS) throw new InputError('TOO_MANY_CUTS', `device ${name}: more than ${MAX_PENDING_CUTS} power cuts armed`);
      if (at === 'now') {
        if (torn) throw new InputError('BAD_ARGUMENT', 'powerCut: a torn cut needs a flash op to tear (use at: { block } or an op index)');
        cutNow('now', off_ms);
      } else if (typeof at === 'number') {
        if (!(Number.isInteger(at) && at >= 0)) throw new InputError('BAD_ARGUMENT', `powerCut: at must be a flash op index >= 0, got ${at}`);
        if (baseOp + at < flash.opIndex) throw new InputError('BAD_ARGUMENT', `powerCut: op ${at} has already happened (the device is at op ${flash.opIndex - baseOp})`);
        pending.push({ atOp: baseOp + at, torn, off_ms, trigger: `op:${at}` });
        pending.sort((a, b) => a.atOp - b.atOp);
        if (device.phase !== 'off') {
          // arm the earliest now (it may come before the one armed)
          if (armed && armed.atOp > baseOp + at && armed.trigger.startsWith('op:')) {
            pending.push(armed);
            pending.sort((a, b) => a.atOp - b.atOp);
            armed = null;
          }
          if (!armed) armNext();
        }
      } else if (typeof at === 'object' && at !== null && 'block' in at) {
        if (!(Number.isInteger(at.block) && at.block >= 0)) throw new InputError('BAD_ARGUMENT', `powerCut: at.block must be a block number >= 0, got ${String(at.block)}`);
        blockCuts.push({ atBlock: at.block, torn, off_ms, fired: false });
      } else if (typeof at === 'object' && at !== null && 'state' in at && typeof at.state === 'string') {
        const occurrence = at.occurrence ?? 1;
        const delay_ms = at.delay_ms ?? 0;
        if (!(Number.isInteger(occurrence) && occurrence >= 1)) throw new InputError('BAD_ARGUMENT', `powerCut: at.occurrence must be >= 1, got ${occurrence}`);
        if (!(Number.isFinite(delay_ms) && delay_ms >= 0)) throw new InputError('BAD_ARGUMENT', `powerCut: at.delay_ms must be >= 0, got ${delay_ms}`);
        // occurrences count from now on
        stateCuts.push({ state: at.state, occurrence: (stateCounts.get(at.state) ?? 0) + occurrence, delay_ms, torn, off_ms, fired: false });
      } else {
        throw new InputError('BAD_ARGUMENT', `powerCut: at must be 'now', an op index, { block } or { state }, got ${JSON.stringify(at)}`);
      }
    },
    powerOff() {
      powerOnTimer?.cancel();
      powerOnTimer = null;
      agentState = null;
      device.powerOff();
    },
    reboot() {
      if (closed) throw new InputError('DEVICE_CLOSED', `device ${name}: closed`);
      if (device.phase === 'off') {
        h.powerOn();
        return;
      }
      agentState = null;
      device.reboot();
    },
    waitFor(t, o = {}) {
      const timeout_ms = o.timeout_ms ?? DEFAULT_WAIT_MS;
      if (!(Number.isFinite(timeout_ms) && timeout_ms > 0 && timeout_ms <= MAX_WAIT_MS)) return Promise.reject(new InputError('BAD_ARGUMENT', `waitFor: timeout_ms must be 1..${MAX_WAIT_MS}, got ${timeout_ms}`));
      let test: (s: DeviceStatus, e: DeviceEvent | null) => boolean;
      try {
        test = matcher(t);
      } catch (e) {
        return Promise.reject(e);
      }
      const what = typeof t === 'function' ? 'the predicate' : typeof t === 'string' ? `state ${t}` : `version ${t.version}${t.confirmed === undefined ? '' : t.confirmed ? ' confirmed' : ' unconfirmed'}`;
      return new Promise<DeviceStatus>((resolve, reject) => {
        let done = false;
        const finish = (err: Error | null): void => {
          if (done) return;
          done = true;
          off();
          clearInterval(poll);
          clearTimeout(timer);
          if (err) reject(err);
          else resolve(status());
        };
        const check = (e: DeviceEvent | null): void => {
          if (done) return;
          if (closed) return finish(new InputError('DEVICE_CLOSED', `device ${name}: closed while waiting for ${what}`));
          try {
            if (test(status(), e)) finish(null);
          } catch (err) {
            finish(err instanceof Error ? err : new Error(String(err)));
          }
        };
        const off = events.on('*', (e) => check(e));
        const poll = setInterval(() => check(null), WAIT_POLL_WALL_MS);
        const timer = setTimeout(() => {
          const s = status();
          finish(new CheckError('WAIT_TIMEOUT', `device ${name}: waited ${timeout_ms} ms (wall) for ${what} in vain; it is ${s.phase}${s.agentState ? `, agent ${s.agentState}` : ''}${s.running ? `, running ${s.running.version}${s.running.confirmed ? ' confirmed' : ''}` : ''}`));
        }, timeout_ms);
        check(null);
      });
    },
    runningImage: () => (device.phase === 'running' || device.phase === 'booting' ? runningImage() : null),
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) t.cancel();
      timers.clear();
      powerOnTimer = null;
      device.powerOff();
      flash.disarmPowerCut();
      flash.powerOn(); // power to the flash only, so the oracle and the caller can still read it
      rec.detach();
      for (const u of unsubscribe) u();
      events.end();
    },
  };
  return h;
}
