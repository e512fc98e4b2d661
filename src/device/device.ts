/**
 * One simulated device: a Flash, the MCUboot model and the firmware the bootloader booted
 * (ARCHITECTURE.md principles 1-3).
 *
 * powerOn() runs the bootloader on the flash (boot()), then reads what it booted — version,
 * behaviour TLV 0xA0, board TLV 0xA1, whether slot0's image_ok is set — and starts the firmware
 * from an injected factory after the boot time: the flash ops' simulated time plus the image's
 * `bootMs`, on the injected clock. powerOff()/powerCut() stop everything at once: timers handed
 * out through the firmware's clock are cancelled (and could not fire into the dead firmware
 * anyway), firmware.stop() is called, and every field describing the running image is dropped;
 * only the Flash object's contents survive, and the next powerOn() reads everything again.
 * reboot() = off + on.
 *
 * Behaviour honoured here (the firmware decides when its self-test runs, via ctx.runSelfTest()):
 * - `crashAfterMs`: the firmware crashes that long after it starts; the reset follows at once.
 * - `selfTest: "crash"`: the self-test crashes the firmware; reset at once.
 * - `selfTest: "hang"`: the firmware stops doing anything; the watchdog (watchdogTimeout_ms of
 *   simulated time) resets it. A firmware that runs is assumed to feed the watchdog.
 * Every reset is a real reboot through the bootloader and counts toward maxReboots: the reboot
 * that would exceed it is not done; the device reports a boot loop and stays off.
 * A power cut armed inside a flash op (Flash.armPowerCut) that fires during boot, or during a
 * flash op of the firmware, leaves the device off (event `power-cut`); powerOn() resumes.
 * A bootloader that finds no bootable image leaves the device `bricked` (on, running nothing).
 * The firmware learns why it was reset (RunningImage.resetCause, like Zephyr's
 * hwinfo_get_reset_cause on a retained reset-reason register): 'watchdog', 'software', or
 * 'power-on' (a power-on clears the register, so a cut hides any reset before it).
 */
import { boot } from '../boot/boot.js';
import type { BootOptions, BootResult } from '../boot/boot.js';
import { bootIsImgConfirmed } from '../boot/public.js';
import type { TrustedKey } from '../boot/validate.js';
import type { Clock, TimerHandle } from '../clock.js';
import { PowerCut } from '../flash/errors.js';
import type { Flash } from '../flash/flash.js';
import type { Strategy } from '../flash/types.js';
import { formatVersion } from '../image/header.js';
import type { ImageHeader } from '../image/header.js';
import type { FirmwareBehaviour } from '../image/vendor.js';

/** What the bootloader booted, as read from flash at this power-on. */
export interface RunningImage {
  /** "major.minor.revision+build" from the header. */
  version: string;
  header: ImageHeader;
  behaviour: FirmwareBehaviour;
  /** Board TLV 0xA1, null if the image has none. */
  board: string | null;
  /** slot0's image_ok is set (false: a test image that the bootloader reverts unless confirmed). */
  confirmed: boolean;
  /** What the bootloader did at this boot ('none', 'test', 'perm', 'revert', ...). */
  bootAction: string;
  /** The bootloader completed a swap that a power cut had interrupted. */
  resumed: boolean;
  /** Why this boot happened: the reset-reason register the bootloader left alone. */
  resetCause: ResetCause;
}

/** 'power-on': power returned (first power-on or after a cut); otherwise the reset that preceded this boot. */
export type ResetCause = 'power-on' | 'software' | 'watchdog';

export type SelfTestVerdict = 'pass' | 'fail' | 'crashed' | 'hung';

