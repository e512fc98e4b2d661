/**
 * Sweeps of the whole update (`ota-sim sweep SCENARIO`): a power cut at every flash op of the
 * chosen phases of a complete OTA over the real network, not just the bootloader.
 *
 * 1. One clean run: a device on the initial image, the agent, the embedded server offering the
 *    target; the flash journal records every op from the start and the DeviceRecorder tags each
 *    with its phase (download, stage, swap, confirm, revert, or record/boot bookkeeping).
 * 2. For each cut point k of the chosen phases: the flash after ops 0..k-1 from a journal cursor
 *    (a copy-on-write clone, no re-run); with --torn also op k torn at each write block, or with
 *    seeded partial-erase patterns. A fresh Device + agent (its own identity on the server) powers
 *    on that flash and runs the rest of the update until it settles; then the oracle judges it,
 *    with the clean run's evidence before k (boots, reboots, download bytes) carried in.
 * Cases run a few at a time (each has its own sockets and identity); verdicts do not depend on
 * the order, so results are listed by cut point.
 */
import type { AgentDefect } from '../agent/types.js';
import { AGENT_DEFECTS } from '../agent/types.js';
import { BOOT_DEFECTS } from '../boot/context.js';
import type { BootDefect } from '../boot/context.js';
import { programSlot } from '../boot/program.js';
import { InputError } from '../errors.js';
import { PowerCut } from '../flash/errors.js';
import { Flash } from '../flash/flash.js';
import { OpKind } from '../flash/journal.js';
import type { JournalEntry } from '../flash/journal.js';
import { createHash } from 'node:crypto';
import { mixSeed } from '../prng.js';
import { checkOracle } from './oracle.js';
import type { OracleExpectation } from './oracle.js';
import type { BootFact, DeviceRecorder, OpFact, OpPhase, RecorderPrior } from './recorder.js';
import type { InvariantId } from './result.js';
import { UpdateWorld, defaultLimits } from './sweep-world.js';
import type { DeviceRun, UpdateCaseSpec } from './sweep-world.js';

export const UPDATE_PHASES = ['download', 'stage', 'swap', 'confirm', 'revert'] as const;
export type UpdatePhase = (typeof UPDATE_PHASES)[number];
export type UpdatePhaseArg = UpdatePhase | 'all';
export type AnyDefect = BootDefect | AgentDefect;

export interface UpdateSweepOptions {
  spec: UpdateCaseSpec;
  phase: UpdatePhaseArg;
  torn?: boolean;
  /** Bootloader (BOOT_DEFECTS) and agent (AGENT_DEFECTS) defects. */
  defects?: readonly string[];
  seed?: number;
  /** Seeded partial-erase patterns per erase with `torn` (default 3). */
  erasePatterns?: number;
  /** Only cut at op indices in [fromOp, toOp) of the clean run. */
  fromOp?: number;
  toOp?: number;
  /** Only this case (a replay). */
  cut?: { opIndex: number; block: number | null };
  /** Cases run at once (default 4, 1..32). */
  concurrency?: number;
  /** The command that names this sweep (replays append --cut): e.g. "ota-sim sweep scenarios/x.yaml". */
  command: string;
  maxViolations?: number;
  onProgress?: (done: number, total: number) => void;
  /** Real-time bound of one case (default 60 s). */
  caseWallLimit_ms?: number;
  /** Tell the clean run step by step in `narrative` (`--cut clean`). */
  narrateClean?: boolean;
  /** Called with each case's recorder once judged (a replay prints its narrative from it). */
  onCase?: (c: { opIndex: number | null; block: number | null; phase: OpPhase | 'clean' }, recorder: DeviceRecorder) => void;
}

export interface UpdateSweepViolation {
  invariant: InvariantId | 'settles';
  /** Op index of the clean run the cut was placed at (ops 0..opIndex-1 happened); null for the clean run itself. */
  opIndex: number | null;
  block: number | null;
  phase: OpPhase | 'clean';
  device: string;
  message: string;
  replay: string;
}

