/**
 * `ota-sim sweep`: the exhaustive power-cut sweep of the bootloader. Records one clean upgrade (and
 * revert) boot, cuts power before every flash op of it (with --torn also inside every write block
 * and with seeded partial-erase patterns), boots again and checks MCUboot's simulator assertions.
 * Prints cases, cases/s and every violation with a replay command; --cut replays one case with its
 * narrative; --matrix runs every board × strategy × write size × erase value.
 */
import type { Argv, CommandModule } from 'yargs';
import { CheckError, InputError } from '../errors.js';
import { BOOT_DEFECTS } from '../boot/context.js';
import type { BootDefect } from '../boot/context.js';
import { maxImageSize, replayCase, strategyUnsupported, sweep, sweepMatrix } from '../boot/sweep.js';
import type { SweepOptions, SweepPhase, SweepReport, SweepViolation } from '../boot/sweep.js';
import { listBoards, loadBoard } from '../flash/board.js';
import type { BoardProfile, Strategy } from '../flash/types.js';
import { AGENT_DEFECTS } from '../agent/types.js';
import { loadScenario } from '../scenario/load.js';
import { UPDATE_PHASES, sweepUpdate } from '../scenario/sweep.js';
import type { UpdatePhaseArg, UpdateSweepReport, UpdateSweepViolation } from '../scenario/sweep.js';
import { updateSpecFromScenario } from '../scenario/sweep-spec.js';
import { STRATEGIES, parseEraseValue, parseStrategy } from './flash.js';
import { emit, parseIntArg } from './output.js';
import type { GlobalArgs } from './output.js';

interface SweepArgs extends GlobalArgs {
  scenario?: string;
  board?: string | string[];
  strategy?: string | string[];
  'image-size'?: string;
  phase?: string;
  torn?: boolean;
  'multi-cut'?: string;
  'write-size'?: string | string[];
  'erase-value'?: string | string[];
  matrix?: boolean;
  defect?: string | string[];
  cut?: string;
  seed?: string;
  'erase-patterns'?: string;
  'from-op'?: string;
  'to-op'?: string;
  'max-violations'?: string;
  exhaustive?: boolean;
  concurrency?: string;
}

const DEFAULT_BOARD = 'nrf52840';
const DEFAULT_IMAGE_SIZE = 204800;
const BOOT_PHASES: readonly SweepPhase[] = ['swap', 'revert', 'all'];
const AGENT_PHASES = ['download', 'stage', 'confirm'];
void UPDATE_PHASES;

function parsePhase(text: string | undefined): SweepPhase {
  if (text === undefined) return 'all';
  if ((BOOT_PHASES as readonly string[]).includes(text)) return text as SweepPhase;
  if (AGENT_PHASES.includes(text)) {
    throw new InputError('UNSUPPORTED_PHASE', `--phase ${text}: needs a SCENARIO (a sweep of the whole update); without one the bootloader is swept, its phases are ${BOOT_PHASES.join(', ')}`);
  }
  throw new InputError('BAD_ARGUMENT', `--phase: expected one of ${BOOT_PHASES.join(', ')}, got ${text}`);
}

function parseDefects(names: readonly string[] | undefined): BootDefect[] {
  const out: BootDefect[] = [];
  for (const name of names ?? []) {
    if (!(BOOT_DEFECTS as readonly string[]).includes(name)) {
      throw new InputError('UNKNOWN_DEFECT', `--defect ${name}: unknown; the seeded defects are ${BOOT_DEFECTS.join(', ')}`);
    }
    if (!out.includes(name as BootDefect)) out.push(name as BootDefect);
  }
  return out;
}

/** OP or OP:BLOCK (decimal or 0x hex). */
export function parseCut(text: string): { opIndex: number; block: number | null } {
  const m = /^\s*([0-9]+|0x[0-9a-f]+)(?::([0-9]+|0x[0-9a-f]+))?\s*$/i.exec(text);
  if (!m) throw new InputError('BAD_ARGUMENT', `--cut: expected OP or OP:BLOCK (e.g. 453 or 453:2), got ${JSON.stringify(text)}`);
  return { opIndex: parseIntArg('--cut', m[1]!), block: m[2] === undefined ? null : parseIntArg('--cut', m[2]) };
}

