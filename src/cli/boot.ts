/**
 * `ota-sim boot FLASHFILE`: run the bootloader model once on a flash file — complete an interrupted
 * swap, start a pending upgrade or revert, validate — write the flash back as the bootloader left
 * it, and say what it booted (or that nothing is bootable: the brick, exit 1).
 */
import { chmodSync, existsSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { CheckError, EnvironmentError, InputError } from '../errors.js';
import { boot } from '../boot/boot.js';
import type { BootResult } from '../boot/boot.js';
import { trailerConfigOf } from '../boot/public.js';
import { readSwapState, swapTypeName } from '../boot/trailer.js';
import { swapTypeFromStates } from '../boot/public.js';
import { FlashError } from '../flash/errors.js';
import type { Flash } from '../flash/flash.js';
import { strategyProblem } from '../flash/board.js';
import { chipPath, openFlash, saveFlash, sidecarPath } from '../flash/persist.js';
import type { BoardProfile, Strategy } from '../flash/types.js';
import { formatVersion } from '../image/header.js';
import { STRATEGIES, boardOptions, loadTrust, openOptions, parseStrategy } from './flash.js';
import { emit } from './output.js';
import type { GlobalArgs } from './output.js';

interface BootArgs extends GlobalArgs {
  file: string;
  board?: string;
  'write-size'?: string;
  'erase-value'?: string;
  strategy?: string;
  trust?: string | string[];
  lenient?: boolean;
  'dry-run'?: boolean;
}

/** What `boot --json` prints. */
export interface BootReport {
  file: string;
  board: string;
  strategy: Strategy;
  booted: boolean;
  /** The swap type MCUboot acted on: none, test, perm, revert, fail (or panic). */
  action: string;
  /** An upgrade or revert interrupted by a power cut was completed. */
  resumed: boolean;
  slot: 'slot0' | null;
  version: string | null;
  /** The booted image's behaviour TLV (0xa0), null if it has none (nominal behaviour). */
  behaviour: object | null;
  /** The board TLV (0xa1) of the booted image, null if none. */
  imageBoard: string | null;
  /** The booted image is confirmed (primary image_ok set, or no trailer): it will not be reverted. */
  confirmed: boolean | null;
  /** The swap type the next boot would choose from the trailers as they are now. */
  nextBoot: string;
  canRevert: boolean;
  ops: number;
  flashTimeUs: number;
  nvCounter: number | null;
  reason: string | null;
  notes: string[];
  /** How the result was stored: 'sidecar' (flash file + FILE.json), 'raw' (plain dump), 'none'. */
  written: 'sidecar' | 'raw' | 'none';
}

/** The strategy to boot with: --strategy (checked against the board) or the board's first. */
export function chooseStrategy(board: BoardProfile, requested: Strategy | undefined, file: string): Strategy {
  const listed = board.mcuboot.strategies;
  if (requested === undefined) {
    const first = listed[0];
    if (first === undefined) throw new InputError('NO_STRATEGY', `${file}: board ${board.name} lists no MCUboot strategy; name one with --strategy`);
    return first;
  }
  if (!listed.includes(requested)) {
    const why = strategyProblem(requested, board);
    throw new InputError(
      'BAD_STRATEGY',
      `--strategy ${requested}: board ${board.name} cannot do it (${why ?? 'not among its MCUboot strategies'}; it lists ${listed.join(', ') || 'none'})`,
    );
  }
  return requested;
}

function formatUs(us: number): string {
  if (us >= 1_000_000) return `${(us / 1_000_000).toFixed(2)} s`;
  if (us >= 1000) return `${(us / 1000).toFixed(1)} ms`;
  return `${us} us`;
}

/** Replace `path` with `bytes` atomically, keeping the file mode of what was there. */
function replaceFile(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes);
    if (existsSync(path)) chmodSync(tmp, statSync(path).mode & 0o7777);
    renameSync(tmp, path);
  } catch (err) {
    try {
      if (existsSync(tmp)) unlinkSync(tmp);
    } catch {
      // best effort
    }
    throw new EnvironmentError('WRITE_FAILED', `${path}: cannot write (${(err as Error).message})`);
  }
}

