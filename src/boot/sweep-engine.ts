/**
 * The sweep engine. For a phase (the upgrade boot, or the revert boot after it) it records one
 * clean boot's journal; for every op index k it takes the flash after k ops from a journal cursor
 * (a copy-on-write clone, no re-run), cuts power before op k or inside it (torn), boots again to
 * completion — optionally cut again while recovering — and checks the result.
 *
 * Checks (MCUboot's simulator asserts, per phase, plus "never bricked"):
 *   swap (test upgrade): slot0 = 2.0.0 and, swap strategies, slot1 = 1.0.0; slot0 trailer
 *     magic good / image_ok unset / copy_done set; slot1 trailer magic, image_ok, copy_done unset.
 *   revert: slot0 = 1.0.0, slot1 = 2.0.0; slot0 trailer good / set / set; slot1 trailer unset.
 *   overwrite-only: slot0 = 2.0.0 after either phase (it cannot revert); no trailer checks.
 *
 * Speed comes from convergence (sweep-converge.ts): a recovery boot that reaches a bootloader
 * checkpoint with the same in-memory state and byte-identical flash as a boot seen before will
 * do exactly what that boot did, so it stops there and takes that boot's verdict.
 */
import { OtaSimError, InputError } from '../errors.js';
import { PowerCut } from '../flash/errors.js';
import type { Flash } from '../flash/flash.js';
import { OpKind } from '../flash/journal.js';
import type { JournalEntry } from '../flash/journal.js';
import type { PartitionName } from '../flash/types.js';
import { VerifyMemo } from '../image/verify.js';
import { Prng, mixSeed } from '../prng.js';
import { boot } from './boot.js';
import type { BootOptions, BootResult } from './boot.js';
import { BOOT_DEFECTS } from './context.js';
import type { BootDefect } from './context.js';
import { ConvergenceMemo } from './sweep-converge.js';
import type { Finding } from './sweep-converge.js';
import { buildScenario } from './sweep-setup.js';
import type { Scenario, SweepPhase, SweepSetup } from './sweep-setup.js';
import { trailerConfigOf } from './public.js';
import { readSwapState } from './trailer.js';
import type { FlagState, MagicState, TrailerConfig } from './trailer.js';
import { makeSweepAreaValidator } from './validate.js';

export interface SweepOptions extends SweepSetup {
  phase: SweepPhase;
  /** Also cut inside every op: each write block of a write, `erasePatterns` seeded patterns per erase. */
  torn?: boolean;
  /** Extra cuts while recovering, at seeded ops of the recovery boots (default 0). */
  multiCut?: number;
  defects?: readonly BootDefect[];
  /** Seeded partial-erase patterns per erase op with `torn` (default 3). */
  erasePatterns?: number;
  /** Only cut at op indices in [fromOp, toOp) of each phase's clean boot (replay, sharding). */
  fromOp?: number;
  toOp?: number;
  onProgress?: (done: number, total: number) => void;
  /** Stop collecting violations after this many (default 100); the sweep still counts every case. */
  maxViolations?: number;
  /** Run every recovery boot to its end instead of stopping it where it joins a known boot (checks the shortcut; slow). */
  exhaustive?: boolean;
}

/** A cut point: before op `opIndex` (block null), or inside it (write block / erase pattern `block`). */
export interface SweepCut {
  opIndex: number;
  block: number | null;
}

export interface SweepViolation {
  /** Stable id: never-bricked, primary-image, secondary-image, primary-trailer, secondary-trailer, flash-refused. */
  invariant: string;
  /** Op index of the cut in the phase's clean boot (0-based: ops 0..k-1 happened); the op count for the clean boot itself. */
  opIndex: number;
  /** Write block (or erase pattern) of a torn cut; null for a cut between ops. */
  block: number | null;
  phase: 'swap' | 'revert';
  detail: string;
  /** The one command that replays this case. */
  replay: string;
}

