/**
 * DeviceRecorder: attaches to one simulated device and gathers the oracle's evidence from FLASH
 * and DEVICE facts, never from the agent's account of itself:
 * - every flash op, read back from the flash journal as it happens (Flash.onCost, chained), is
 *   classified by where it lands and who ran it: the bootloader (device booting) or the firmware;
 *   firmware writes to slot1 below the trailer are download bytes, a write at slot1 offset 0 starts
 *   a download, writes to slot1's trailer stage, writes to slot0 confirm; boot ops become `swap`
 *   or `revert` by the action of the boot they belong to;
 * - at every boot it reads slot0's image bytes and verifies them itself (invariant 2);
 * - it snapshots the storage partition at start (invariant 5);
 * - a bounded timeline for the reports: agent states as spans, flash phases, boots, power cuts,
 *   reboots, reports, faults.
 * Agent events are used for the timeline and as a secondary count (`agentDownloads`) only.
 */
import { boot } from '../boot/boot.js';
import type { BootOptions, BootResult } from '../boot/boot.js';
import { bootIsImgConfirmed } from '../boot/public.js';
import type { TrustedKey } from '../boot/validate.js';
import type { AgentEvent } from '../agent/types.js';
import type { Clock } from '../clock.js';
import type { Device } from '../device/device.js';
import { OtaSimError } from '../errors.js';
import { PowerCut } from '../flash/errors.js';
import type { Flash, JournalCursor } from '../flash/flash.js';
import { OpKind } from '../flash/journal.js';
import type { JournalEntry } from '../flash/journal.js';
import type { PartitionName, Strategy } from '../flash/types.js';
import { trailerSize_bytes } from '../image/pad.js';
import type { WriteAlign } from '../image/pad.js';
import { VerifyMemo, trustStoreOf, verifyImage } from '../image/verify.js';
import type { TrustStore } from '../image/verify.js';
import type { ReportRecord } from '../server/types.js';
import type { DeviceResult, TimelineEvent, TimelineKind } from './result.js';

/** Phase of one flash op. `record`: the agent's ota-state bookkeeping outside the update's phases; `boot`: a bootloader op of a boot that did not swap. */
export type OpPhase = 'download' | 'stage' | 'swap' | 'confirm' | 'revert' | 'record' | 'boot' | 'other';

/** One flash op as the recorder saw it (index: position in the flash journal since the recorder started). */
export interface OpFact {
  index: number;
  phase: OpPhase;
  by: 'boot' | 'firmware';
  kind: 'write' | 'erase' | 'torn-write' | 'torn-erase' | 'failed';
  partition: PartitionName | null;
  /** Offset inside the partition. */
  offset: number;
  length: number;
  /** Download bytes this op put into slot1 (firmware writes below the trailer). */
  downloadBytes: number;
  /** A firmware write at slot1 offset 0: a download (re)started from its first block. */
  downloadStart: boolean;
}

/** One boot seen: what ran, from flash. */
export interface BootFact {
  at_ms: number;
  /** Ops recorded before this boot completed (ops with index < afterOps happened before it ran). */
  afterOps: number;
  version: string;
  /** slot0 image_ok read SET at boot. */
  confirmed: boolean;
  action: string;
  resumed: boolean;
  /** slot0's bytes verified (hash and trusted signature) by the recorder itself. */
  verified: boolean;
  verifyMessage: string;
  /** The firmware of this boot wrote slot0 and image_ok then read SET (a confirm seen on flash). */
  confirmedWhileRunning: boolean;
  /** Index of the op after which image_ok first read SET while this boot's firmware ran (null: never). */
  confirmedAtOp?: number | null;
}

/** Evidence carried into a recorder from before its flash was rebuilt (whole-update sweeps). */
export interface RecorderPrior {
  boots: BootFact[];
  reboots: number;
  downloads: number;
  bytesDownloaded: number;
  powerCuts: number;
  /** slot0's image_ok was SET when the prefix ended (the running image had been confirmed). */
  runningConfirmed: boolean;
}