/** What the running firmware gets. Valid only while it runs: after a reset or power-off every call is refused. */
export interface FirmwareContext {
  readonly image: RunningImage;
  readonly flash: Flash;
  /** The device clock; timers set here die with the firmware. */
  readonly clock: Clock;
  /** sys_reboot(): a warm reset through the bootloader (after the current call returns). */
  reboot(): void;
  /** Let the watchdog bite now (a reset through the bootloader, counted as a watchdog reset). */
  watchdogReset(): void;
  /**
   * Run the image's self-test (behaviour TLV): 'pass' or 'fail' return to the caller; 'crashed'
   * and 'hung' mean the firmware is gone (stop() was called) and a reset is on its way.
   */
  runSelfTest(): SelfTestVerdict;
  /**
   * Run `fn` (flash work) for this power session, in a microtask: outside the caller's stack,
   * without a timer's delay. A PowerCut thrown inside turns the device off (as for any firmware
   * code) and the promise never settles; other errors reject it. After the firmware stopped,
   * `fn` does not run and the promise never settles.
   */
  run<T>(fn: () => T): Promise<T>;
}

export interface Firmware {
  start(ctx: FirmwareContext): void;
  stop(): void;
}

export type FirmwareFactory = (image: RunningImage) => Firmware;

export type DevicePhase = 'off' | 'booting' | 'running' | 'bricked' | 'boot-loop';
export type ResetReason = 'requested' | 'watchdog';
export type WatchdogCause = 'crash' | 'hang' | 'crash-after' | 'requested';

export interface DeviceEvents {
  booted: { version: string; confirmed: boolean; image: RunningImage; at_ms: number };
  bricked: { reason: string; at_ms: number };
  reboot: { reason: ResetReason; reboots: number; at_ms: number };
  watchdog: { cause: WatchdogCause; at_ms: number };
  'power-cut': { opIndex: number; during: 'boot' | 'firmware'; at_ms: number };
  'boot-loop': { reboots: number; at_ms: number };
}
export type DeviceEventName = keyof DeviceEvents;
type Listener<E extends DeviceEventName> = (event: DeviceEvents[E]) => void;

export interface DeviceOptions {
  flash: Flash;
  strategy: Strategy;
  trustedKeys: readonly TrustedKey[];
  clock: Clock;
  firmware: FirmwareFactory;
  /** Watchdog timeout for a hung firmware, simulated ms; default 8000. */
  watchdogTimeout_ms?: number;
  /** Resets (reboots, watchdog resets) allowed over the device's life before it is declared boot-looping; default 32. */
  maxReboots?: number;
  /** Further bootloader options (validatePrimary, nvCounter, defects, ...). */
  boot?: Omit<BootOptions, 'strategy' | 'trustedKeys'>;
}

export const DEFAULT_WATCHDOG_TIMEOUT_MS = 8000;
export const DEFAULT_MAX_REBOOTS = 32;
const MAX_REBOOTS_LIMIT = 1_000_000;

/** Everything that exists only while the device is on. Dropped as a whole at power-off. */
interface Session {
  readonly generation: number;
  readonly timers: Set<TimerHandle>;
  image: RunningImage | null;
  firmware: Firmware | null;
  /** The firmware is gone (crashed, hung, reset requested) but the reset has not happened yet. */
  dead: boolean;
}

export class Device {
  readonly flash: Flash;
  readonly clock: Clock;
  readonly watchdogTimeout_ms: number;
  readonly maxReboots: number;
  private readonly opts: DeviceOptions;
  private _phase: DevicePhase = 'off';
  private _reboots = 0;
  /** The reset-reason register: set by a reset, read (and cleared) by the next power-on. */
  private resetRegister: ResetCause = 'power-on';
  private generation = 0;
  private session: Session | null = null;
  private readonly listeners = new Map<DeviceEventName, ((e: never) => void)[]>();

  constructor(opts: DeviceOptions) {
    this.opts = opts;
    this.flash = opts.flash;
    this.clock = opts.clock;
    this.watchdogTimeout_ms = opts.watchdogTimeout_ms ?? DEFAULT_WATCHDOG_TIMEOUT_MS;
    this.maxReboots = opts.maxReboots ?? DEFAULT_MAX_REBOOTS;
    if (!(this.watchdogTimeout_ms > 0 && Number.isFinite(this.watchdogTimeout_ms))) throw new RangeError(`watchdogTimeout_ms must be > 0, got ${this.watchdogTimeout_ms}`);
    if (!(Number.isInteger(this.maxReboots) && this.maxReboots >= 0 && this.maxReboots <= MAX_REBOOTS_LIMIT)) throw new RangeError(`maxReboots must be a whole number 0..${MAX_REBOOTS_LIMIT}, got ${this.maxReboots}`);
  }

