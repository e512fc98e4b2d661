/**
 * `ota-sim report merge SHARD.json... [--report-dir DIR]` (CLI.md): combine the results of
 * `ota-sim fleet --shard I/N --out FILE` into one fleet result (printed, and written to
 * DIR/fleet.json). Exit 1 when a shard is missing, a device bricked or the target was missed.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { EnvironmentError, InputError } from '../errors.js';
import { fleetJson, mergeShards, renderFleetSummary } from '../fleet/index.js';
import { asFleetResult } from '../fleet/merge.js';
import { emit } from './output.js';
import type { GlobalArgs } from './output.js';

interface MergeArgs extends GlobalArgs {
  files: string[];
  'report-dir'?: string;
}

const mergeCommand: CommandModule<GlobalArgs, MergeArgs> = {
  command: 'merge <files..>',
  describe: 'combine fleet shard results (ota-sim fleet --shard I/N --out FILE) into one report',
  builder: (y) => y.positional('files', { type: 'string', array: true, describe: 'shard result files' }).option('report-dir', { type: 'string', describe: 'write the merged result to DIR/fleet.json' }) as Argv<MergeArgs>,
  handler: (argv) => {
    const parts = argv.files.map((source) => {
      let text: string;
      try {
        text = readFileSync(source, 'utf8');
      } catch (e) {
        throw new InputError('FILE_NOT_READABLE', `${source}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      }
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (e) {
        throw new InputError('BAD_SHARD_FILE', `${source}: not JSON (${e instanceof Error ? e.message : String(e)})`);
      }
      return { result: asFleetResult(doc, source), source };
    });
    const merged = mergeShards(parts) as ReturnType<typeof mergeShards> & { missingShards?: number[] };
    const missing = merged.missingShards ?? [];
    if (argv['report-dir'] !== undefined) {
      const file = join(argv['report-dir'], 'fleet.json');
      try {
        mkdirSync(argv['report-dir'], { recursive: true });
        writeFileSync(file, JSON.stringify(merged, null, 2) + '\n');
      } catch (e) {
        throw new EnvironmentError('FILE_NOT_WRITABLE', `--report-dir: ${file}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      }
    }
    emit(argv, () => renderFleetSummary(merged) + (missing.length > 0 ? `\n  MISSING shards: ${missing.map((i) => `${i}/${merged.shard.count}`).join(', ')}` : ''), fleetJson(merged));
    if (missing.length > 0 || merged.bricked > 0 || !merged.targetReached) process.exitCode = 1;
  },
};

export const reportCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'report <command>',
  describe: 'work with reports: merge fleet shard results',
  builder: (y) => y.command(mergeCommand).demandCommand(1, 'name a report command: merge') as Argv<GlobalArgs>,
  handler: () => {},
};
