/**
 * The agent's side effects for one boot of the firmware: the OTA state store, the CoAP client
 * (UDP or DTLS), manifest decoding, the Block2 download into slot1 (sectors erased just ahead of
 * the write point, progress persisted every N blocks), verification, staging, confirming and
 * reports. The statechart (machine.ts) invokes these by name; nothing here decides what happens
 * next. A runtime lives exactly as long as the firmware runs: `shutdown()` (power off, reset)
 * aborts the network without a goodbye and makes every later call a no-op.
 *
 * Flash ops run inside `guarded()`, i.e. the Device's ctx.run(): a PowerCut thrown by the flash
 * is caught by the Device (which turns the device off) instead of escaping as an unhandled
 * promise rejection.
 */
import { createHash } from 'node:crypto';
import { Decoder, Encoder } from 'cbor-x';
import { bootIsImgConfirmed, bootSetConfirmed, bootSetPending, swapType } from '../boot/public.js';
import type { FirmwareContext } from '../device/device.js';
import { OtaStateStore, attemptsOf, withAttempt } from '../device/ota-state.js';
import type { DownloadProgress, OtaState, UpdateResult } from '../device/ota-state.js';
import { FlashError } from '../flash/errors.js';
import type { FlashArea } from '../flash/flash.js';
import { IMAGE_F, IMAGE_HEADER_SIZE_BYTES } from '../image/format.js';
import { compareVersions, decodeHeader, formatVersion, parseVersion, sameVersionText } from '../image/header.js';
import { parseImage } from '../image/parse.js';
import { trailerSize_bytes } from '../image/pad.js';
import type { WriteAlign } from '../image/pad.js';
import { verifyImage } from '../image/verify.js';
import { CoapClient } from '../net/client.js';
import type { Observation } from '../net/client.js';
import { download } from '../net/block2-download.js';
import { DownloadError } from '../net/errors.js';
import { DtlsTransport } from '../net/dtls-transport.js';
import { OptionNumber } from '../net/options.js';
import type { Transport } from '../net/transport.js';
import { UdpTransport } from '../net/udp-transport.js';
import { Prng, mixSeed } from '../prng.js';
import { ReportReason, ReportState } from './types.js';
import type { AgentDefect, AgentEvent, ResolvedAgentConfig, SentReport } from './types.js';

const CBOR_FORMAT = 60;
const MAX_MANIFEST_COMPONENTS = 32;
const cborEncoder = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false });
const cborDecoder = new Decoder({ useRecords: false, mapsAsObjects: false });

/** The firmware component of a manifest the agent may act on. */
export interface Offer {
  seq: number;
  version: string;
  /** SHA-256 of the artifact, 64 lowercase hex chars. */
  sha256: string;
  size_bytes: number;
  uri: string;
}

export interface BootInfo {
  version: string;
  /** Running an unconfirmed image (a test boot). */
  testBoot: boolean;
  /** An outcome on flash that the server has not heard of yet. */
  unreported: boolean;
}

export type Verdict = { ok: true } | { ok: false; reason: number; message: string };

export class PowerGone extends Error {
  constructor() {
    super('the firmware stopped running');
  }
}