  get phase(): DevicePhase {
    return this._phase;
  }

  /** Resets over the device's life (not counting power-ons from off). */
  get reboots(): number {
    return this._reboots;
  }

  /** The image running now (null unless the device is booting or running). */
  get image(): RunningImage | null {
    return this.session?.image ?? null;
  }

  on<E extends DeviceEventName>(event: E, listener: Listener<E>): () => void {
    const list = this.listeners.get(event) ?? [];
    list.push(listener as (e: never) => void);
    this.listeners.set(event, list);
    return () => {
      const i = list.indexOf(listener as (e: never) => void);
      if (i >= 0) list.splice(i, 1);
    };
  }

  private emit<E extends DeviceEventName>(event: E, payload: DeviceEvents[E]): void {
    for (const l of [...(this.listeners.get(event) ?? [])]) (l as Listener<E>)(payload);
  }

  /** Power on: run the bootloader now; the firmware starts after the boot time on the clock. */
  powerOn(): void {
    if (this._phase !== 'off') throw new Error(`assertion failed: powerOn() while the device is ${this._phase}`);
    const session: Session = { generation: ++this.generation, timers: new Set(), image: null, firmware: null, dead: false };
    this.session = session;
    this._phase = 'booting';
    const resetCause = this.resetRegister;
    this.resetRegister = 'power-on';
    const flash = this.flash;
    flash.powerOn();
    const start_us = flash.elapsedUs;
    let result: BootResult;
    let confirmed: boolean;
    try {
      result = boot(flash, { ...this.opts.boot, strategy: this.opts.strategy, trustedKeys: this.opts.trustedKeys });
      confirmed = result.kind === 'booted' && bootIsImgConfirmed(flash, this.opts.strategy);
    } catch (e) {
      if (e instanceof PowerCut) {
        this.shutdown();
        this.emit('power-cut', { opIndex: e.opIndex, during: 'boot', at_ms: this.clock.now() });
        return;
      }
      throw e;
    }
    if (result.kind === 'no-bootable-image') {
      this._phase = 'bricked';
      this.emit('bricked', { reason: result.reason, at_ms: this.clock.now() });
      return;
    }
    const image: RunningImage = {
      version: formatVersion(result.header.version),
      header: result.header,
      behaviour: result.behaviour,
      board: result.image?.board ?? null,
      confirmed,
      bootAction: result.action,
      resumed: result.resumed,
      resetCause,
    };
    session.image = image;
    const bootTime_ms = (flash.elapsedUs - start_us) / 1000 + (image.behaviour.bootMs ?? 0);
    this.setTimer(session, bootTime_ms, () => this.startFirmware(session, image));
  }

  /** Power goes away now (between flash ops): everything stops, only flash contents remain. */
  powerCut(): void {
    this.shutdown();
  }

  /** Orderly power-off: the same as a cut for the device (nothing is flushed: flash is all there is). */
  powerOff(): void {
    this.shutdown();
  }

  /** Off, then on (a reset from outside; counts as a reboot). */
  reboot(): void {
    this.reset('requested');
  }

  // --- internals ---------------------------------------------------------------------------