export interface DeviceRecorderOptions {
  id: string;
  group: string;
  board: string;
  strategy: Strategy;
  device: Device;
  flash: Flash;
  trustedKeys: readonly TrustedKey[];
  /** The scenario clock; at_ms = clock.now() - startedAt_ms. */
  clock: Clock;
  startedAt_ms: number;
  initialVersion: string;
  /** Further bootloader options the device uses (validatePrimary, defects ...), for the final boot on a clone. */
  bootOptions?: Omit<BootOptions, 'strategy' | 'trustedKeys'>;
  /** Storage bytes to compare against (default: the storage partition now). */
  storageBaseline?: Uint8Array | null;
  /** Evidence from before this flash was rebuilt (sweeps). */
  prior?: RecorderPrior;
  /** Timeline cap (default 2000 events). */
  maxTimelineEvents?: number;
}

/** What the bootloader does with the flash now, judged on a clone (the device is not touched). */
export interface FinalState {
  booted: boolean;
  /** Why nothing boots (null when it booted). */
  reason: string | null;
  version: string | null;
  confirmed: boolean;
  action: string | null;
  /** slot0 verified by the recorder (hash and trusted signature). */
  verified: boolean;
  verifyMessage: string;
}

const DEFAULT_TIMELINE_CAP = 2000;
const MAX_TIMELINE_CAP = 100_000;
/** Ops kept in `ops` at most (a runaway scenario must not eat the memory; counts stay exact). */
const MAX_OP_FACTS = 1_000_000;

const sharedMemo = new VerifyMemo();

/** Verify slot0's bytes of `flash` with the trusted keys (the image ends inside the slot; trailing bytes are ignored). */
export function verifySlot0(flash: Flash, trustedKeys: readonly TrustedKey[]): { ok: boolean; message: string; version: string | null } {
  const slot = flash.area('slot0');
  try {
    const r = verifyImage(slot.read(0, slot.size), trustStoreOf(trustedKeys), { memo: sharedMemo });
    return { ok: r.valid, message: r.message, version: r.version };
  } catch (e) {
    return { ok: false, message: e instanceof Error ? e.message : String(e), version: null };
  }
}

/** Run the bootloader on a clone of `flash` and say what it boots (the flash itself is untouched). */
export function finalStateOf(flash: Flash, strategy: Strategy, trustedKeys: readonly TrustedKey[], bootOptions: Omit<BootOptions, 'strategy' | 'trustedKeys'> = {}): FinalState {
  const clone = flash.clone({ journal: false, strict: false });
  clone.disarmPowerCut();
  clone.powerOn();
  let r: BootResult;
  try {
    r = boot(clone, { ...bootOptions, strategy, trustedKeys });
  } catch (e) {
    if (!(e instanceof OtaSimError) && !(e instanceof PowerCut)) throw e;
    return { booted: false, reason: `the bootloader stopped: ${e.message}`, version: null, confirmed: false, action: null, verified: false, verifyMessage: 'not booted' };
  }
  if (r.kind !== 'booted') return { booted: false, reason: r.reason, version: null, confirmed: false, action: r.action, verified: false, verifyMessage: 'not booted' };
  const v = verifySlot0(clone, trustedKeys);
  return {
    booted: true,
    reason: null,
    version: v.version ?? `${r.header.version.major}.${r.header.version.minor}.${r.header.version.revision}+${r.header.version.build}`,
    confirmed: bootIsImgConfirmed(clone, strategy),
    action: r.action,
    verified: v.ok,
    verifyMessage: v.message,
  };
}

/** The flash itself when powered, else a powered copy-on-write clone (reads need power). */
function readable(flash: Flash): Flash {
  if (flash.powered) return flash;
  const c = flash.clone({ journal: false });
  c.powerOn();
  return c;
}

const KIND_NAMES: Record<number, OpFact['kind']> = {
  [OpKind.Write]: 'write',
  [OpKind.Erase]: 'erase',
  [OpKind.TornWrite]: 'torn-write',
  [OpKind.TornErase]: 'torn-erase',
  [OpKind.Failed]: 'failed',
};

interface PartRange {
  name: PartitionName;
  chip: number;
  offset: number;
  size: number;
}