/**
 * A raw dump stays a raw dump: the first chip goes back into FILE, a further chip into FILE.<id>
 * if that file existed or the boot wrote to that chip; no sidecar is made.
 */
function writeRaw(flash: Flash, file: string): void {
  flash.board.flash.forEach((spec, i) => {
    const path = chipPath(file, spec.id, i);
    const bytes = flash.dump(spec.id);
    if (i > 0 && !existsSync(path) && bytes.every((b) => b === spec.eraseValue)) return;
    replaceFile(path, bytes);
  });
}

function buildReport(argv: BootArgs, flash: Flash, strategy: Strategy, r: BootResult, ops: number, flashTimeUs: number, written: BootReport['written']): BootReport {
  const cfg = trailerConfigOf(flash.board, strategy);
  const primary = readSwapState(flash.area('slot0'), cfg);
  const secondary = readSwapState(flash.area('slot1'), cfg);
  const booted = r.kind === 'booted';
  const notes = [...r.notes];
  if (!r.canRevert && (r.action === 'test' || r.action === 'perm')) {
    if (!notes.some((n) => n.includes('cannot revert'))) notes.push(`${strategy} cannot revert: the old image is overwritten`);
  }
  return {
    file: argv.file,
    board: flash.board.name,
    strategy,
    booted,
    action: String(r.action),
    resumed: r.resumed,
    slot: booted ? r.slot : null,
    version: booted ? formatVersion(r.header.version) : null,
    behaviour: booted ? (r.image?.behaviour ?? null) : null,
    imageBoard: booted ? (r.image?.board ?? null) : null,
    confirmed: booted ? primary.magic !== 'good' || primary.imageOk === 'set' : null,
    nextBoot: String(swapTypeName(swapTypeFromStates(primary, secondary))),
    canRevert: r.canRevert,
    ops,
    flashTimeUs,
    nvCounter: r.nvCounter,
    reason: r.kind === 'no-bootable-image' ? r.reason : null,
    notes,
    written,
  };
}

function formatReport(rep: BootReport): string {
  const lines: string[] = [];
  if (rep.booted) {
    const how = rep.action === 'none' ? 'no upgrade' : `${rep.action}${rep.resumed ? ', resumed an interrupted swap' : ''}`;
    lines.push(`${rep.file}: booted ${rep.slot}, version ${rep.version} (${rep.strategy}; action: ${how})`);
    const state = rep.confirmed
      ? 'confirmed'
      : rep.canRevert
        ? 'running as a test: it is reverted at the next boot unless it confirms itself (boot_set_confirmed)'
        : 'not confirmed (overwrite-only cannot revert it)';
    lines.push(`  image:     ${state}`);
    lines.push(`  behaviour: ${rep.behaviour ? JSON.stringify(rep.behaviour) : 'none (nominal: self-test passes, connects)'}${rep.imageBoard ? `; board TLV ${rep.imageBoard}` : ''}`);
  } else {
    lines.push(`${rep.file}: NO BOOTABLE IMAGE (${rep.strategy}; action: ${rep.action}${rep.resumed ? ', resumed' : ''}): ${rep.reason}`);
  }
  lines.push(`  flash:     ${rep.ops} ops, ${formatUs(rep.flashTimeUs)} simulated flash time`);
  lines.push(`  next boot: ${rep.nextBoot}`);
  if (rep.notes.length > 0) {
    lines.push('  notes:');
    for (const n of rep.notes) lines.push(`    - ${n}`);
  }
  const where = rep.written === 'none' ? (rep.ops === 0 ? 'nothing written (no flash op)' : 'nothing written (--dry-run)') : rep.written === 'raw' ? `written back to ${rep.file} (raw dump, no sidecar)` : `written back to ${rep.file} and ${sidecarPath(rep.file)}`;
  lines.push(`  ${where}`);
  return lines.join('\n');
}