export interface UpdateSweepReport {
  name: string;
  board: string;
  strategy: string;
  transport: string;
  phase: UpdatePhaseArg;
  torn: boolean;
  seed: number;
  defects: string[];
  /** Flash ops of the clean run, by phase. */
  opsByPhase: Record<string, number>;
  /** Index of the first op of each phase in the clean run. */
  firstOpByPhase: Record<string, number>;
  ops: number;
  cases: number;
  durationMs: number;
  casesPerSecond: number;
  violations: UpdateSweepViolation[];
  notes: string[];
  /** Per case verdict, "op[:block] invariant,invariant" (determinism checks). */
  verdicts: string[];
  /** SHA-256 over the clean run's ops (kind, partition, offset, length, phase): the same on every run of the same scenario. */
  cleanRunDigest: string;
  /** With `cut`: what happened in that case, step by step (from its recorder's timeline). */
  narrative: string[];
}

function splitDefects(names: readonly string[]): { boot: BootDefect[]; agent: AgentDefect[] } {
  const boot: BootDefect[] = [];
  const agent: AgentDefect[] = [];
  for (const n of names) {
    if ((BOOT_DEFECTS as readonly string[]).includes(n)) boot.push(n as BootDefect);
    else if ((AGENT_DEFECTS as readonly string[]).includes(n)) agent.push(n as AgentDefect);
    else throw new InputError('UNKNOWN_DEFECT', `--defect ${n}: unknown; bootloader defects: ${BOOT_DEFECTS.join(', ')}; agent defects: ${AGENT_DEFECTS.join(', ')}`);
  }
  return { boot, agent };
}

/** The command that replays one case exactly. */
export function updateReplayCommand(o: UpdateSweepOptions, phase: UpdatePhaseArg, cut: { opIndex: number; block: number | null } | null): string {
  const parts = [o.command, `--phase ${phase}`];
  if ((cut && cut.block !== null) || o.torn) parts.push('--torn');
  for (const d of o.defects ?? []) parts.push(`--defect ${d}`);
  parts.push(`--seed ${o.seed ?? 1}`);
  if (cut) parts.push(`--cut ${cut.opIndex}${cut.block !== null ? `:${cut.block}` : ''}`);
  else parts.push('--cut clean');
  return parts.join(' ');
}

interface CleanRun {
  /** The flash as it was before the update (journal started there) and after it (journal of every op). */
  reference: Flash;
  recorder: DeviceRecorder;
  ops: OpFact[];
  rebootsAt: number[];
  storage: Uint8Array | null;
}

/** The clean run's evidence before op k (a cut there), for the case's recorder. */
function priorAt(clean: CleanRun, k: number): RecorderPrior {
  const boots: BootFact[] = clean.recorder.boots
    .filter((b) => b.afterOps <= k)
    .map((b) => ({ ...b, confirmedWhileRunning: b.confirmedAtOp !== undefined && b.confirmedAtOp !== null && b.confirmedAtOp < k }));
  let downloads = 0;
  let bytes = 0;
  for (const f of clean.ops) {
    if (f.index >= k) break;
    if (f.downloadStart) downloads++;
    bytes += f.downloadBytes;
  }
  const last = boots[boots.length - 1];
  return {
    boots,
    reboots: clean.rebootsAt.filter((r) => r <= k).length,
    downloads,
    bytesDownloaded: bytes,
    powerCuts: 1,
    runningConfirmed: last ? last.confirmed || last.confirmedWhileRunning : false,
  };
}

function expectationOf(spec: UpdateCaseSpec, cutPhase: OpPhase | null): OracleExpectation {
  return {
    targetVersion: spec.to.version,
    previousVersion: spec.from.version,
    targetFails: spec.targetFails,
    mustConverge: true,
    limits: spec.limits ?? defaultLimits(spec, cutPhase),
  };
}

function tornVariants(flash: Flash, entry: JournalEntry, erasePatterns: number): number {
  if (entry.kind === OpKind.Write) return entry.length / flash.board.flash[entry.chip]!.writeSize;
  if (entry.kind === OpKind.Erase) return erasePatterns;
  return 0;
}