export class DeviceRecorder {
  readonly timeline: TimelineEvent[] = [];
  /** Timeline events not kept because the cap was reached. */
  timelineDropped = 0;
  readonly onAgentEvent: (e: AgentEvent) => void;
  /** Every flash op seen, oldest first (bounded by MAX_OP_FACTS). */
  readonly ops: OpFact[] = [];
  /** Every boot seen, oldest first, including the prior ones. */
  readonly boots: BootFact[];
  /** Counts from flash facts (plus the prior's). */
  reboots: number;
  downloads: number;
  bytesDownloaded: number;
  powerCuts: number;
  netFaults = 0;
  /** Secondary source: the agent's own 'download-start' events with startBlock 0. */
  agentDownloads = 0;
  /** The device ended in a boot loop / bricked (device events). */
  bootLoop = false;
  brickedEvent: string | null = null;
  readonly faults: { at_ms: number; kind: string; label: string }[] = [];
  /** The version running since the last boot (null after a reset, cut or brick until the next boot). */
  lastRunning: string | null = null;
  /** Ops seen before each reboot (a reboot at n happened after ops 0..n-1). */
  readonly rebootOps: number[] = [];
  /** Where this recorder's evidence is thin (e.g. no flash journal). */
  readonly notes: string[] = [];

  private readonly o: DeviceRecorderOptions;
  private readonly cap: number;
  private readonly parts: PartRange[];
  private readonly slot1TrailerStart: number;
  private readonly storage: Uint8Array | null;
  private cursor: JournalCursor | null = null;
  private opCount = 0;
  private pendingBootOps: OpFact[] = [];
  private agentState: string | null = null;
  private stateSpan: TimelineEvent | null = null;
  private phaseSpan: { event: TimelineEvent; phase: OpPhase } | null = null;
  private bootStarted_ms: number | null = null;
  private runningConfirmed: boolean;
  private readonly cutOps = new Set<number>();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(o: DeviceRecorderOptions) {
    this.o = o;
    this.cap = Math.min(MAX_TIMELINE_CAP, Math.max(1, o.maxTimelineEvents ?? DEFAULT_TIMELINE_CAP));
    const prior = o.prior;
    this.boots = prior ? [...prior.boots] : [];
    this.reboots = prior?.reboots ?? 0;
    this.downloads = prior?.downloads ?? 0;
    this.bytesDownloaded = prior?.bytesDownloaded ?? 0;
    this.powerCuts = prior?.powerCuts ?? 0;
    this.runningConfirmed = prior?.runningConfirmed ?? false;
    const flash = o.flash;
    const chipIndex = new Map(flash.board.flash.map((s, i) => [s.id, i]));
    this.parts = (Object.entries(flash.board.partitions) as [PartitionName, { device: string; offset: number; size: number }][]).map(([name, p]) => ({
      name,
      chip: chipIndex.get(p.device) ?? -1,
      offset: p.offset,
      size: p.size,
    }));
    const slot1 = flash.area('slot1');
    const mc = flash.board.mcuboot;
    this.slot1TrailerStart =
      slot1.size - trailerSize_bytes({ align: slot1.writeSize as WriteAlign, maxAlign: mc.maxAlign, maxSectors: mc.maxSectors, overwriteOnly: o.strategy === 'overwrite-only' });
    this.storage = o.storageBaseline !== undefined ? o.storageBaseline : flash.hasPartition('storage') ? Uint8Array.from(readable(flash).area('storage').read(0, flash.area('storage').size)) : null;
    // Ops already in the journal (factory programming) are not this device's doing.
    try {
      this.cursor = flash.cursor();
      this.cursor.advance(flash.journalLength);
    } catch {
      this.cursor = null;
      this.notes.push('the flash keeps no journal: downloads and bytes are counted from the agent\'s download-start events (its own account)');
    }
    const previous = flash.onCost;
    flash.onCost = (cost_us) => {
      previous?.(cost_us);
      this.syncOps();
    };
    this.unsubscribe.push(() => {
      flash.onCost = previous;
    });
    const d = o.device;
    this.unsubscribe.push(
      d.on('booted', (e) => this.onBooted(e.version, e.confirmed, e.image.bootAction, e.image.resumed)),
      d.on('reboot', (e) => {
        this.syncOps();
        this.endSpans();
        this.reboots++;
        this.rebootOps.push(this.opCount);
        this.lastRunning = null;
        this.push({ at_ms: this.now(), kind: 'reboot', label: e.reason, detail: { reboots: this.reboots } });
        this.bootStarted_ms = this.now();
      }),
      d.on('watchdog', (e) => this.push({ at_ms: this.now(), kind: 'reboot', label: `watchdog (${e.cause})` })),
      d.on('power-cut', (e) => {
        this.syncOps();
        this.endSpans();
        this.powerCuts++;
        this.cutOps.add(e.opIndex);
        this.lastRunning = null;
        this.push({ at_ms: this.now(), kind: 'power-cut', label: `power cut at flash op ${e.opIndex} (${e.during})`, detail: { opIndex: e.opIndex, during: e.during } });
      }),
      d.on('bricked', (e) => {
        this.syncOps();
        this.resolveBootOps('boot');
        this.brickedEvent = e.reason;
        this.lastRunning = null;
        this.push({ at_ms: this.now(), kind: 'boot', label: 'no bootable image', detail: { reason: e.reason } });
      }),
      d.on('boot-loop', (e) => {
        this.syncOps();
        this.endSpans();
        this.bootLoop = true;
        this.lastRunning = null;
        this.push({ at_ms: this.now(), kind: 'reboot', label: `boot loop after ${e.reboots} reboots` });
      }),
    );
    this.bootStarted_ms = this.now();
    this.onAgentEvent = (e) => this.agentEvent(e);
  }