function optionalInt(name: string, text: string | undefined, min = 0): number | undefined {
  if (text === undefined) return undefined;
  const n = parseIntArg(name, text);
  if (n < min) throw new InputError('BAD_ARGUMENT', `${name}: expected a number >= ${min}, got ${text}`);
  return n;
}

/** A repeatable flag's values (yargs collects repeats into an array; not `array: true`, which would swallow the positional). */
function list(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
}

/** A flag that takes one value unless --matrix: given twice is an error. */
function single(name: string, value: string | string[] | undefined): string | undefined {
  const values = list(value);
  if (values.length === 0) return undefined;
  if (values.length > 1) throw new InputError('BAD_ARGUMENT', `${name}: given ${values.length} times; without --matrix it takes one value`);
  return values[0];
}

/** A one-line progress display on a terminal's stderr (plain \r); nothing when stderr is not a TTY. */
class Progress {
  private readonly enabled = process.stderr.isTTY === true;
  private last = 0;
  private width = 0;

  update(text: string, force = false): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const pad = Math.max(0, this.width - text.length);
    this.width = text.length;
    process.stderr.write(`\r${text}${' '.repeat(pad)}`);
  }

  done(): void {
    if (!this.enabled || this.width === 0) return;
    process.stderr.write(`\r${' '.repeat(this.width)}\r`);
    this.width = 0;
  }
}

function rate(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1);
}

function cutText(v: Pick<SweepViolation, 'opIndex' | 'block'>): string {
  return v.block === null ? `before op ${v.opIndex}` : `inside op ${v.opIndex} (block ${v.block})`;
}