export interface SweepReport {
  board: string;
  strategy: SweepSetup['strategy'];
  writeSize: number;
  eraseValue: number;
  phase: SweepPhase;
  torn: boolean;
  /** Cases run: the clean boot of each phase plus one per cut point. */
  cases: number;
  /** Flash ops of the clean boot(s) of the phase(s) swept. */
  ops: number;
  durationMs: number;
  casesPerSecond: number;
  violations: SweepViolation[];
  /** What the reader should know: e.g. that overwrite-only cannot revert, or that violations were capped. */
  notes: string[];
}

export type ReplayOptions = SweepOptions & { cut: SweepCut };

export interface ReplayResult {
  violations: SweepViolation[];
  narrative: string[];
}

interface TrailerWant {
  magic: MagicState;
  imageOk: FlagState;
  copyDone: FlagState;
}

/** One phase ready to sweep: its starting flash (journal started), clean journal, expectations. */
interface PhasePlan {
  phase: 'swap' | 'revert';
  start: Flash;
  /** The clean boot's end state, with its journal from `start`. */
  reference: Flash;
  clean: BootResult;
  ops: number;
  wantPrimary: Uint8Array;
  wantSecondary: Uint8Array | null;
  wantTrailer0: TrailerWant | null;
  wantTrailer1: TrailerWant | null;
}

interface Engine {
  scenario: Scenario;
  options: SweepOptions;
  seed: number;
  cfg: TrailerConfig;
  bootOptions: BootOptions;
  swapping: boolean;
}

/** The exact CLI command that replays one case. */
export function replayCommand(options: SweepOptions, boardArg: string, phase: 'swap' | 'revert', cut: SweepCut): string {
  const parts = ['ota-sim sweep', `--board ${boardArg}`, `--strategy ${options.strategy}`, `--image-size ${options.imageSize_bytes}`, `--phase ${phase}`];
  if (options.writeSize !== undefined) parts.push(`--write-size ${options.writeSize}`);
  if (options.eraseValue !== undefined) parts.push(`--erase-value 0x${options.eraseValue.toString(16).padStart(2, '0')}`);
  if (cut.block !== null || (options.torn ?? false)) parts.push('--torn');
  if ((options.multiCut ?? 0) > 0) parts.push(`--multi-cut ${options.multiCut}`);
  for (const d of options.defects ?? []) parts.push(`--defect ${d}`);
  parts.push(`--seed ${options.seed ?? 1}`);
  parts.push(`--cut ${cut.opIndex}${cut.block !== null ? `:${cut.block}` : ''}`);
  return parts.join(' ');
}

function checkOptions(options: SweepOptions): void {
  if (!['swap', 'revert', 'all'].includes(options.phase)) throw new InputError('BAD_PHASE', `--phase must be swap, revert or all, got ${String(options.phase)}`);
  for (const d of options.defects ?? []) {
    if (!BOOT_DEFECTS.includes(d)) throw new InputError('UNKNOWN_DEFECT', `unknown defect "${d}"; known defects: ${BOOT_DEFECTS.join(', ')}`);
  }
  const mc = options.multiCut ?? 0;
  if (!(Number.isInteger(mc) && mc >= 0 && mc <= 1000)) throw new InputError('BAD_MULTI_CUT', `--multi-cut must be a whole number in 0..1000, got ${mc}`);
  const ep = options.erasePatterns ?? 3;
  if (!(Number.isInteger(ep) && ep >= 1 && ep <= 1000)) throw new InputError('BAD_ERASE_PATTERNS', `erase patterns must be a whole number in 1..1000, got ${ep}`);
  const seed = options.seed ?? 1;
  if (!(Number.isSafeInteger(seed) && seed >= 0)) throw new InputError('BAD_SEED', `--seed must be a whole number >= 0, got ${seed}`);
  for (const [name, v] of [['fromOp', options.fromOp], ['toOp', options.toOp]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 0)) throw new InputError('BAD_CUT', `${name} must be a whole number >= 0, got ${v}`);
  }
}