  /** Stop listening (the device and flash keep working). */
  detach(): void {
    this.syncOps();
    for (const u of this.unsubscribe.splice(0)) u();
  }

  /** The runner notes each injected fault; a power cut it makes with device.powerCut() should be noted before the device powers on again. */
  noteFault(kind: string, label: string, detail?: Record<string, string | number | boolean | null>): void {
    this.syncOps();
    const at_ms = this.now();
    this.faults.push({ at_ms, kind, label });
    let tk: TimelineKind = 'fault';
    if (/^(power|torn|brown)/.test(kind)) {
      tk = 'power-cut';
      const op = detail?.['opIndex'];
      // a cut armed on the flash is already counted from the device's event
      if (!(typeof op === 'number' && this.cutOps.has(op))) this.powerCuts++;
      this.endSpans();
      this.lastRunning = null;
      this.bootStarted_ms = at_ms;
    } else if (/^(net|loss|burst|delay|jitter|dup|reorder|corrupt|blackhole|rebind|link)/.test(kind)) {
      tk = 'net-fault';
      this.netFaults++;
    } else if (/^(server|release|rollout|rollback)/.test(kind)) {
      tk = 'server';
    }
    this.push({ at_ms, kind: tk, label, detail: { fault: kind, ...(detail ?? {}) } });
  }

  /** The ops seen so far (journal positions 0..n-1 since the recorder started). */
  get opsSeen(): number {
    this.syncOps();
    return this.opCount;
  }

  /** Downloads started from the first block: from flash facts, or the agent's events when the flash keeps no journal. */
  get downloadCount(): number {
    return this.cursor ? this.downloads : this.agentDownloads;
  }

  /** slot0's image_ok was SET while the current (or last) image ran. */
  get confirmedNow(): boolean {
    return this.runningConfirmed;
  }

  /** What the bootloader would boot now (on a clone). */
  finalState(): FinalState {
    this.syncOps();
    return finalStateOf(this.o.flash, this.o.strategy, this.o.trustedKeys, this.o.bootOptions);
  }

  /** Whether the storage partition still holds its bytes from the start (null: the board has none). */
  storageChange(): { unchanged: boolean; firstDiff: number } | null {
    if (this.storage === null || !this.o.flash.hasPartition('storage')) return null;
    const area = readable(this.o.flash).area('storage');
    const now = area.read(0, area.size);
    const n = Math.min(now.length, this.storage.length);
    for (let i = 0; i < n; i++) if (now[i] !== this.storage[i]) return { unchanged: false, firstDiff: i };
    return now.length === this.storage.length ? { unchanged: true, firstDiff: -1 } : { unchanged: false, firstDiff: n };
  }