/** Op k cut by power inside it: write blocks before `block` land, `block` is torn; an erase stops part way (seeded). */
function applyTornCut(f: Flash, entry: JournalEntry, seed: number, k: number, block: number): void {
  const device = f.board.flash[entry.chip]!.id;
  const cutSeed = mixSeed(seed, k, block);
  f.armPowerCut(entry.kind === OpKind.Write ? { atOp: f.opIndex, kind: 'inside', seed: cutSeed, block } : { atOp: f.opIndex, kind: 'inside', seed: cutSeed });
  try {
    if (entry.kind === OpKind.Write) f.write(device, entry.addr, entry.data!);
    else f.erase(device, entry.addr, entry.length);
    throw new Error(`assertion failed: the power cut inside op ${k} did not fire`);
  } catch (err) {
    if (!(err instanceof PowerCut)) throw err;
  }
  f.powerOn();
}

function checkOptions(o: UpdateSweepOptions): void {
  if (!(o.phase === 'all' || (UPDATE_PHASES as readonly string[]).includes(o.phase))) {
    throw new InputError('BAD_PHASE', `--phase: expected one of ${UPDATE_PHASES.join(', ')}, all; got ${String(o.phase)}`);
  }
  const seed = o.seed ?? 1;
  if (!(Number.isSafeInteger(seed) && seed >= 0)) throw new InputError('BAD_SEED', `--seed must be a whole number >= 0, got ${seed}`);
  const c = o.concurrency ?? 4;
  if (!(Number.isInteger(c) && c >= 1 && c <= 32)) throw new InputError('BAD_ARGUMENT', `concurrency must be 1..32, got ${c}`);
  const ep = o.erasePatterns ?? 3;
  if (!(Number.isInteger(ep) && ep >= 1 && ep <= 1000)) throw new InputError('BAD_ERASE_PATTERNS', `erase patterns must be a whole number in 1..1000, got ${ep}`);
}

/** A replayed case told step by step: the cut, then the device's timeline (agent states folded). */
function narrate(clean: CleanRun, c: CaseDef, entry: JournalEntry, rec: DeviceRecorder): string[] {
  const f = clean.ops[c.opIndex!]!;
  const out: string[] = [];
  const at = `${f.partition ?? 'flash'}+0x${f.offset.toString(16)}`;
  out.push(`clean run: ${clean.ops.length} flash ops; the flash is rebuilt after ops 0..${c.opIndex! - 1}; op ${c.opIndex} is ${f.by === 'boot' ? 'a bootloader' : 'a firmware'} ${f.kind} of ${f.length} bytes at ${at} (phase ${f.phase})`);
  out.push(
    c.block === null
      ? `power cut before op ${c.opIndex}: it does not happen`
      : entry.kind === OpKind.Write
        ? `power cut inside op ${c.opIndex}: write blocks 0..${c.block - 1} land, block ${c.block} is torn (a seeded subset of its bits)`
        : `power cut inside op ${c.opIndex}: the erase stops part way (seeded pattern ${c.block})`,
  );
  const prior = rec.options.prior?.boots ?? [];
  out.push(`before the cut: ${prior.map((b) => `${b.version} (${b.action})`).join(', ') || 'no boot'} in the clean run; then a fresh device (${rec.options.id}) powers on`);
  out.push(...timelineLines(rec));
  return out;
}

/** A recorder's timeline as lines ("12.34 s  boot: 2.0.0+0 test (test)"), repeated agent states folded. */
function timelineLines(rec: DeviceRecorder): string[] {
  const out: string[] = [];
  let lastState = '';
  for (const e of rec.timeline) {
    if (e.kind === 'agent-state') {
      if (e.label === lastState) continue;
      lastState = e.label;
    }
    out.push(`${(e.at_ms / 1000).toFixed(2)} s  ${e.kind}: ${e.label}`);
  }
  if (rec.timelineDropped > 0) out.push(`(${rec.timelineDropped} more events not kept)`);
  return out;
}

interface CaseDef {
  opIndex: number | null;
  block: number | null;
  phase: OpPhase | 'clean';
}