function makeEngine(options: SweepOptions, scenario: Scenario): Engine {
  const areaValidator = makeSweepAreaValidator(scenario.trust, new VerifyMemo());
  return {
    scenario,
    options,
    seed: options.seed ?? 1,
    cfg: trailerConfigOf(scenario.board, options.strategy),
    bootOptions: { strategy: options.strategy, trustedKeys: scenario.trustedKeys, defects: options.defects ?? [], areaValidator },
    swapping: options.strategy !== 'overwrite-only',
  };
}

/** A boot that a refused flash op (strict NOR rules) ends is reported, not thrown. */
function safeBoot(e: Engine, flash: Flash): BootResult {
  try {
    return boot(flash, e.bootOptions);
  } catch (err) {
    if (!(err instanceof OtaSimError)) throw err;
    return {
      strategy: e.options.strategy,
      action: 'panic',
      resumed: false,
      canRevert: e.swapping,
      nvCounter: null,
      notes: [`flash refused an op: ${err.code}: ${err.message}`],
      kind: 'no-bootable-image',
      reason: `flash refused an op: ${err.code}: ${err.message}`,
      panic: true,
    };
  }
}

function planPhase(e: Engine, phase: 'swap' | 'revert', start: Flash, memo: ConvergenceMemo | null): PhasePlan {
  const s = e.scenario;
  const reference = start.clone({ journal: true });
  reference.startJournal();
  const upgrade = phase === 'swap' || !e.swapping;
  const plan: PhasePlan = {
    phase,
    start,
    reference,
    clean: null as unknown as BootResult,
    ops: 0,
    wantPrimary: upgrade ? s.newImage : s.oldImage,
    wantSecondary: e.swapping ? (upgrade ? s.oldImage : s.newImage) : null,
    wantTrailer0: e.swapping ? { magic: 'good', imageOk: phase === 'swap' ? 'unset' : 'set', copyDone: 'set' } : null,
    wantTrailer1: e.swapping ? { magic: 'unset', imageOk: 'unset', copyDone: 'unset' } : null,
  };
  // The clean boot records its states too: the cut before op 0 (and others) then joins it at once.
  plan.clean = memo ? memo.run(reference, () => safeBoot(e, reference), (r) => checkFinal(e, plan, reference, r)).result! : safeBoot(e, reference);
  plan.ops = reference.journalLength;
  return plan;
}

/** The phases to sweep, each with its clean boot done; `memos` (one per phase) learn from those boots. */
function plans(e: Engine, memos: { swap: ConvergenceMemo | null; revert: ConvergenceMemo | null }): PhasePlan[] {
  const swapPlan = planPhase(e, 'swap', e.scenario.initial, memos.swap);
  if (e.options.phase === 'swap') return [swapPlan];
  // The revert boot starts where the clean upgrade boot left the flash (the test image ran, unconfirmed).
  const after = swapPlan.reference.clone({ journal: true });
  after.startJournal();
  const revertPlan = planPhase(e, 'revert', after, memos.revert);
  return e.options.phase === 'revert' ? [revertPlan] : [swapPlan, revertPlan];
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}