/** Decode a manifest (FORMATS.md) and pick the component of `pkg`; a string says what is wrong. */
export function decodeManifest(payload: Uint8Array, pkg: string): { seq: number; offer: Offer | null } | string {
  let top: unknown;
  try {
    top = cborDecoder.decode(payload);
  } catch (e) {
    return `malformed CBOR manifest: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (!(top instanceof Map)) return 'manifest: expected a CBOR map';
  const seq = top.get(1);
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0) return 'manifest: key 1 (sequence number) must be a uint';
  const comps = top.get(3);
  if (comps === undefined) return { seq, offer: null };
  if (!Array.isArray(comps) || comps.length > MAX_MANIFEST_COMPONENTS) return `manifest: key 3 must be an array of at most ${MAX_MANIFEST_COMPONENTS} components`;
  for (const c of comps as unknown[]) {
    if (!(c instanceof Map) || c.get(1) !== pkg) continue;
    const version = c.get(2);
    const hash = c.get(3);
    const size = c.get(4);
    const uri = c.get(5);
    if (typeof version !== 'string' || typeof hash !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hash) || typeof size !== 'number' || !Number.isInteger(size) || size <= 0 || typeof uri !== 'string' || !uri.startsWith('/')) {
      return `manifest: component ${pkg} is malformed`;
    }
    return { seq, offer: { seq, version, sha256: hash.toLowerCase(), size_bytes: size, uri } };
  }
  return { seq, offer: null };
}

/** Compare two version texts (MCUboot order); null if either does not parse. */
export function compareVersionText(a: string, b: string): number | null {
  try {
    return compareVersions(parseVersion(a), parseVersion(b));
  } catch {
    return null;
  }
}

/**
 * A flash driver error (an injected DEVICE_FAILURE, a worn-out sector), thrown by a flash op or
 * wrapped by the Block2 download around a failed block write: the attempt fails with r=10 IO and
 * is retried; it says nothing about the image.
 */
export function isFlashIoError(e: unknown): boolean {
  if (e instanceof FlashError) return true;
  return e instanceof DownloadError && e.reason === 'SINK_FAILED' && e.cause instanceof FlashError;
}

export class AgentRuntime {
  private _store: OtaStateStore;
  private client: CoapClient | null = null;
  private observation: Observation | null = null;
  private dead = false;
  private readonly abortController = new AbortController();
  private readonly prng: Prng;
  /** Defect `failure-report-from-ram` only: the failed version, held in RAM (lost at the reset that reverts). */
  private ramFailure: string | null = null;
  /** A download was started in this boot (RAM, per boot: see downloadOffer). */
  private downloadedThisBoot = false;

  constructor(
    readonly cfg: ResolvedAgentConfig,
    readonly ctx: FirmwareContext,
    bootNumber: number,
  ) {
    this.prng = new Prng(mixSeed(cfg.seed, bootNumber));
    this._store = OtaStateStore.open(ctx.flash.area('ota-state'));
  }

  get store(): OtaStateStore {
    return this._store;
  }

  get version(): string {
    return this.ctx.image.version;
  }

  get state(): OtaState {
    return this.store.state;
  }

  get alive(): boolean {
    return !this.dead;
  }

  has(defect: AgentDefect): boolean {
    return this.cfg.defects.includes(defect);
  }

  emit(event: AgentEvent): void {
    this.cfg.onEvent?.(event);
  }

  now(): number {
    return this.ctx.clock.now();
  }

  /** Power off / reset: drop the network at once (no close_notify), refuse everything after. */
  shutdown(): void {
    if (this.dead) return;
    this.dead = true;
    this.abortController.abort();
    this.client?.abort();
    this.client = null;
    this.observation = null;
  }

  /** Run `fn` (flash ops) through the device (ctx.run) so a power cut is handled by the Device. */
  guarded<T>(fn: () => T): Promise<T> {
    if (this.dead) return new Promise<T>(() => {});
    return this.ctx.run(() => {
      if (this.dead) throw new PowerGone();
      try {
        return fn();
      } catch (e) {
        // a driver error leaves the store unusable (it cannot know what reached flash): read it
        // again, as after a power-on, so the next attempt starts from what flash really holds
        if (e instanceof FlashError) this._store = OtaStateStore.open(this.ctx.flash.area('ota-state'));
        throw e;
      }
    });
  }

  // --- boot ----------------------------------------------------------------------------------

  /**
   * Learn from flash what happened before this boot (ARCHITECTURE.md principle 1). An update in
   * flight is `pending-test` (written before boot_set_pending), `testing` (written by the new
   * image when its test boot starts) or `self-test-failed` (written by the test boot when the
   * image failed, just before it reboots unconfirmed). Versions compare semantically: the
   * manifest says "2.0.0", the image header "2.0.0+0".
   * - running the target, unconfirmed: the test boot; record `testing` before anything can fail.
   * - running the target, confirmed: confirmed by the test boot, cut before the record said so.
   * - running the old version after the new image was booted (`testing`/`self-test-failed` on
   *   flash, or the bootloader reverted at this very boot): reverted. The version is given up at
   *   once only when the image is known to be bad: flash says its self-test failed, or the
   *   watchdog reset it (reset cause). A power cut (or any other reset) during the test boot
   *   looks like nothing on flash: that attempt (counted when its download started) failed and
   *   the version is tried again, up to maxAttemptsPerVersion.
   * - running the old version, no revert, still `pending-test`: the staged image never booted.
   *   slot1 still holding it bootable means the cut fell between the record and
   *   boot_set_pending: nothing was attempted, forget it (downloaded again). slot1 erased or
   *   non-bootable means the bootloader refused it: a failure, given up.
   */
  inspectBoot(): BootInfo {
    const running = this.version;
    const confirmed = bootIsImgConfirmed(this.ctx.flash, this.cfg.strategy);
    const last = this.store.state.lastUpdate;
    if (last && inFlight(last.result)) {
      const onTarget = sameVersionText(last.targetVersion, running);
      if (onTarget && !confirmed) {
        if (last.result === 'pending-test') this.store.update({ lastUpdate: { ...last, result: 'testing' } });
      } else if (onTarget) {
        this.store.update({ lastUpdate: { ...last, result: 'confirmed', reason: ReportReason.FIRMWARE_UPDATED_SUCCESSFULLY, reported: false } });
      } else if (sameVersionText(last.fromVersion, running) && !this.has('failure-report-from-ram')) {
        // (defect failure-report-from-ram: the failure would come from a RAM variable, which the reset lost)
        if (last.result !== 'pending-test' || this.ctx.image.bootAction === 'revert') {
          // the bootloader reverted the unconfirmed image: slot1 holds it again, slot0 the old one
          const imageFailed = last.result === 'self-test-failed' || this.ctx.image.resetCause === 'watchdog';
          // a failed self-test, a crash or a hang is deterministic: ota-sim never tries that version
          // again. One record for the outcome and the cap: a cut between two would lose the cap.
          const base = imageFailed && this.cfg.profile === 'ota-sim' ? this.exhausted(last.targetVersion) : this.store.state;
          this.store.update({ attempts: base.attempts, lastUpdate: { ...last, result: 'reverted', reason: ReportReason.FIRMWARE_UPDATE_FAILED, reported: false } });
        } else {
          const refusal = this.bootRefusal(last.targetVersion);
          if (refusal === null) {
            this.store.update({ lastUpdate: null });
          } else {
            const base = this.cfg.profile === 'ota-sim' ? this.exhausted(last.targetVersion) : this.store.state;
            this.store.update({ attempts: base.attempts, lastUpdate: { ...last, result: 'failed', reason: refusal, reported: false } });
          }
        }
      }
    }
    const now = this.store.state.lastUpdate;
    return { version: running, testBoot: !confirmed, unreported: now !== null && !now.reported && !inFlight(now.result) };
  }

  /**
   * Whether the bootloader refused the image staged for `target` (read from slot1's header): null
   * if slot1 still holds it bootable; r=8 FIRMWARE_UPDATE_FAILED if it is flagged non-bootable
   * (MCUboot ignores it); r=5 INTEGRITY_CHECK_FAILURE if the header is gone or names another
   * version (MCUboot erases a secondary image that fails validation).
   */
  private bootRefusal(target: string): number | null {
    const slot = this.ctx.flash.area('slot1');
    let header;
    try {
      header = decodeHeader(slot.read(0, IMAGE_HEADER_SIZE_BYTES));
    } catch {
      return ReportReason.INTEGRITY_CHECK_FAILURE;
    }
    if ((header.flags & IMAGE_F.NON_BOOTABLE) !== 0) return ReportReason.FIRMWARE_UPDATE_FAILED;
    if (!sameVersionText(formatVersion(header.version), target)) return ReportReason.INTEGRITY_CHECK_FAILURE;
    return null;
  }

  /** The test boot is giving up because the image failed (self-test, rollback timer): say so on flash before the reset that reverts. */
  recordSelfTestFailure(): void {
    const last = this.store.state.lastUpdate;
    if (last && sameVersionText(last.targetVersion, this.version) && inFlight(last.result)) {
      this.store.update({ lastUpdate: { ...last, result: 'self-test-failed' } });
    }
  }

  /** The test boot is giving up (the reset that reverts follows). Only the RAM defect keeps anything. */
  noteFailureInRam(): void {
    if (this.has('failure-report-from-ram')) this.ramFailure = this.version;
  }

  /** Raise a version's persisted attempt count to the cap (it will not be downloaded again). */
  exhaust(version: string): void {
    const s = this.exhausted(version);
    if (s !== this.store.state) this.store.update({ attempts: s.attempts });
  }

  /** The current state with `version`'s attempt count raised to the cap (not written). */
  private exhausted(version: string): OtaState {
    let s = this.store.state;
    for (let i = attemptsOf(s, version); i < this.cfg.maxAttemptsPerVersion; i++) s = withAttempt(s, version);
    return s;
  }

  // --- network -------------------------------------------------------------------------------

  async connect(): Promise<void> {
    if (this.ctx.image.behaviour.connect === false) await new Promise<never>(() => {}); // never reaches the server
    this.client?.abort();
    this.client = null;
    const s = this.cfg.server;
    let transport: Transport;
    if (s.kind === 'udp') transport = await UdpTransport.open({ host: s.host, port: s.port });
    else {
      const opening = DtlsTransport.open({
        host: s.host,
        port: s.port,
        identity: s.identity,
        psk: s.psk ?? '',
        clock: this.ctx.clock,
        handshakeAttempts: this.cfg.handshakeAttempts,
        handshake: this.cfg.dtlsHandshake,
        signal: this.abortController.signal, // a power cut stops a handshake in progress
        ...(this.cfg.handshakeTimeout_ms !== undefined ? { handshakeTimeout_ms: this.cfg.handshakeTimeout_ms } : {}),
      });
      transport = await opening.catch((e: unknown) => {
        throw this.dead ? new PowerGone() : e; // the power cut stopped the handshake
      });
    }
    if (this.dead) {
      transport.abort();
      throw new PowerGone();
    }
    this.client = new CoapClient({ transport, clock: this.ctx.clock, prng: this.prng, maxOutstanding: Math.max(16, this.cfg.window), ...(this.cfg.coapTiming ? { timing: this.cfg.coapTiming } : {}) });
  }

  private requireClient(): CoapClient {
    if (!this.client || !this.client.isOpen) throw new Error('not connected');
    return this.client;
  }

  private withId(path: string): string {
    return this.cfg.server.kind === 'udp' ? `${path}?id=${encodeURIComponent(this.cfg.server.identity)}` : path;
  }

  /**
   * Observe the manifest; every decoded manifest goes to `onManifest`. `onLost` when the
   * connection or the observation ends (the chart reconnects: a new handshake over DTLS, then a
   * new registration). Returns the cleanup.
   *
   * The ota-sim profile also polls (a plain GET every pollInterval_ms): the fallback when
   * notifications stop. A poll that finds a manifest the observation did not deliver means the
   * server no longer notifies this registration (it restarted, lost the DTLS session, or the
   * device's address changed): the manifest is delivered and the Observe registered again. A
   * poll without an answer means the connection is gone (onLost). A failed re-registration is
   * not fatal: polling goes on. The golioth profile polls only when the server did not take the
   * registration (FORMATS.md: polling is an ota-sim extension).
   */
  watchManifest(onManifest: (m: { seq: number; offer: Offer | null }) => void, onLost: (why: string) => void): () => void {
    let stopped = false;
    let pollTimer: { cancel(): void } | null = null;
    let current: Observation | null = null;
    let lastPayload: Buffer | null = null;
    let reregistering = false;
    const path = this.withId('/.u/desired');
    const deliver = (payload: Buffer, via: 'registration' | 'notification' | 'poll'): void => {
      if (stopped) return;
      lastPayload = Buffer.from(payload);
      const m = decodeManifest(payload, this.cfg.package);
      if (typeof m === 'string') return;
      this.emit({ type: 'manifest', seq: m.seq, via, at_ms: this.now() });
      onManifest(m);
    };
    const lost = (why: string): void => {
      if (stopped) return;
      stopped = true;
      pollTimer?.cancel();
      onLost(why);
    };
    const register = async (via: 'registration'): Promise<Observation> => {
      let mine: Observation | null = null;
      const obs = await this.requireClient().observe({ path }, (n) => {
        if (mine !== null && mine === current) deliver(n.payload, 'notification');
      });
      mine = obs;
      if (stopped || this.dead) {
        if (!this.dead) void obs.cancel({ deregister: false });
        return obs;
      }
      if (obs.first.code !== '2.05') throw new Error(`manifest: the server answered ${obs.first.code}`);
      const old = current;
      // not registered (the server does not do Observe): nothing to watch, polls deliver
      current = obs.registered ? obs : null;
      this.observation = current;
      // the old registration is forgotten here; the server drops it at its next notification (RST)
      if (old) void old.cancel({ deregister: false });
      if (obs.registered) {
        void obs.ended.then((end) => {
          if (obs === current && end.kind !== 'cancelled') lost(`observation ended (${end.kind})`);
        });
      }
      deliver(obs.first.payload, via);
      return obs;
    };
    const poll = (): void => {
      pollTimer = this.ctx.clock.setTimeout(() => {
        if (stopped || !this.client) return;
        this.requireClient()
          .request({ method: 'GET', path })
          .then((r) => {
            if (stopped) return;
            if (r.code === '2.05' && (lastPayload === null || !lastPayload.equals(r.payload))) {
              deliver(r.payload, 'poll');
              if (!stopped && !reregistering && current !== null) {
                reregistering = true;
                register('registration')
                  .then(() => {
                    if (!stopped) this.emit({ type: 'reregistered', at_ms: this.now() });
                  })
                  .catch(() => {}) // polling goes on
                  .finally(() => (reregistering = false));
              }
            }
            if (!stopped) poll();
          })
          .catch((e: unknown) => lost(`manifest poll failed: ${e instanceof Error ? e.message : String(e)}`));
      }, this.cfg.pollInterval_ms);
    };
    register('registration')
      .then((obs) => {
        if (stopped) return;
        if (this.cfg.profile === 'ota-sim' || !obs.registered) poll();
      })
      .catch((e: unknown) => lost(e instanceof Error ? e.message : String(e)));
    return () => {
      stopped = true;
      pollTimer?.cancel();
      const o = current;
      current = null;
      this.observation = null;
      if (o && !this.dead) void o.cancel({ deregister: false });
    };
  }

  /** POST a report; resolves true when the server answered 2.xx (a 4.xx is shrugged off: false). */
  async report(report: SentReport): Promise<boolean> {
    return (await this.sendReport(report)) === 'delivered';
  }

  /**
   * POST a report: 'delivered' (2.xx), 'rejected' (4.xx: the server answered with a client
   * error, e.g. libcoap, which knows no reports; sending it again cannot help) or 'lost' (no
   * answer, or 5.xx).
   */
  private async sendReport(report: SentReport): Promise<'delivered' | 'rejected' | 'lost'> {
    const body = new Map<string, string | number>([
      ['s', report.s],
      ['r', report.r],
      ['pkg', report.pkg],
      ['v', report.v],
    ]);
    if (report.t !== null) body.set('t', report.t);
    let outcome: 'delivered' | 'rejected' | 'lost' = 'lost';
    try {
      const r = await this.requireClient().request({
        method: 'POST',
        path: this.withId(`/.u/c/${report.pkg}`),
        options: [{ number: OptionNumber.ContentFormat, value: Buffer.from([CBOR_FORMAT]) }],
        payload: Buffer.from(cborEncoder.encode(body)),
      });
      // 4.xx: the server will not take it (libcoap, which knows no reports, answers 4.04/4.06);
      // 5.xx: a server trouble that may pass, retried like no answer
      outcome = r.code.startsWith('2.') ? 'delivered' : r.code.startsWith('4.') ? 'rejected' : 'lost';
    } catch {
      outcome = 'lost';
    }
    if (!this.dead) this.emit({ type: 'report', report, delivered: outcome === 'delivered', at_ms: this.now() });
    return outcome;
  }

  reportOf(s: number, r: number, target: string | null): SentReport {
    return { s, r, pkg: this.cfg.package, v: this.version, t: target };
  }

  /** Send the outcome found on flash (success or failure) and mark it reported once a server answered it. */
  async reportOutcome(): Promise<boolean> {
    if (this.ramFailure !== null) {
      // defect failure-report-from-ram: only reachable within the boot that set it, which ends in a reset
      const v = this.ramFailure;
      this.ramFailure = null;
      return this.report(this.reportOf(ReportState.IDLE, ReportReason.FIRMWARE_UPDATE_FAILED, v));
    }
    const last = this.store.state.lastUpdate;
    if (!last || last.reported || inFlight(last.result)) return true;
    const s = last.result === 'confirmed' ? ReportState.UPDATING : ReportState.IDLE;
    const outcome = await this.sendReport(this.reportOf(s, last.reason, last.targetVersion));
    // retried later only when nothing (or a 5.xx) answered; a server that refused it with a 4.xx
    // has had its say (no endless re-sending to a server that does not take reports)
    if (outcome !== 'lost') await this.guarded(() => this.store.update({ lastUpdate: { ...last, reported: true } }));
    return outcome === 'delivered';
  }

  // --- decisions from flash --------------------------------------------------------------------

  /** Why `offer` is not acted on, or null if the agent should download it. */
  skipReason(offer: Offer): string | null {
    const cmp = compareVersionText(offer.version, this.version);
    if (this.cfg.profile === 'golioth') {
      if (offer.version === this.version || cmp === 0) return 'the offered version is the running one';
    } else {
      if (cmp === null) return 'the offered version does not parse';
      if (cmp <= 0) return 'the offered version is not newer';
      const hs = this.store.state.highestSeq;
      if (hs !== null && offer.seq < hs) return `stale manifest sequence ${offer.seq} < ${hs}`;
    }
    if (attemptsOf(this.store.state, offer.version) >= this.cfg.maxAttemptsPerVersion) return `version ${offer.version} was attempted ${this.cfg.maxAttemptsPerVersion} times`;
    return null;
  }

  /** Largest image slot1 can take (trailer, and swap-move's extra sector, reserved). */
  slotLimit_bytes(): number {
    const slot = this.ctx.flash.area('slot1');
    const board = this.ctx.flash.board;
    const trailer = trailerSize_bytes({ align: slot.writeSize as WriteAlign, maxAlign: board.mcuboot.maxAlign, maxSectors: board.mcuboot.maxSectors, overwriteOnly: this.cfg.strategy === 'overwrite-only' });
    const extra = this.cfg.strategy === 'swap-move' ? Math.max(...slot.sectors.map((s) => s.size)) : 0;
    return Math.min(slot.size, this.ctx.flash.area('slot0').size) - trailer - extra;
  }

  // --- download ------------------------------------------------------------------------------

  /** Where a download of `offer` starts: a persisted record for the same artifact resumes (ota-sim). */
  private startPoint(offer: Offer, slot: FlashArea): { block: number; etag: Buffer | null } {
    const d = this.store.state.download;
    const bs = this.cfg.blockSize_bytes;
    if (this.cfg.profile !== 'ota-sim' || !d) return { block: 0, etag: null };
    const same = d.targetVersion === offer.version && Buffer.from(d.sha256).toString('hex') === offer.sha256 && d.blockSize_bytes === bs && d.size_bytes === offer.size_bytes;
    if (!same || d.nextBlock === 0) return { block: 0, etag: null };
    // Blocks after the record may be written already (persisted every N blocks): restart at the
    // start of the sector holding the recorded block, which is erased again before it is written.
    const off = d.nextBlock * bs;
    const sector = slot.sectors.find((s) => off >= s.offset && off < s.offset + s.size);
    if (!sector || sector.offset % bs !== 0) return { block: 0, etag: null };
    return { block: sector.offset / bs, etag: d.etag ? Buffer.from(d.etag) : null };
  }

  /** Download `offer` into slot1. Resolves when every block is on flash. */
  async downloadOffer(offer: Offer): Promise<void> {
    const client = this.requireClient();
    const slot = this.ctx.flash.area('slot1');
    const bs = this.cfg.blockSize_bytes;
    const start = this.startPoint(offer, slot);
    const erased = new Set<number>();
    const sha = Uint8Array.from(Buffer.from(offer.sha256, 'hex'));
    const progress = (nextBlock: number, etag: Buffer | null): DownloadProgress => ({
      targetVersion: offer.version,
      sha256: sha,
      etag: etag ? Uint8Array.from(etag.subarray(0, 8)) : null,
      nextBlock,
      blockSize_bytes: bs,
      size_bytes: offer.size_bytes,
      manifestSeq: offer.seq,
    });
    const persist = !this.has('progress-never-persisted');
    // The first download of a boot that continues a record of the same offer (a power cut or a
    // reset interrupted it) costs no attempt: a brown-out loop must not use up a good version.
    // Every other start counts, so a download that keeps failing is bounded across polls.
    const rec = this.store.state.download;
    const continuing = !this.downloadedThisBoot && rec !== null && rec.targetVersion === offer.version && Buffer.from(rec.sha256).toString('hex') === offer.sha256;
    this.downloadedThisBoot = true;
    await this.guarded(() => {
      let s = continuing ? this.store.state : withAttempt(this.store.state, offer.version);
      s = { ...s, download: persist ? progress(start.block, start.etag) : null, highestSeq: Math.max(this.store.state.highestSeq ?? 0, offer.seq) };
      this.store.update(s);
      if (start.block === 0) {
        // a fresh start: the trailer area (and anything past the new image) must read erased
        for (const sec of slot.sectors) if (sec.offset + sec.size > offer.size_bytes && !isErased(slot, sec.offset, sec.size)) slot.erase(sec.offset, sec.size);
      }
    });
    this.emit({ type: 'download-start', version: offer.version, startBlock: start.block, at_ms: this.now() });
    // the ETag the download adopts from the first response goes into every progress record after
    // it, so a resume after a power cut notices a changed artifact (ETAG_CHANGED: start over at 0)
    let etag: Buffer | null = start.etag;
    const writeBlock = (num: number, bytes: Buffer): void => {
      const off = num * bs;
      if (off + bytes.length > offer.size_bytes || off + bytes.length > slot.size) throw new Error(`block ${num} goes past the announced size ${offer.size_bytes}`);
      for (const sec of slot.sectors) {
        if (sec.offset + sec.size <= off || sec.offset >= off + bytes.length || erased.has(sec.offset)) continue;
        slot.erase(sec.offset, sec.size); // just ahead of the write point
        erased.add(sec.offset);
      }
      const ws = slot.writeSize;
      const padded = bytes.length % ws === 0 ? bytes : Buffer.concat([bytes, Buffer.alloc(ws - (bytes.length % ws), slot.eraseValue)]);
      slot.write(off, padded);
    };
    try {
      const done = await download({
        client,
        uri: offer.uri,
        blockSize_bytes: bs,
        window: this.cfg.window,
        startBlock: start.block,
        etag: start.etag,
        blockRetryDelay_ms: this.cfg.blockRetryDelay_ms,
        maxBlockRetries: this.cfg.maxBlockRetries,
        signal: this.abortController.signal,
        onEtag: (e) => {
          etag = e;
        },
        onBlock: (num, bytes) =>
          this.guarded(() => {
            writeBlock(num, bytes);
            this.emit({ type: 'block', block: num, at_ms: this.now() });
            if (persist && (num + 1) % this.cfg.persistEvery_blocks === 0) this.store.update({ download: progress(num + 1, etag) });
          }),
        onProgress: () => {},
      });
      this.emit({ type: 'download-done', version: offer.version, startBlock: start.block, blocks: done.blocks, highWater_bytes: done.highWater_bytes, at_ms: this.now() });
    } catch (e) {
      if (e instanceof DownloadError && (e.reason === 'ETAG_CHANGED' || e.reason === 'SIZE_CHANGED')) {
        await this.guarded(() => this.store.update({ download: null }));
      }
      throw e;
    }
  }

  // --- verify, stage, confirm ---------------------------------------------------------------

  /** What can be refused before a byte is downloaded: the announced size must fit slot1. */
  precheck(offer: Offer): Verdict {
    if (offer.size_bytes > this.slotLimit_bytes()) return { ok: false, reason: ReportReason.NOT_ENOUGH_FLASH_MEMORY, message: `${offer.size_bytes} bytes do not fit slot1 (${this.slotLimit_bytes()} usable)` };
    return { ok: true };
  }

  verify(offer: Offer): Verdict {
    const slot = this.ctx.flash.area('slot1');
    if (this.has('pending-before-verify')) {
      const r = bootSetPending(this.ctx.flash, false, this.cfg.strategy); // the defect: trailer before verification
      if (r !== 'ok') throw new Error(`boot_set_pending: ${r}`);
    }
    const pre = this.precheck(offer);
    if (!pre.ok) return pre;
    const bytes = slot.read(0, offer.size_bytes);
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (digest !== offer.sha256) return { ok: false, reason: ReportReason.INTEGRITY_CHECK_FAILURE, message: `slot1 SHA-256 ${digest} differs from the manifest's ${offer.sha256}` };
    let v;
    try {
      v = verifyImage(bytes, this.cfg.trust);
    } catch (e) {
      return { ok: false, reason: ReportReason.UNSUPPORTED_PACKAGE_TYPE, message: e instanceof Error ? e.message : String(e) };
    }
    if (!v.valid) return { ok: false, reason: ReportReason.INTEGRITY_CHECK_FAILURE, message: `${v.reason ?? 'INVALID'}: ${v.message}` };
    let img;
    try {
      img = parseImage(bytes);
    } catch (e) {
      return { ok: false, reason: ReportReason.UNSUPPORTED_PACKAGE_TYPE, message: e instanceof Error ? e.message : String(e) };
    }
    if (img.board !== null && img.board !== this.cfg.board) return { ok: false, reason: ReportReason.UNSUPPORTED_PACKAGE_TYPE, message: `the image is for board ${img.board}, this is ${this.cfg.board}` };
    if (img.totalSize_bytes > this.slotLimit_bytes()) return { ok: false, reason: ReportReason.NOT_ENOUGH_FLASH_MEMORY, message: `the image (${img.totalSize_bytes} bytes) does not fit slot1` };
    const cmp = compareVersionText(img.version, this.version);
    if (this.cfg.profile === 'ota-sim' && (cmp === null || cmp <= 0)) return { ok: false, reason: ReportReason.FIRMWARE_UPDATE_FAILED, message: `the image's version ${img.version} is not newer than ${this.version}` };
    if (this.cfg.profile === 'golioth' && cmp === 0) return { ok: false, reason: ReportReason.FIRMWARE_UPDATE_FAILED, message: `the image's version ${img.version} is the running one` };
    return { ok: true };
  }

  /** Remember the refusal: the version is not tried again, the download record is dropped. */
  refuse(offer: Offer, reason: number): void {
    // one record: a cut cannot leave the cap without the outcome (or the outcome without the cap)
    this.store.update({ attempts: this.exhausted(offer.version).attempts, download: null, lastUpdate: { targetVersion: offer.version, fromVersion: this.version, result: 'failed', reason, reported: false } });
  }

  /** Record the pending test on flash, then ask the bootloader for a test swap. */
  stage(offer: Offer): void {
    this.store.update({ download: null, lastUpdate: { targetVersion: offer.version, fromVersion: this.version, result: 'pending-test', reason: ReportReason.READY, reported: false } });
    // overwrite-only cannot test-boot: the copy carries slot1's trailer into slot0, so only a
    // permanent request boots confirmed (image_ok cannot be written later over the copied block)
    const r = bootSetPending(this.ctx.flash, this.cfg.strategy === 'overwrite-only', this.cfg.strategy);
    if (r !== 'ok') throw new Error(`boot_set_pending: ${r}`);
  }

  confirm(): void {
    if (!bootIsImgConfirmed(this.ctx.flash, this.cfg.strategy)) {
      try {
        const r = bootSetConfirmed(this.ctx.flash, this.cfg.strategy);
        if (r !== 'ok') throw new Error(`boot_set_confirmed: ${r}`);
      } catch (e) {
        // overwrite-only has no revert: the copied image stays whatever image_ok says, so a
        // confirm that flash refuses (image_ok's block came over programmed in the copy of a
        // test request cut before its image_ok write) must not send the device rebooting into
        // the same image forever. Anything else (a power cut, another strategy) propagates.
        if (this.cfg.strategy !== 'overwrite-only' || !(e instanceof FlashError || (e instanceof Error && e.message.startsWith('boot_set_confirmed')))) throw e;
      }
    }
    const last = this.store.state.lastUpdate;
    this.store.update({
      download: null,
      lastUpdate: { targetVersion: this.version, fromVersion: last && sameVersionText(last.targetVersion, this.version) ? last.fromVersion : this.version, result: 'confirmed', reason: ReportReason.FIRMWARE_UPDATED_SUCCESSFULLY, reported: false },
    });
  }

  /** The swap the next boot will do (for diagnostics). */
  nextSwap(): number {
    return swapType(this.ctx.flash, this.cfg.strategy);
  }
}

function isErased(area: FlashArea, off: number, length: number): boolean {
  const b = area.read(off, length);
  for (let i = 0; i < b.length; i++) if (b[i] !== area.eraseValue) return false;
  return true;
}

/** An update between its staging and its outcome: nothing to report yet. */
export function inFlight(result: UpdateResult): boolean {
  return result === 'pending-test' || result === 'testing' || result === 'self-test-failed';
}