/** Sweep the power cuts of a whole update (see the module comment). */
export async function sweepUpdate(o: UpdateSweepOptions): Promise<UpdateSweepReport> {
  checkOptions(o);
  const t0 = performance.now();
  const spec = o.spec;
  const seed = o.seed ?? 1;
  const defects = splitDefects(o.defects ?? []);
  const erasePatterns = o.erasePatterns ?? 3;
  const maxViolations = o.maxViolations ?? 100;
  const notes: string[] = [];
  const world = await UpdateWorld.create(spec);
  try {
    // 1. the clean run, journal from the start
    const initial = Flash.create(spec.board);
    programSlot(initial, 'slot0', spec.from.bytes, 'confirm', spec.strategy);
    initial.startJournal();
    const reference = initial;
    const storage = reference.hasPartition('storage') ? Uint8Array.from(reference.area('storage').read(0, reference.area('storage').size)) : null;
    const rebootsAt: number[] = [];
    const cleanIdentity = `${spec.name}-s${seed}-clean`;
    const cleanRun = await world.runDevice({
      flash: reference,
      identity: cleanIdentity,
      seed: mixSeed(seed, 0x5eed),
      agentDefects: defects.agent,
      bootDefects: defects.boot,
      storageBaseline: storage,
      ...(o.caseWallLimit_ms !== undefined ? { wallLimit_ms: o.caseWallLimit_ms } : {}),
    });
    const rec = cleanRun.recorder;
    for (const r of rec.rebootOps) rebootsAt.push(r);
    if (rec.opsSeen !== reference.journalLength) throw new Error(`assertion failed: the recorder saw ${rec.opsSeen} ops, the journal has ${reference.journalLength}`);
    const clean: CleanRun = { reference, recorder: rec, ops: rec.ops, rebootsAt, storage };
    const digest = createHash('sha256');
    for (const f of clean.ops) digest.update(`${f.kind} ${f.partition ?? '-'} ${f.offset} ${f.length} ${f.phase}\n`);
    const cleanRunDigest = digest.digest('hex');
    const narrative: string[] = [];
    const opsByPhase: Record<string, number> = {};
    const firstOpByPhase: Record<string, number> = {};
    for (const f of clean.ops) {
      opsByPhase[f.phase] = (opsByPhase[f.phase] ?? 0) + 1;
      firstOpByPhase[f.phase] ??= f.index;
    }
    if (spec.strategy === 'overwrite-only' && (o.phase === 'revert' || o.phase === 'all')) notes.push('overwrite-only cannot revert: there is no revert phase, and a failing target stays installed (no rollback is possible)');
    if (!spec.targetFails && (o.phase === 'revert' || o.phase === 'all')) notes.push('the target passes its self-test: the clean run has no revert phase');

    const violations: UpdateSweepViolation[] = [];
    const verdicts: string[] = [];
    let dropped = 0;
    const record = (c: CaseDef, found: { invariant: InvariantId | 'settles'; device: string; message: string }[]): void => {
      const replay = updateReplayCommand(o, o.phase, c.opIndex === null ? null : { opIndex: c.opIndex, block: c.block });
      verdicts.push(`${c.opIndex === null ? 'clean' : `${c.opIndex}${c.block !== null ? `:${c.block}` : ''}`} ${[...new Set(found.map((f) => f.invariant))].sort().join(',') || 'ok'}`);
      for (const f of found) {
        if (violations.length >= maxViolations) {
          dropped++;
          continue;
        }
        violations.push({ invariant: f.invariant, opIndex: c.opIndex, block: c.block, phase: c.phase, device: f.device, message: f.message, replay });
      }
    };
    const judge = (run: DeviceRun, c: CaseDef): { invariant: InvariantId | 'settles'; device: string; message: string }[] => {
      const replay = updateReplayCommand(o, o.phase, c.opIndex === null ? null : { opIndex: c.opIndex, block: c.block });
      const expect = expectationOf(spec, c.phase === 'clean' ? null : c.phase);
      const verdict = checkOracle({ recorder: run.recorder, reports: run.reports, expect, replay, opIndex: c.opIndex });
      const found: { invariant: InvariantId | 'settles'; device: string; message: string }[] = verdict.violations.map((v) => ({ invariant: v.invariant, device: v.device, message: v.message }));
      if (!run.settled) found.push({ invariant: 'settles', device: run.recorder.options.id, message: `device ${run.recorder.options.id} did not settle (idle, bricked or boot loop) within the case's wall-time limit` });
      return found;
    };

    // 2. the cases
    const wanted = (f: OpFact): boolean => o.phase === 'all' || f.phase === o.phase;
    const cases: CaseDef[] = [];
    const only = o.cut;
    if (!only) cases.push({ opIndex: null, block: null, phase: 'clean' });
    const from = o.fromOp ?? 0;
    const to = Math.min(o.toOp ?? clean.ops.length, clean.ops.length);
    if (only && only.opIndex >= clean.ops.length) {
      throw new InputError('BAD_CUT', `--cut ${only.opIndex}: the clean run has ${clean.ops.length} flash ops (0..${clean.ops.length - 1})`);
    }
    const cursorForCount = reference.cursor();
    for (const f of clean.ops) {
      const entry = cursorForCount.peek()!;
      cursorForCount.advance(1);
      if (only ? f.index !== only.opIndex : !(f.index >= from && f.index < to && wanted(f))) continue;
      if (only) {
        if (only.block !== null) {
          const n = tornVariants(reference, entry, erasePatterns);
          if (only.block >= n) throw new InputError('BAD_CUT', `--cut ${only.opIndex}:${only.block}: op ${only.opIndex} has ${n} torn variants (0..${Math.max(0, n - 1)})`);
        }
        cases.push({ opIndex: f.index, block: only.block, phase: f.phase });
        continue;
      }
      cases.push({ opIndex: f.index, block: null, phase: f.phase });
      if (o.torn) for (let v = 0; v < tornVariants(reference, entry, erasePatterns); v++) cases.push({ opIndex: f.index, block: v, phase: f.phase });
    }
    const total = cases.length;
    let done = 0;
    const results = new Map<number, { c: CaseDef; found: { invariant: InvariantId | 'settles'; device: string; message: string }[] }>();
    const runCase = async (i: number): Promise<void> => {
      const c = cases[i]!;
      if (c.opIndex === null) {
        results.set(i, { c, found: judge(cleanRun, c) });
        if (o.narrateClean === true) narrative.push(`the clean run: ${clean.ops.length} flash ops, no cut`, ...timelineLines(cleanRun.recorder));
        o.onCase?.(c, cleanRun.recorder);
      } else {
        // the flash after ops 0..k-1 (fresh cursor per case: cases may run out of order)
        const cursor = reference.cursor();
        cursor.advance(c.opIndex);
        const entry = cursor.peek()!;
        const f = cursor.flash.clone({ journal: true, strict: c.block === null ? reference.strict : false });
        f.powerOffNow();
        f.powerOn();
        if (c.block !== null) applyTornCut(f, entry, seed, c.opIndex, c.block);
        f.startJournal();
        const run = await world.runDevice({
          flash: f,
          identity: `${spec.name}-s${seed}-c${c.opIndex}${c.block !== null ? `b${c.block}` : ''}`,
          seed: mixSeed(seed, c.opIndex, c.block ?? -1),
          prior: priorAt(clean, c.opIndex),
          storageBaseline: storage,
          agentDefects: defects.agent,
          bootDefects: defects.boot,
          ...(o.caseWallLimit_ms !== undefined ? { wallLimit_ms: o.caseWallLimit_ms } : {}),
        });
        results.set(i, { c, found: judge(run, c) });
        if (only) narrative.push(...narrate(clean, c, entry, run.recorder));
        o.onCase?.(c, run.recorder);
      }
      done++;
      o.onProgress?.(done, total);
    };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < cases.length) await runCase(next++);
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 4, Math.max(1, cases.length)) }, () => worker()));
    for (let i = 0; i < cases.length; i++) {
      const r = results.get(i)!;
      record(r.c, r.found);
    }
    if (dropped > 0) notes.push(`${dropped} more violation(s) not listed (maxViolations ${maxViolations})`);
    const durationMs = performance.now() - t0;
    return {
      name: spec.name,
      board: spec.board.name,
      strategy: spec.strategy,
      transport: spec.transport,
      phase: o.phase,
      torn: o.torn ?? false,
      seed,
      defects: [...(o.defects ?? [])],
      opsByPhase,
      firstOpByPhase,
      ops: clean.ops.length,
      cases: cases.length,
      durationMs,
      casesPerSecond: durationMs > 0 ? (cases.length * 1000) / durationMs : 0,
      violations,
      notes,
      verdicts,
      cleanRunDigest,
      narrative,
    };
  } finally {
    await world.close();
  }
}