/** The checks of one phase on a final flash and the last boot's result. */
function checkFinal(e: Engine, plan: PhasePlan, flash: Flash, r: BootResult): Finding[] {
  const out: Finding[] = [];
  if (r.kind !== 'booted') {
    out.push({ invariant: 'never-bricked', detail: `no bootable image: ${r.reason}` });
    return out;
  }
  const image = (slot: 'slot0' | 'slot1', want: Uint8Array | null): void => {
    if (!want) return;
    const got = flash.area(slot).read(0, want.length);
    if (equalBytes(got, want)) return;
    const name = (img: Uint8Array): string => (img === e.scenario.newImage ? '2.0.0' : '1.0.0');
    const other = want === e.scenario.newImage ? e.scenario.oldImage : e.scenario.newImage;
    const holds = equalBytes(got, other) ? `it holds ${name(other)}` : `first difference at byte 0x${firstDiff(got, want).toString(16)}`;
    out.push({ invariant: slot === 'slot0' ? 'primary-image' : 'secondary-image', detail: `${slot} should hold ${name(want)} byte for byte; ${holds}` });
  };
  image('slot0', plan.wantPrimary);
  image('slot1', plan.wantSecondary);
  const trailer = (slot: 'slot0' | 'slot1', want: TrailerWant | null): void => {
    if (!want) return;
    const st = readSwapState(flash.area(slot), e.cfg);
    if (st.magic !== want.magic || st.imageOk !== want.imageOk || st.copyDone !== want.copyDone) {
      out.push({
        invariant: slot === 'slot0' ? 'primary-trailer' : 'secondary-trailer',
        detail: `${slot} trailer magic/image_ok/copy_done ${st.magic}/${st.imageOk}/${st.copyDone}, expected ${want.magic}/${want.imageOk}/${want.copyDone}`,
      });
    }
  };
  trailer('slot0', plan.wantTrailer0);
  trailer('slot1', plan.wantTrailer1);
  return out;
}

/** Name an op of the journal for narratives: "write 1024 bytes at slot0+0x1000". */
function describeOp(flash: Flash, entry: JournalEntry): string {
  const device = flash.board.flash[entry.chip]!.id;
  let where = `${device}+0x${entry.addr.toString(16)}`;
  for (const [name, p] of Object.entries(flash.board.partitions) as [PartitionName, { device: string; offset: number; size: number }][]) {
    if (p.device === device && entry.addr >= p.offset && entry.addr < p.offset + p.size) {
      where = `${name}+0x${(entry.addr - p.offset).toString(16)}`;
      break;
    }
  }
  const kind = entry.kind === OpKind.Erase ? 'an erase' : entry.kind === OpKind.Write ? 'a write' : `an op of kind ${entry.kind}`;
  return `${kind} of ${entry.length} bytes at ${where}`;
}

/** How many torn variants op `entry` has: one per write block, or `erasePatterns` for an erase. */
function tornVariants(flash: Flash, entry: JournalEntry, erasePatterns: number): number {
  if (entry.kind === OpKind.Write) return entry.length / flash.board.flash[entry.chip]!.writeSize;
  if (entry.kind === OpKind.Erase) return erasePatterns;
  return 0;
}

/**
 * Put `f` (the flash after op k-1) through op k cut by power: before it (nothing happens) or
 * inside it, tearing write block / erase pattern `block`.
 */
function applyCut(e: Engine, f: Flash, entry: JournalEntry, k: number, block: number | null): void {
  if (block === null) return;
  const device = f.board.flash[entry.chip]!.id;
  const cutSeed = mixSeed(e.seed, k, block);
  f.armPowerCut(entry.kind === OpKind.Write ? { atOp: f.opIndex, kind: 'inside', seed: cutSeed, block } : { atOp: f.opIndex, kind: 'inside', seed: cutSeed });
  try {
    if (entry.kind === OpKind.Write) f.write(device, entry.addr, entry.data!);
    else f.erase(device, entry.addr, entry.length);
    throw new Error(`assertion failed: power cut inside op ${k} fired`);
  } catch (err) {
    if (!(err instanceof PowerCut)) throw err;
  }
  f.powerOn();
}

interface CaseOutcome {
  findings: Finding[];
  result: BootResult | null;
  /** Extra cuts that fired while recovering (multi-cut): op index within each recovery boot. */
  extraCuts: string[];
  converged: boolean;
}

/**
 * Boot `f` (already cut) until one boot completes, with up to `multiCut` further cuts at seeded
 * ops of the recovery boots, then check. `memo` may stop the final boot early.
 */