export const bootCommand: CommandModule<GlobalArgs, BootArgs> = {
  command: 'boot <file>',
  describe: 'run the bootloader model once on a flash file, write the result back, say what it booted',
  builder: (y) =>
    boardOptions(y)
      .positional('file', { type: 'string', demandOption: true, describe: 'flash file, or a raw dump of the first flash device (a dump without a sidecar needs --board)' })
      .option('strategy', { type: 'string', describe: `MCUboot upgrade strategy (${STRATEGIES.join(', ')}); default: the board's first listed` })
      .option('trust', {
        type: 'string',
        describe: 'public (or private) key PEM the bootloader is built with (MCUboot has no default key); repeat for several; required',
      })
      .option('lenient', { type: 'boolean', describe: 'allow re-programming programmed blocks (as most NOR does) instead of refusing it' })
      .option('dry-run', { type: 'boolean', describe: 'report what the boot would do, but write nothing back' })
      .epilog(
        'The flash is written back as the bootloader leaves it. A flash file with a sidecar (FILE.json) is saved ' +
          'with its counters (op index, simulated time, erase counts). A raw dump without a sidecar (from a device ' +
          "or MCUboot's simulator) stays a plain raw dump: it is rewritten in place, byte for byte as the device would " +
          'read it, and no sidecar is created; a further flash device is rewritten in FILE.<id> if that file exists, or ' +
          'created only if the boot wrote to it. If the boot did no flash op, nothing is written. --dry-run never writes.\n\n' +
          'Exit 0 when an image boots, 1 when none is bootable (the brick), 2 on bad input.',
      ) as unknown as Argv<BootArgs>,
  handler: (argv) => {
    for (const flag of ['board', 'write-size', 'erase-value', 'strategy'] as const) {
      const v: unknown = argv[flag];
      if (Array.isArray(v)) throw new InputError('BAD_ARGUMENT', `--${flag}: given ${v.length} times; it takes one value`);
    }
    const requested = parseStrategy(argv.strategy);
    const trustFiles = argv.trust === undefined ? [] : Array.isArray(argv.trust) ? argv.trust : [argv.trust];
    if (trustFiles.length === 0) {
      throw new InputError('NO_TRUST', '--trust: name the public key the bootloader is built with (e.g. --trust pub.pem from `ota-sim image getpub`); MCUboot has no default key');
    }
    const trust = loadTrust(trustFiles)!;
    const hadSidecar = existsSync(sidecarPath(argv.file));
    const options = openOptions(argv);
    if (argv.lenient) options.strict = false;
    const flash = openFlash(argv.file, options);
    const strategy = chooseStrategy(flash.board, requested, argv.file);
    const startOps = flash.opIndex;
    const startUs = flash.elapsedUs;
    let result: BootResult;
    try {
      result = boot(flash, { strategy, trustedKeys: trust.keys });
    } catch (err) {
      if (err instanceof FlashError) {
        const hint = err.code === 'NOT_ERASED' && flash.strict ? ' (real NOR may allow it: try --lenient)' : '';
        throw new CheckError(err.code, `${argv.file}: the bootloader's flash op failed: ${err.message}${hint}`);
      }
      throw err;
    }
    const ops = flash.opIndex - startOps;
    let written: BootReport['written'] = 'none';
    if (!argv['dry-run'] && ops > 0) {
      if (hadSidecar) {
        saveFlash(flash, argv.file);
        written = 'sidecar';
      } else {
        writeRaw(flash, argv.file);
        written = 'raw';
      }
    }
    const report = buildReport(argv, flash, strategy, result, ops, flash.elapsedUs - startUs, written);
    const unsupported = trust.keys.filter((k) => k.type !== 'ed25519');
    if (unsupported.length > 0) {
      report.notes.push(`the bootloader model checks ed25519 signatures only so far: ${unsupported.map((k) => k.type).join(', ')} key(s) from --trust cannot validate an image`);
    }
    if (result.kind === 'booted') {
      emit(argv, () => formatReport(report), report);
      return;
    }
    if (argv.json) emit(argv, '', report);
    else process.stdout.write(formatReport(report) + '\n');
    throw new CheckError('NO_BOOTABLE_IMAGE', `${argv.file}: no bootable image: ${report.reason}`);
  },
};