/** Violations grouped by case (one cut can break several invariants), each case with its replay command. */
function formatViolations(list: readonly SweepViolation[], indent: string, withReplay = true): string[] {
  const lines: string[] = [];
  let last: SweepViolation | null = null;
  for (const v of list) {
    if (!last || last.phase !== v.phase || last.opIndex !== v.opIndex || last.block !== v.block || last.replay !== v.replay) {
      if (last && withReplay) lines.push(`${indent}  replay: ${last.replay}`);
      lines.push(`${indent}${v.phase}, cut ${cutText(v)}:`);
      last = v;
    }
    lines.push(`${indent}  ${v.invariant}: ${v.detail}`);
  }
  if (last && withReplay) lines.push(`${indent}  replay: ${last.replay}`);
  return lines;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function casesOf(list: readonly SweepViolation[]): number {
  return new Set(list.map((v) => `${v.phase}:${v.opIndex}:${v.block}`)).size;
}

function violationJson(v: SweepViolation): object {
  return { invariant: v.invariant, opIndex: v.opIndex, block: v.block, phase: v.phase, detail: v.detail, replay: v.replay };
}

function reportJson(r: SweepReport): object {
  return {
    board: r.board,
    strategy: r.strategy,
    writeSize: r.writeSize,
    eraseValue: r.eraseValue,
    phase: r.phase,
    torn: r.torn,
    cases: r.cases,
    ops: r.ops,
    durationMs: r.durationMs,
    casesPerSecond: r.casesPerSecond,
    violations: r.violations.map(violationJson),
    notes: r.notes,
  };
}

function formatReport(r: SweepReport, defects: readonly BootDefect[]): string {
  const lines: string[] = [];
  const what = `${r.board} ${r.strategy}, write size ${r.writeSize}, erase value 0x${r.eraseValue.toString(16).padStart(2, '0')}, phase ${r.phase}${r.torn ? ', torn' : ''}`;
  lines.push(`sweep ${what}${defects.length ? ` with defect ${defects.join(', ')}` : ''}`);
  lines.push(`  ${r.cases} cases over ${r.ops} flash ops in ${(r.durationMs / 1000).toFixed(2)} s: ${rate(r.casesPerSecond)} cases/s`);
  if (r.violations.length === 0) {
    lines.push('  no violation: every case booted a verified image in the expected state');
  } else {
    lines.push(`  ${plural(r.violations.length, 'violation')} in ${plural(casesOf(r.violations), 'case')}:`);
    lines.push(...formatViolations(r.violations, '    '));
  }
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return lines.join('\n');
}

interface Resolved {
  board: string;
  profile: BoardProfile;
  strategy: Strategy;
  writeSize: number | undefined;
  eraseValue: 0 | 0xff | undefined;
}

/** --board/--strategy/--write-size/--erase-value for a single sweep, with defaults and checks. */
function resolveSingle(argv: SweepArgs): Resolved {
  const board = single('--board', argv.board) ?? DEFAULT_BOARD;
  const ws = single('--write-size', argv['write-size']);
  const ev = single('--erase-value', argv['erase-value']);
  const writeSize = ws === undefined ? undefined : parseIntArg('--write-size', ws);
  const eraseValue = ev === undefined ? undefined : parseEraseValue(ev);
  const overrides: { writeSize?: number; eraseValue?: 0 | 0xff } = {};
  if (writeSize !== undefined) overrides.writeSize = writeSize;
  if (eraseValue !== undefined) overrides.eraseValue = eraseValue;
  const profile = loadBoard(board, overrides);
  const requested = parseStrategy(single('--strategy', argv.strategy));
  const strategy = requested ?? profile.mcuboot.strategies[0];
  if (strategy === undefined) throw new InputError('NO_STRATEGY', `board ${profile.name} lists no MCUboot strategy; name one with --strategy`);
  const why = strategyUnsupported(profile, strategy);
  if (why) throw new InputError('UNSUPPORTED_STRATEGY', `--strategy ${strategy}: ${why}`);
  return { board, profile, strategy, writeSize, eraseValue };
}

function runMatrix(argv: SweepArgs, phase: SweepPhase, seed: number, imageSize: number | undefined): void {
  for (const [flag, given] of [['--defect', list(argv.defect).length], ['--cut', argv.cut], ['--multi-cut', argv['multi-cut']], ['--from-op', argv['from-op']], ['--to-op', argv['to-op']], ['--max-violations', argv['max-violations']], ['--erase-patterns', argv['erase-patterns']], ['--exhaustive', argv.exhaustive]] as const) {
    if (given) throw new InputError('BAD_ARGUMENT', `${flag} cannot be combined with --matrix`);
  }
  const boards = list(argv.board).length ? list(argv.board) : listBoards();
  for (const b of boards) loadBoard(b); // unknown boards: exit 2 before any work
  const strategies = list(argv.strategy).length ? list(argv.strategy).map((s) => parseStrategy(s)!) : undefined;
  // Unrestricted: the engine's write sizes (1, 2, 4, 8) and erase values (0xff, 0x00).
  const writeSizes = list(argv['write-size']).length ? list(argv['write-size']).map((w) => parseIntArg('--write-size', w)) : undefined;
  const eraseValues = list(argv['erase-value']).length ? list(argv['erase-value']).map(parseEraseValue) : undefined;
  const progress = new Progress();
  let done = 0;
  let found = 0;
  const started = performance.now();
  const result = sweepMatrix({
    boards,
    ...(strategies ? { strategies } : {}),
    ...(writeSizes ? { writeSizes } : {}),
    ...(eraseValues ? { eraseValues } : {}),
    phase,
    torn: argv.torn === true,
    ...(imageSize !== undefined ? { imageSize_bytes: imageSize } : {}),
    seed,
    onCase: (r) => {
      done++;
      found += r.violations.length;
      progress.update(`matrix: ${done} configurations swept, last ${r.board} ${r.strategy} ws ${r.writeSize} ev 0x${r.eraseValue.toString(16)}: ${r.cases} cases; ${found} violations`, true);
    },
  });
  progress.done();
  const durationMs = performance.now() - started;
  const reports = result.reports;
  const cases = reports.reduce((n, r) => n + r.cases, 0);
  const violations = reports.flatMap((r) => r.violations);
  const sweptMs = reports.reduce((n, r) => n + r.durationMs, 0);
  const casesPerSecond = sweptMs > 0 ? (cases * 1000) / sweptMs : 0;
  const json = {
    matrix: true,
    phase,
    torn: argv.torn === true,
    seed,
    cases,
    casesPerSecond,
    durationMs,
    configurations: reports.length,
    violations: reports.flatMap((r) => r.violations.map((v) => ({ ...violationJson(v), board: r.board, strategy: r.strategy, writeSize: r.writeSize, eraseValue: r.eraseValue }))),
    reports: reports.map(reportJson),
    skipped: result.skipped,
  };
  emit(
    argv,
    () => {
      const rows: string[][] = [['board', 'strategy', 'ws', 'erase', 'cases', 'cases/s', 'violations']];
      for (const r of reports) {
        rows.push([r.board, r.strategy, String(r.writeSize), `0x${r.eraseValue.toString(16).padStart(2, '0')}`, String(r.cases), rate(r.casesPerSecond), String(r.violations.length)]);
      }
      const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
      const numeric = new Set([2, 4, 5, 6]);
      const lines = rows.map((row) => row.map((cell, c) => (numeric.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd());
      lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
      lines.push('');
      lines.push(`${reports.length} configurations, ${cases} cases in ${(durationMs / 1000).toFixed(1)} s (${rate(casesPerSecond)} cases/s), ${violations.length} violation${violations.length === 1 ? '' : 's'}; phase ${phase}${argv.torn ? ', torn' : ''}`);
      if (result.skipped.length > 0) {
        lines.push(`skipped ${result.skipped.length}:`);
        for (const s of result.skipped) lines.push(`  ${s.board} ${s.strategy} ws ${s.writeSize} ev 0x${s.eraseValue.toString(16).padStart(2, '0')}: ${s.why}`);
      }
      if (violations.length > 0) {
        lines.push('violations:');
        for (const r of reports) {
          if (r.violations.length === 0) continue;
          lines.push(`  ${r.board} ${r.strategy} ws ${r.writeSize} ev 0x${r.eraseValue.toString(16).padStart(2, '0')}:`);
          lines.push(...formatViolations(r.violations, '    '));
        }
      }
      return lines.join('\n');
    },
    json,
  );
  if (violations.length > 0) throw new CheckError('VIOLATIONS', `sweep --matrix: ${violations.length} violation${violations.length === 1 ? '' : 's'} in ${reports.filter((r) => r.violations.length > 0).length} configuration(s)`);
}

function updateCutText(v: Pick<UpdateSweepViolation, 'opIndex' | 'block'>): string {
  if (v.opIndex === null) return 'no cut (the clean run)';
  return v.block === null ? `before op ${v.opIndex}` : `inside op ${v.opIndex} (block ${v.block})`;
}

function updateReportText(r: UpdateSweepReport, file: string): string {
  const lines: string[] = [];
  lines.push(`sweep ${file}: ${r.name}, ${r.board} ${r.strategy} over ${r.transport}, phase ${r.phase}${r.torn ? ', torn' : ''}, seed ${r.seed}${r.defects.length ? `, defect ${r.defects.join(', ')}` : ''}`);
  lines.push(`  clean run: ${r.ops} flash ops (${Object.entries(r.opsByPhase).map(([p, n]) => `${p} ${n}`).join(', ')})`);
  lines.push(`  ${r.cases} cases in ${(r.durationMs / 1000).toFixed(2)} s: ${rate(r.casesPerSecond)} cases/s`);
  if (r.narrative.length > 0) {
    lines.push('  the case, step by step:');
    for (const n of r.narrative) lines.push(`    ${n}`);
  }
  if (r.violations.length === 0) lines.push('  no violation: every case ended as the oracle expects (7 invariants)');
  else {
    const cases = new Set(r.violations.map((v) => `${v.opIndex}:${v.block}`)).size;
    lines.push(`  ${plural(r.violations.length, 'violation')} in ${plural(cases, 'case')}:`);
    let last = '';
    for (const v of r.violations) {
      const key = `${v.opIndex}:${v.block}`;
      if (key !== last) {
        lines.push(`    ${v.phase}, cut ${updateCutText(v)}:`);
        last = key;
      }
      lines.push(`      ${v.invariant}: ${v.message}`);
      lines.push(`      replay: ${v.replay}`);
    }
  }
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return lines.join('\n');
}

/** `ota-sim sweep SCENARIO ...`: the whole update, cut at every flash op of the chosen phases. */
async function runUpdateSweep(argv: SweepArgs, file: string): Promise<void> {
  for (const flag of ['board', 'strategy', 'image-size', 'multi-cut', 'write-size', 'erase-value', 'matrix', 'exhaustive'] as const) {
    if (argv[flag] !== undefined && argv[flag] !== false) throw new InputError('BAD_ARGUMENT', `--${flag}: not with a SCENARIO (the scenario file sets board, strategy and images)`);
  }
  for (const flag of ['phase', 'cut', 'seed', 'erase-patterns', 'from-op', 'to-op', 'max-violations', 'concurrency'] as const) {
    const v: unknown = argv[flag];
    if (Array.isArray(v)) throw new InputError('BAD_ARGUMENT', `--${flag}: given ${v.length} times; it takes one value`);
  }
  const phaseText = argv.phase ?? 'all';
  if (!(phaseText === 'all' || (UPDATE_PHASES as readonly string[]).includes(phaseText))) {
    throw new InputError('BAD_ARGUMENT', `--phase: expected one of ${UPDATE_PHASES.join(', ')}, all; got ${phaseText}`);
  }
  const phase = phaseText as UpdatePhaseArg;
  const defects = list(argv.defect);
  for (const d of defects) {
    if (!(BOOT_DEFECTS as readonly string[]).includes(d) && !(AGENT_DEFECTS as readonly string[]).includes(d)) {
      throw new InputError('UNKNOWN_DEFECT', `--defect ${d}: unknown; bootloader defects: ${BOOT_DEFECTS.join(', ')}; agent defects: ${AGENT_DEFECTS.join(', ')}`);
    }
  }
  const seed = optionalInt('--seed', argv.seed) ?? 1;
  const loaded = loadScenario(file);
  const spec = updateSpecFromScenario(loaded);
  const cut = argv.cut === undefined ? undefined : argv.cut.trim() === 'clean' ? 'clean' : parseCut(argv.cut);
  const concurrency = optionalInt('--concurrency', argv.concurrency, 1);
  if (concurrency !== undefined && concurrency > 32) throw new InputError('BAD_ARGUMENT', `--concurrency: expected 1..32, got ${concurrency}`);
  const progress = new Progress();
  const fromOp = optionalInt('--from-op', argv['from-op']);
  const toOp = optionalInt('--to-op', argv['to-op']);
  const erasePatterns = optionalInt('--erase-patterns', argv['erase-patterns'], 1);
  const maxViolations = optionalInt('--max-violations', argv['max-violations'], 1);
  let report: UpdateSweepReport;
  try {
    report = await sweepUpdate({
      spec,
      phase,
      torn: argv.torn === true,
      defects,
      seed,
      command: `ota-sim sweep ${file}`,
      ...(cut === 'clean' ? { toOp: 0, narrateClean: true } : cut ? { cut } : {}),
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(fromOp !== undefined && cut === undefined ? { fromOp } : {}),
      ...(toOp !== undefined && cut === undefined ? { toOp } : {}),
      ...(erasePatterns !== undefined ? { erasePatterns } : {}),
      ...(maxViolations !== undefined ? { maxViolations } : {}),
      onProgress: (done, total) => progress.update(`sweep ${spec.name} ${phase}: ${done}/${total} cases (${total > 0 ? Math.floor((done * 100) / total) : 0}%)`, done === total),
    });
  } finally {
    progress.done();
  }
  const json = {
    scenario: file,
    name: report.name,
    board: report.board,
    strategy: report.strategy,
    transport: report.transport,
    phase,
    torn: report.torn,
    seed,
    defects,
    cases: report.cases,
    ops: report.ops,
    opsByPhase: report.opsByPhase,
    durationMs: report.durationMs,
    casesPerSecond: report.casesPerSecond,
    violations: report.violations.map((v) => ({ invariant: v.invariant, opIndex: v.opIndex, block: v.block, phase: v.phase, device: v.device, message: v.message, replay: v.replay })),
    notes: report.notes,
    cleanRunDigest: report.cleanRunDigest,
    ...(report.narrative.length > 0 ? { narrative: report.narrative } : {}),
  };
  emit(argv, () => updateReportText(report, file), json);
  if (report.violations.length > 0) {
    const v = report.violations[0]!;
    throw new CheckError('VIOLATIONS', `sweep ${file}: ${plural(report.violations.length, 'violation')}; first: ${v.invariant}, ${v.phase}, cut ${updateCutText(v)}`);
  }
}

export const sweepCommand: CommandModule<GlobalArgs, SweepArgs> = {
  command: 'sweep [scenario]',
  describe: 'exhaustive power-cut sweep: of the bootloader, or with SCENARIO of a whole update over the network; cases, cases/s, violations with replay commands',
  builder: (y) =>
    y
      .positional('scenario', { type: 'string', describe: 'scenario file: sweep the whole update it describes (download, stage, swap, confirm, revert) over the network; without it the bootloader is swept' })
      .option('board', { type: 'string', describe: `board profile (default ${DEFAULT_BOARD}); with --matrix, repeat it to restrict the boards` })
      .option('strategy', { type: 'string', describe: `MCUboot strategy (${STRATEGIES.join(', ')}); default: the board's first; with --matrix, restricts the strategies` })
      .option('image-size', { type: 'string', describe: `size of the two images swapped, bytes (default ${DEFAULT_IMAGE_SIZE}, or what fits the slot)` })
      .option('phase', { type: 'string', describe: 'swap (the upgrade), revert (of an unconfirmed test image) or all (both); default all' })
      .option('torn', { type: 'boolean', describe: 'also cut inside every op: at every write block, and with seeded partial-erase patterns' })
      .option('multi-cut', { type: 'string', describe: 'cut power again while recovering: up to K further cuts per case, at seeded ops of the recovery boots' })
      .option('write-size', { type: 'string', describe: 'override the write size (1, 2, 4, 8, 16, 32); with --matrix, restricts the write sizes (default 1, 2, 4, 8)' })
      .option('erase-value', { type: 'string', describe: 'override the erase value (0 or 0xff); with --matrix, restricts the erase values (default both)' })
      .option('matrix', { type: 'boolean', describe: 'every board × strategy × write size × erase value (--board, --strategy, --write-size, --erase-value restrict it)' })
      .option('defect', { type: 'string', describe: `run a seeded defect: bootloader (${BOOT_DEFECTS.join(', ')}) or, with SCENARIO, agent (${AGENT_DEFECTS.join(', ')}); the sweep must then report violations` })
      .option('cut', { type: 'string', describe: 'replay one case: a cut before op OP, or inside it at write block (or erase pattern) BLOCK; prints its narrative (with SCENARIO, "clean" replays the run without a cut)' })
      .option('concurrency', { type: 'string', describe: 'with SCENARIO: cases run at once (default 4, 1..32)' })
      .option('seed', { type: 'string', describe: 'seed of every fault decision: torn bits, erase patterns, multi-cut points (default 1)' })
      .option('erase-patterns', { type: 'string', describe: 'seeded partial-erase patterns per erase op with --torn (default: the engine\'s)' })
      .option('from-op', { type: 'string', describe: 'only cut at op indices >= this' })
      .option('to-op', { type: 'string', describe: 'only cut at op indices < this' })
      .option('max-violations', { type: 'string', describe: 'list at most this many violations (default 100); every case still runs' })
      .option('exhaustive', { type: 'boolean', describe: 'run every recovery boot to its end instead of stopping where it joins a boot already checked (slow; checks that shortcut)' })
      .epilog(
        'Exit 0 when no case violates an invariant, 1 when one does (each is printed with a replay command), 2 on bad input. ' +
          'A progress line is shown on stderr when it is a terminal.',
      ) as unknown as Argv<SweepArgs>,
  handler: async (argv) => {
    if (argv.scenario !== undefined) {
      await runUpdateSweep(argv, argv.scenario);
      return;
    }
    for (const flag of ['image-size', 'phase', 'multi-cut', 'cut', 'seed', 'erase-patterns', 'from-op', 'to-op', 'max-violations'] as const) {
      const v: unknown = argv[flag];
      if (Array.isArray(v)) throw new InputError('BAD_ARGUMENT', `--${flag}: given ${v.length} times; it takes one value`);
    }
    const phase = parsePhase(argv.phase);
    const seed = optionalInt('--seed', argv.seed) ?? 1;
    const imageSize = optionalInt('--image-size', argv['image-size'], 1);
    if (argv.matrix) {
      runMatrix(argv, phase, seed, imageSize);
      return;
    }
    const defects = parseDefects(list(argv.defect));
    const resolved = resolveSingle(argv);
    const options: SweepOptions = {
      board: resolved.board,
      strategy: resolved.strategy,
      imageSize_bytes: imageSize ?? Math.min(DEFAULT_IMAGE_SIZE, maxImageSize(resolved.profile, resolved.strategy)),
      phase,
      seed,
      torn: argv.torn === true,
      defects,
    };
    if (resolved.writeSize !== undefined) options.writeSize = resolved.writeSize;
    if (resolved.eraseValue !== undefined) options.eraseValue = resolved.eraseValue;
    const multiCut = optionalInt('--multi-cut', argv['multi-cut'], 1);
    if (multiCut !== undefined) options.multiCut = multiCut;
    const erasePatterns = optionalInt('--erase-patterns', argv['erase-patterns'], 1);
    if (erasePatterns !== undefined) options.erasePatterns = erasePatterns;
    const fromOp = optionalInt('--from-op', argv['from-op']);
    if (fromOp !== undefined) options.fromOp = fromOp;
    const toOp = optionalInt('--to-op', argv['to-op']);
    if (toOp !== undefined) options.toOp = toOp;
    const maxViolations = optionalInt('--max-violations', argv['max-violations'], 1);
    if (maxViolations !== undefined) options.maxViolations = maxViolations;
    if (argv.exhaustive) options.exhaustive = true;

    if (argv.cut !== undefined) {
      const cut = parseCut(argv.cut);
      const t0 = performance.now();
      const replay = replayCase({ ...options, cut });
      const durationMs = performance.now() - t0;
      const json = {
        replay: true,
        board: resolved.profile.name,
        strategy: resolved.strategy,
        phase,
        cut,
        seed,
        defects,
        imageSize: options.imageSize_bytes,
        cases: 1,
        durationMs,
        casesPerSecond: durationMs > 0 ? 1000 / durationMs : 0,
        narrative: replay.narrative,
        violations: replay.violations.map(violationJson),
      };
      emit(
        argv,
        () => {
          const lines = [`replay ${resolved.profile.name} ${resolved.strategy}, phase ${phase}, ${cutText(cut)}${defects.length ? `, defect ${defects.join(', ')}` : ''}:`];
          for (const n of replay.narrative) lines.push(`  ${n}`);
          if (replay.violations.length === 0) lines.push('no violation');
          else {
            lines.push(`${plural(replay.violations.length, 'violation')}:`);
            lines.push(...formatViolations(replay.violations, '  ', false));
          }
          return lines.join('\n');
        },
        json,
      );
      if (replay.violations.length > 0) {
        const v = replay.violations[0]!;
        throw new CheckError('VIOLATION', `${cutText(v)} (${v.phase}): ${v.invariant}: ${v.detail}`);
      }
      return;
    }

    const progress = new Progress();
    options.onProgress = (done, total) => progress.update(`sweep ${resolved.profile.name} ${resolved.strategy} ${phase}: ${done}/${total} cases (${total > 0 ? Math.floor((done * 100) / total) : 0}%)`, done === total);
    let report: SweepReport;
    try {
      report = sweep(options);
    } finally {
      progress.done();
    }
    emit(argv, () => formatReport(report, defects), { ...reportJson(report), seed, defects, imageSize: options.imageSize_bytes });
    if (report.violations.length > 0) {
      const first = report.violations[0]!;
      throw new CheckError('VIOLATIONS', `sweep: ${plural(report.violations.length, 'violation')} listed; first: ${first.invariant}, ${first.phase}, cut ${cutText(first)}`);
    }
  },
};