function recover(e: Engine, plan: PhasePlan, f: Flash, k: number, block: number | null, memo: ConvergenceMemo | null, narrate: string[] | null): CaseOutcome {
  const extraCuts: string[] = [];
  const multiCut = e.options.multiCut ?? 0;
  const torn = block !== null || (e.options.torn ?? false);
  const rng = new Prng(mixSeed(e.seed, k, block ?? -1, 0x3c07));
  for (let c = 0; c < multiCut; c++) {
    const offset = rng.below(Math.max(1, plan.ops - k + 8));
    const at = f.opIndex + offset;
    f.armPowerCut(torn ? { atOp: at, kind: 'inside', seed: rng.nextU32() } : { atOp: at, kind: 'before' });
    let r: BootResult;
    try {
      r = safeBoot(e, f);
    } catch (err) {
      if (!(err instanceof PowerCut)) throw err;
      f.powerOn();
      extraCuts.push(`${torn ? 'inside' : 'before'} op ${offset} of recovery boot ${c + 1}`);
      narrate?.push(`recovery boot ${c + 1}: power cut ${torn ? 'inside' : 'before'} its op ${offset}`);
      continue;
    }
    // The boot finished before the armed op: nothing left to cut.
    f.disarmPowerCut();
    narrate?.push(`recovery boot ${c + 1} completed before its armed cut at op ${offset}: ${summarize(r)}`);
    return { findings: checkFinal(e, plan, f, r), result: r, extraCuts, converged: false };
  }
  if (memo) {
    const hit = memo.run(f, () => safeBoot(e, f), (r) => checkFinal(e, plan, f, r));
    return { findings: hit.findings, result: hit.result, extraCuts, converged: hit.converged };
  }
  const r = safeBoot(e, f);
  narrate?.push(`${multiCut > 0 ? 'final' : 'recovery'} boot: ${summarize(r)}`);
  for (const n of r.notes) narrate?.push(`  bootloader: ${n}`);
  return { findings: checkFinal(e, plan, f, r), result: r, extraCuts, converged: false };
}

function summarize(r: BootResult): string {
  if (r.kind === 'booted') return `booted slot0 ${r.image?.version ?? '(unparsed image)'}${r.resumed ? ' (resumed an interrupted swap)' : ''}, action ${r.action}`;
  return `NO BOOTABLE IMAGE: ${r.reason}`;
}