  get options(): Readonly<DeviceRecorderOptions> {
    return this.o;
  }

  /** DeviceResult for the report; `reports` are the server's records of this device. */
  result(reports: ReportRecord[]): DeviceResult {
    const f = this.finalState();
    // open spans end now (they may go on if the device keeps running)
    const now = this.now();
    if (this.stateSpan) this.stateSpan.end_ms = Math.max(this.stateSpan.at_ms, now);
    if (this.phaseSpan) this.phaseSpan.event.end_ms = Math.max(this.phaseSpan.event.at_ms, now);
    return {
      id: this.o.id,
      group: this.o.group,
      board: this.o.board,
      strategy: this.o.strategy,
      initialVersion: this.o.initialVersion,
      finalVersion: f.booted ? f.version : null,
      confirmed: f.booted && f.confirmed,
      bricked: !f.booted,
      reboots: this.reboots,
      downloads: this.downloadCount,
      bytesDownloaded: this.bytesDownloaded,
      powerCuts: this.powerCuts,
      netFaults: this.netFaults,
      reports: reports
        .filter((r) => r.report !== null)
        .map((r) => ({ at_ms: r.at_ms - this.o.startedAt_ms, s: r.report!.s, r: r.report!.r, v: r.report!.v ?? '', t: r.report!.t })),
      timeline: [...this.timeline],
      ...(this.timelineDropped > 0 ? { timelineDropped: this.timelineDropped } : {}),
    };
  }

  // --- internals -------------------------------------------------------------------------

  private now(): number {
    return this.o.clock.now() - this.o.startedAt_ms;
  }

  private push(e: TimelineEvent): void {
    if (this.timeline.length >= this.cap) {
      this.timelineDropped++;
      return;
    }
    this.timeline.push(e);
  }

  private endSpans(): void {
    const now = this.now();
    if (this.stateSpan) {
      this.stateSpan.end_ms = Math.max(this.stateSpan.at_ms, now);
      this.stateSpan = null;
    }
    if (this.phaseSpan) {
      this.phaseSpan.event.end_ms = Math.max(this.phaseSpan.event.at_ms, now);
      this.phaseSpan = null;
    }
    this.agentState = null;
  }

  private partitionOf(entry: JournalEntry): PartRange | null {
    for (const p of this.parts) if (p.chip === entry.chip && entry.addr >= p.offset && entry.addr < p.offset + p.size) return p;
    return null;
  }

  /** Read the journal up to now and classify each new op. */
  private syncOps(): void {
    const cur = this.cursor;
    if (!cur) return;
    const flash = this.o.flash;
    if (flash.journalLength < cur.position) {
      // someone restarted the journal (a dump loaded): follow from there
      this.cursor = flash.cursor();
      this.notes.push('the flash journal was restarted while recording');
      return;
    }
    for (let guard = 0; cur.position < flash.journalLength && guard < 10_000_000; guard++) {
      const entry = cur.peek()!;
      this.classify(entry);
      cur.advance(1);
    }
  }

  private classify(entry: JournalEntry): void {
    const part = this.partitionOf(entry);
    const offset = part ? entry.addr - part.offset : entry.addr;
    const booting = this.o.device.phase === 'booting';
    const kind = KIND_NAMES[entry.kind] ?? 'failed';
    const fact: OpFact = { index: this.opCount++, phase: 'other', by: booting ? 'boot' : 'firmware', kind, partition: part?.name ?? null, offset, length: entry.length, downloadBytes: 0, downloadStart: false };
    if (booting) {
      fact.phase = 'boot';
      this.pendingBootOps.push(fact);
    } else if (part?.name === 'slot1') {
      const write = kind === 'write' || kind === 'torn-write';
      if (write && offset >= this.slot1TrailerStart) fact.phase = 'stage';
      else if (!write && this.agentState === 'staging') fact.phase = 'stage';
      else {
        fact.phase = 'download';
        if (write && kind === 'write') {
          fact.downloadBytes = Math.min(entry.length, this.slot1TrailerStart - offset);
          this.bytesDownloaded += fact.downloadBytes;
          if (offset === 0) {
            fact.downloadStart = true;
            this.downloads++;
          }
        }
      }
    } else if (part?.name === 'slot0') {
      fact.phase = 'confirm';
        if (kind === 'write' && bootIsImgConfirmed(readable(this.o.flash), this.o.strategy)) {
        this.runningConfirmed = true;
        const last = this.boots[this.boots.length - 1];
        if (last && !last.confirmedWhileRunning) {
          last.confirmedWhileRunning = true;
          last.confirmedAtOp = fact.index;
        }
      }
    } else if (part?.name === 'ota-state') {
      const s = this.agentState;
      fact.phase = s === 'downloading' ? 'download' : s === 'staging' ? 'stage' : s === 'confirming' ? 'confirm' : 'record';
    }
    if (this.ops.length < MAX_OP_FACTS) this.ops.push(fact);
    if (!booting) this.notePhase(fact.phase);
  }