  private startFirmware(session: Session, image: RunningImage): void {
    const firmware = this.opts.firmware(image);
    session.firmware = firmware;
    this._phase = 'running';
    const live = (): boolean => this.session === session && !session.dead;
    const clock: Clock = {
      now: () => this.clock.now(),
      setTimeout: (fn, delay_ms) => this.setTimer(session, delay_ms, () => (live() ? fn() : undefined)),
    };
    const refuseDead = (what: string): void => {
      if (!live()) throw new Error(`assertion failed: firmware called ${what} after it stopped running`);
    };
    const ctx: FirmwareContext = {
      image,
      flash: this.flash,
      clock,
      reboot: () => {
        refuseDead('reboot()');
        this.killFirmware(session, 0, 'requested', null);
      },
      watchdogReset: () => {
        refuseDead('watchdogReset()');
        this.emit('watchdog', { cause: 'requested', at_ms: this.clock.now() });
        this.killFirmware(session, 0, 'watchdog', null);
      },
      run: <T>(fn: () => T): Promise<T> =>
        new Promise<T>((resolve, reject) => {
          queueMicrotask(() => {
            if (!live()) return;
            this.guard(session, () => {
              let out: T;
              try {
                out = fn();
              } catch (e) {
                if (e instanceof PowerCut) throw e; // the guard turns the device off
                reject(e instanceof Error ? e : new Error(String(e)));
                return;
              }
              resolve(out);
            });
          });
        }),
      runSelfTest: () => {
        refuseDead('runSelfTest()');
        switch (image.behaviour.selfTest) {
          case 'pass':
          case 'fail':
            return image.behaviour.selfTest;
          case 'crash':
            this.emit('watchdog', { cause: 'crash', at_ms: this.clock.now() });
            this.killFirmware(session, 0, 'watchdog', null);
            return 'crashed';
          case 'hang':
            this.killFirmware(session, this.watchdogTimeout_ms, 'watchdog', 'hang');
            return 'hung';
        }
      },
    };
    this.emit('booted', { version: image.version, confirmed: image.confirmed, image, at_ms: this.clock.now() });
    if (!live()) return;
    const crashAfter = image.behaviour.crashAfterMs;
    if (crashAfter !== undefined) {
      this.setTimer(session, crashAfter, () => {
        if (!live()) return;
        this.emit('watchdog', { cause: 'crash-after', at_ms: this.clock.now() });
        this.killFirmware(session, 0, 'watchdog', null);
      });
    }
    this.guard(session, () => firmware.start(ctx));
  }

  /**
   * The firmware stops running now (crash, hang, reset request); the reset happens after
   * `delay_ms` (0: as soon as the current call returns). `watchdogCause` is emitted when it bites.
   */
  private killFirmware(session: Session, delay_ms: number, reason: ResetReason, watchdogCause: WatchdogCause | null): void {
    if (session.dead) return;
    session.dead = true;
    const firmware = session.firmware;
    session.firmware = null;
    this.cancelTimers(session);
    firmware?.stop();
    this.setTimer(session, delay_ms, () => {
      if (watchdogCause !== null) this.emit('watchdog', { cause: watchdogCause, at_ms: this.clock.now() });
      this.reset(reason);
    });
  }

  private reset(reason: ResetReason): void {
    this.shutdown();
    if (this._reboots >= this.maxReboots) {
      this._phase = 'boot-loop';
      this.emit('boot-loop', { reboots: this._reboots, at_ms: this.clock.now() });
      return;
    }
    this._reboots++;
    this.emit('reboot', { reason, reboots: this._reboots, at_ms: this.clock.now() });
    this.resetRegister = reason === 'watchdog' ? 'watchdog' : 'software';
    this.powerOn();
  }

  /** Stop everything; keep only the flash. The flash stays unpowered until the next powerOn(). */
  private shutdown(): void {
    const session = this.session;
    this.session = null;
    this._phase = 'off';
    if (session) {
      session.dead = true;
      this.cancelTimers(session);
      const firmware = session.firmware;
      session.firmware = null;
      session.image = null;
      firmware?.stop();
    }
    this.flash.powerOffNow();
  }

  private setTimer(session: Session, delay_ms: number, fn: () => void): TimerHandle {
    const handle = this.clock.setTimeout(() => {
      session.timers.delete(handle);
      if (this.session !== session) return;
      this.guard(session, fn);
    }, delay_ms);
    session.timers.add(handle);
    return {
      cancel: () => {
        session.timers.delete(handle);
        handle.cancel();
      },
    };
  }

  private cancelTimers(session: Session): void {
    for (const t of session.timers) t.cancel();
    session.timers.clear();
  }

  /** Run firmware or device code; a power cut from a flash op inside it turns the device off. */
  private guard(session: Session, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof PowerCut && this.session === session) {
        this.shutdown();
        this.emit('power-cut', { opIndex: e.opIndex, during: 'firmware', at_ms: this.clock.now() });
        return;
      }
      throw e;
    }
  }
}