/** Run `sweep` on an already built scenario (tests and the matrix build their own). */
export function sweepScenario(options: SweepOptions, scenario: Scenario): SweepReport {
  checkOptions(options);
  const t0 = performance.now();
  const e = makeEngine(options, scenario);
  const maxViolations = options.maxViolations ?? 100;
  const erasePatterns = options.erasePatterns ?? 3;
  const violations: SweepViolation[] = [];
  let dropped = 0;
  const notes: string[] = [];
  if (!e.swapping && options.phase !== 'swap') {
    notes.push('overwrite-only cannot revert: the revert phase checks that the upgrade stays installed (no rollback is possible)');
  }
  const memos = { swap: options.exhaustive ? null : new ConvergenceMemo(), revert: options.exhaustive ? null : new ConvergenceMemo() };
  const phasePlans = plans(e, memos);
  let cases = 0;
  let ops = 0;
  // Progress: cases are known up front (cut points, plus torn variants).
  const ranges = phasePlans.map((p) => ({ from: Math.min(p.ops, options.fromOp ?? 0), to: Math.min(p.ops, options.toOp ?? p.ops) }));
  let total = 0;
  for (const [i, p] of phasePlans.entries()) {
    total += 1;
    const cur = p.reference.cursor();
    cur.advance(ranges[i]!.from);
    for (let k = ranges[i]!.from; k < ranges[i]!.to; k++) {
      total += 1 + (options.torn ? tornVariants(p.reference, cur.peek()!, erasePatterns) : 0);
      cur.advance(1);
    }
  }
  let done = 0;
  const progressEvery = Math.max(1, Math.floor(total / 200));
  const add = (plan: PhasePlan, k: number, block: number | null, findings: Finding[], extra: string[]): void => {
    for (const f of findings) {
      if (violations.length >= maxViolations) {
        dropped++;
        continue;
      }
      violations.push({
        invariant: f.invariant,
        opIndex: k,
        block,
        phase: plan.phase,
        detail: extra.length > 0 ? `${f.detail} (after further cuts: ${extra.join(', ')})` : f.detail,
        replay: replayCommand(options, scenario.boardArg, plan.phase, { opIndex: k, block }),
      });
    }
  };
  const tick = (): void => {
    done++;
    if (options.onProgress && (done % progressEvery === 0 || done === total)) options.onProgress(done, total);
  };
  for (const [i, plan] of phasePlans.entries()) {
    ops += plan.ops;
    // The clean boot is a case too (a defect may break it without any cut).
    add(plan, plan.ops, null, checkFinal(e, plan, plan.reference, plan.clean), []);
    cases++;
    tick();
    const memo = memos[plan.phase];
    const { from, to } = ranges[i]!;
    const cursor = plan.reference.cursor();
    cursor.advance(from);
    for (let k = from; k < to; k++) {
      const entry = cursor.peek()!;
      const before = cursor.flash.clone({ journal: false });
      const o = recover(e, plan, before, k, null, memo, null);
      add(plan, k, null, o.findings, o.extraCuts);
      cases++;
      tick();
      if (options.torn) {
        const variants = tornVariants(plan.reference, entry, erasePatterns);
        for (let v = 0; v < variants; v++) {
          // Non-strict: real NOR re-programs a torn block (bits only move one way), as MCUboot may.
          const f = cursor.flash.clone({ journal: false, strict: false });
          applyCut(e, f, entry, k, v);
          const ot = recover(e, plan, f, k, v, memo, null);
          add(plan, k, v, ot.findings, ot.extraCuts);
          cases++;
          tick();
        }
      }
      cursor.advance(1);
    }
  }
  if (dropped > 0) notes.push(`${dropped} more violation(s) not listed (maxViolations ${maxViolations})`);
  const durationMs = performance.now() - t0;
  return {
    board: scenario.board.name,
    strategy: options.strategy,
    writeSize: scenario.writeSize,
    eraseValue: scenario.eraseValue,
    phase: options.phase,
    torn: options.torn ?? false,
    cases,
    ops,
    durationMs,
    casesPerSecond: durationMs > 0 ? (cases * 1000) / durationMs : 0,
    violations,
    notes,
  };
}

/** Sweep the power cuts of a scenario built from `options` (see SweepOptions). */
export function sweep(options: SweepOptions): SweepReport {
  checkOptions(options);
  return sweepScenario(options, buildScenario(options));
}

