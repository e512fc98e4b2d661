/**
 * `ota-sim flash create|write|inspect`: flash files for a board — make an erased one, program a
 * signed image into a slot (optionally confirmed, or pending as a test), and show what a flash
 * holds: partitions, each slot's image and trailer, the swap the next boot would do.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { InputError } from '../errors.js';
import { Flash } from '../flash/flash.js';
import { loadBoard } from '../flash/board.js';
import { openFlash, saveFlash } from '../flash/persist.js';
import type { OpenOptions } from '../flash/persist.js';
import type { EraseValue, Strategy } from '../flash/types.js';
import { programSlot } from '../boot/program.js';
import type { SlotMark, SlotName } from '../boot/program.js';
import { describeFlash, formatFlashDescription } from './describe.js';
import { readInput } from './files.js';
import { emit, parseIntArg } from './output.js';
import type { GlobalArgs } from './output.js';
import { createTrustStore, parseKeyPem } from '../image/index.js';
import type { TrustStore } from '../image/index.js';
import { ALL_STRATEGIES } from '../flash/types.js';

export const STRATEGIES = ALL_STRATEGIES;

interface BoardArgs extends GlobalArgs {
  board?: string;
  'write-size'?: string;
  'erase-value'?: string;
}

/** --board, --write-size and --erase-value, shared by commands that open or make flash files. */
export function boardOptions<T>(y: Argv<T>): Argv<T & BoardArgs> {
  return y
    .option('board', { type: 'string', describe: 'board profile: a name from sim-flash/boards or a path to a .json profile' })
    .option('write-size', { type: 'string', describe: 'override the write size of every flash device (1, 2, 4, 8, 16, 32)' })
    .option('erase-value', { type: 'string', describe: 'override the erase value (0 or 0xff)' }) as Argv<T & BoardArgs>;
}

export function openOptions(argv: BoardArgs): OpenOptions {
  const options: OpenOptions = {};
  if (argv.board !== undefined) options.board = argv.board;
  if (argv['write-size'] !== undefined) options.writeSize = parseIntArg('--write-size', argv['write-size']);
  if (argv['erase-value'] !== undefined) options.eraseValue = parseEraseValue(argv['erase-value']);
  return options;
}

export function parseEraseValue(text: string): EraseValue {
  const n = parseIntArg('--erase-value', text);
  if (n !== 0 && n !== 0xff) throw new InputError('BAD_ARGUMENT', `--erase-value: expected 0 or 0xff, got ${text}`);
  return n;
}

export function parseStrategy(text: string | undefined): Strategy | undefined {
  if (text === undefined) return undefined;
  if (!(STRATEGIES as readonly string[]).includes(text)) throw new InputError('BAD_ARGUMENT', `--strategy: expected one of ${STRATEGIES.join(', ')}, got ${text}`);
  return text as Strategy;
}

/** Public keys from --trust files (PEM, private or public). */
export function loadTrust(paths: readonly string[] | undefined): TrustStore | null {
  if (!paths || paths.length === 0) return null;
  return createTrustStore(paths.map((p) => parseKeyPem(readInput(p, 'key'), p)));
}

interface CreateArgs extends BoardArgs {
  file: string;
  force?: boolean;
  lenient?: boolean;
}

interface WriteArgs extends BoardArgs {
  file: string;
  image: string;
  slot: SlotName;
  confirm?: boolean;
  test?: boolean;
  strategy?: string;
}

interface InspectArgs extends BoardArgs {
  file: string;
  strategy?: string;
  trust?: string[];
}