  private notePhase(phase: OpPhase): void {
    if (phase === 'record' || phase === 'other' || phase === 'boot') return;
    const now = this.now();
    if (this.phaseSpan && this.phaseSpan.phase === phase) {
      this.phaseSpan.event.end_ms = now;
      return;
    }
    if (this.phaseSpan) this.phaseSpan.event.end_ms = now;
    const event: TimelineEvent = { at_ms: now, kind: 'flash-phase', label: phase, end_ms: now };
    this.phaseSpan = { event, phase };
    this.push(event);
  }

  /** Pending boot ops get the phase of the boot that completed them. */
  private resolveBootOps(phase: OpPhase): number {
    const n = this.pendingBootOps.length;
    for (const f of this.pendingBootOps) f.phase = phase;
    this.pendingBootOps = [];
    return n;
  }

  private onBooted(version: string, confirmed: boolean, action: string, resumed: boolean): void {
    this.syncOps();
    const at_ms = this.now();
    const phase: OpPhase = action === 'revert' ? 'revert' : action === 'test' || action === 'perm' ? 'swap' : 'boot';
    const bootOps = this.resolveBootOps(phase);
    if (bootOps > 0 && phase !== 'boot') {
      this.push({ at_ms: this.bootStarted_ms ?? at_ms, kind: 'flash-phase', label: phase, end_ms: at_ms, detail: { ops: bootOps } });
    }
    const v = verifySlot0(readable(this.o.flash), this.o.trustedKeys);
    this.runningConfirmed = confirmed;
    this.lastRunning = version;
    this.boots.push({ at_ms, afterOps: this.opCount, version, confirmed, action, resumed, verified: v.ok, verifyMessage: v.message, confirmedWhileRunning: false, confirmedAtOp: null });
    this.push({
      at_ms,
      kind: 'boot',
      label: `${version} ${confirmed ? 'confirmed' : 'test'}${action !== 'none' ? ` (${action}${resumed ? ', resumed' : ''})` : ''}`,
      detail: { version, confirmed, action, resumed, verified: v.ok },
    });
    this.bootStarted_ms = null;
  }

  private agentEvent(e: AgentEvent): void {
    const at_ms = this.now();
    switch (e.type) {
      case 'state': {
        this.syncOps();
        if (this.stateSpan) this.stateSpan.end_ms = Math.max(this.stateSpan.at_ms, at_ms);
        this.agentState = e.state;
        const span: TimelineEvent = { at_ms, kind: 'agent-state', label: e.state, end_ms: at_ms };
        this.stateSpan = span;
        this.push(span);
        break;
      }
      case 'download-start':
        if (e.startBlock === 0) this.agentDownloads++;
        break;
      case 'report':
        this.push({ at_ms, kind: 'report', label: `s=${e.report.s} r=${e.report.r} v=${e.report.v}${e.report.t !== null ? ` t=${e.report.t}` : ''}`, detail: { delivered: e.delivered } });
        break;
      case 'refused':
        this.push({ at_ms, kind: 'fault', label: `refused ${e.version}: ${e.message}` });
        break;
      case 'rollback':
        this.push({ at_ms, kind: 'agent-state', label: `rollback: ${e.why}` });
        break;
      default:
        break;
    }
  }
}