/** Run one case (the `--cut` of a replay command) and tell what happened, step by step. */
export function replayCase(options: ReplayOptions): ReplayResult {
  checkOptions(options);
  if (options.phase === 'all') throw new InputError('BAD_PHASE', 'a replayed case belongs to one phase: give --phase swap or --phase revert');
  const cut = options.cut;
  if (!(Number.isInteger(cut.opIndex) && cut.opIndex >= 0)) throw new InputError('BAD_CUT', `--cut op index must be a whole number >= 0, got ${cut.opIndex}`);
  if (cut.block !== null && !(Number.isInteger(cut.block) && cut.block >= 0)) throw new InputError('BAD_CUT', `--cut block must be a whole number >= 0, got ${cut.block}`);
  const scenario = buildScenario(options);
  const e = makeEngine(options, scenario);
  const narrative: string[] = [];
  narrative.push(
    `scenario: board ${scenario.board.name}, ${options.strategy}, write size ${scenario.writeSize}, erase value 0x${scenario.eraseValue.toString(16)}; ` +
      `slot0 = 1.0.0 confirmed, slot1 = 2.0.0 pending test upgrade (${scenario.imageSize_bytes} bytes each)${(options.defects ?? []).length > 0 ? `; defects: ${(options.defects ?? []).join(', ')}` : ''}`,
  );
  const all = plans(e, { swap: null, revert: null });
  const plan = all[all.length - 1]!;
  if (plan.phase === 'revert') narrative.push(`the clean upgrade boot ran (${all.length > 1 ? all[0]!.ops : '?'} ops); the test image ran unconfirmed; this is the next boot (the revert)`);
  narrative.push(`clean ${plan.phase} boot: ${plan.ops} flash ops, ${summarize(plan.clean)}`);
  const violations: SweepViolation[] = [];
  const add = (findings: Finding[], extra: string[]): void => {
    for (const f of findings) {
      violations.push({
        invariant: f.invariant,
        opIndex: cut.opIndex,
        block: cut.block,
        phase: plan.phase,
        detail: extra.length > 0 ? `${f.detail} (after further cuts: ${extra.join(', ')})` : f.detail,
        replay: replayCommand(options, scenario.boardArg, plan.phase, cut),
      });
    }
  };
  if (cut.opIndex >= plan.ops) {
    if (cut.block !== null) throw new InputError('BAD_CUT', `--cut ${cut.opIndex}:${cut.block}: the clean ${plan.phase} boot has only ${plan.ops} ops (0..${plan.ops - 1})`);
    narrative.push(`cut at op ${cut.opIndex} >= ${plan.ops}: no cut, the clean boot is the case`);
    for (const n of plan.clean.notes) narrative.push(`  bootloader: ${n}`);
    const findings = checkFinal(e, plan, plan.reference, plan.clean);
    add(findings, []);
    narrative.push(findings.length === 0 ? 'checks: all hold' : `checks: ${findings.map((f) => `${f.invariant}: ${f.detail}`).join('; ')}`);
    return { violations, narrative };
  }
  const cursor = plan.reference.cursor();
  cursor.advance(cut.opIndex);
  const entry = cursor.peek()!;
  const f = cursor.flash.clone({ journal: false, strict: cut.block === null ? undefined : false });
  narrative.push(
    `${cut.opIndex === 0 ? 'flash as before the boot' : `flash rebuilt after ops 0..${cut.opIndex - 1} of the clean boot`}; op ${cut.opIndex} is ${describeOp(f, entry)}`,
  );
  if (cut.block === null) {
    narrative.push(`power cut before op ${cut.opIndex}: it does not happen`);
  } else {
    const variants = tornVariants(f, entry, options.erasePatterns ?? 3);
    if (cut.block >= variants) {
      throw new InputError('BAD_CUT', `--cut ${cut.opIndex}:${cut.block}: op ${cut.opIndex} has ${variants} ${entry.kind === OpKind.Write ? 'write blocks' : 'erase patterns'} (0..${variants - 1})`);
    }
    applyCut(e, f, entry, cut.opIndex, cut.block);
    narrative.push(
      entry.kind === OpKind.Write
        ? `power cut inside op ${cut.opIndex}: ${cut.block === 0 ? 'no write block lands' : `write blocks 0..${cut.block - 1} land`}, block ${cut.block} is torn (a seeded subset of its bits), the rest do not`
        : `power cut inside op ${cut.opIndex}: the erase stops part way (seeded pattern ${cut.block})`,
    );
  }
  const o = recover(e, plan, f, cut.opIndex, cut.block, null, narrative);
  add(o.findings, o.extraCuts);
  narrative.push(o.findings.length === 0 ? 'checks: all hold' : `checks: ${o.findings.map((x) => `${x.invariant}: ${x.detail}`).join('; ')}`);
  return { violations, narrative };
}