const create: CommandModule<GlobalArgs, CreateArgs> = {
  command: 'create <file>',
  describe: 'make a new, erased flash file for a board',
  builder: (y) =>
    boardOptions(y)
      .positional('file', { type: 'string', demandOption: true, describe: 'flash file to write (a sidecar FILE.json goes beside it)' })
      .option('force', { type: 'boolean', describe: 'overwrite an existing flash file' })
      .option('lenient', { type: 'boolean', describe: 'allow programming over programmed bits (AND/OR) instead of refusing it' })
      .demandOption('board') as Argv<CreateArgs>,
  handler: (argv) => {
    if (existsSync(argv.file) && !argv.force) {
      throw new InputError('FILE_EXISTS', `${argv.file}: already exists (use --force to replace it)`);
    }
    const options = openOptions(argv);
    const overrides: { writeSize?: number; eraseValue?: EraseValue } = {};
    if (options.writeSize !== undefined) overrides.writeSize = options.writeSize;
    if (options.eraseValue !== undefined) overrides.eraseValue = options.eraseValue;
    const board = loadBoard(argv.board!, overrides);
    const flash = Flash.create(board, { strict: !argv.lenient });
    mkdirSync(dirname(argv.file), { recursive: true });
    saveFlash(flash, argv.file);
    const size = board.flash.map((d) => `${d.id} ${flash.deviceSize(d.id) / 1024} KiB`).join(', ');
    emit(argv, `created ${argv.file}: board ${board.name}, ${size}, erased`, { file: argv.file, board: board.name, devices: board.flash.map((d) => ({ id: d.id, size: flash.deviceSize(d.id) })) });
  },
};

const write: CommandModule<GlobalArgs, WriteArgs> = {
  command: 'write <file> <image>',
  describe: 'program a signed image into a slot, optionally confirmed or pending as a test',
  builder: (y) =>
    boardOptions(y)
      .positional('file', { type: 'string', demandOption: true, describe: 'flash file' })
      .positional('image', { type: 'string', demandOption: true, describe: 'signed image (MCUboot format)' })
      .option('slot', { choices: ['slot0', 'slot1'] as const, demandOption: true, describe: 'partition to program' })
      .option('confirm', { type: 'boolean', describe: 'slot0: magic + image_ok (confirmed); slot1: pending permanent upgrade' })
      .option('test', { type: 'boolean', describe: 'slot1: pending test upgrade (reverted unless the new image confirms itself)' })
      .option('strategy', { type: 'string', describe: `trailer layout of this MCUboot strategy (${STRATEGIES.join(', ')}); default: the board's first` })
      .conflicts('confirm', 'test') as unknown as Argv<WriteArgs>,
  handler: (argv) => {
    const flash = openFlash(argv.file, openOptions(argv));
    const image = readInput(argv.image, 'image');
    const mark: SlotMark = argv.confirm ? 'confirm' : argv.test ? 'test' : 'none';
    const before = flash.opIndex;
    programSlot(flash, argv.slot, image, mark, parseStrategy(argv.strategy));
    saveFlash(flash, argv.file);
    const what = mark === 'none' ? '' : mark === 'confirm' ? (argv.slot === 'slot0' ? ', confirmed' : ', pending permanent upgrade') : ', pending test upgrade';
    emit(argv, `wrote ${argv.image} (${image.length} bytes) to ${argv.slot}${what}: ${flash.opIndex - before} flash ops`, {
      file: argv.file,
      slot: argv.slot,
      mark,
      bytes: image.length,
      ops: flash.opIndex - before,
    });
  },
};

const inspect: CommandModule<GlobalArgs, InspectArgs> = {
  command: 'inspect <file>',
  describe: 'partitions, slot images and trailers, the swap the next boot would do',
  builder: (y) =>
    boardOptions(y)
      .positional('file', { type: 'string', demandOption: true, describe: 'flash file or raw dump (a dump needs --board)' })
      .option('strategy', { type: 'string', describe: `decode trailers for this strategy (${STRATEGIES.join(', ')}); default: the board's first` })
      .option('trust', { type: 'string', array: true, describe: 'public (or private) key PEM to check signatures with; repeatable' }) as Argv<InspectArgs>,
  handler: (argv) => {
    const flash = openFlash(argv.file, openOptions(argv));
    const description = describeFlash(flash, { strategy: parseStrategy(argv.strategy), trust: loadTrust(argv.trust) });
    emit(argv, () => formatFlashDescription(argv.file, description), description);
  },
};

export const flashCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'flash <command>',
  describe: 'make, program and inspect simulated flash files',
  builder: (y) => y.command(create).command(write).command(inspect).demandCommand(1, 'name a flash command: create, write or inspect'),
  handler: () => {},
};
