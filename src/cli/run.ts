/**
 * `ota-sim run [PATH...]`: run scenario files or folders (default scenarios/) on the embedded
 * server; a progress bar on a TTY, the console table, and JUnit XML, JSON and HTML reports in
 * --report-dir. Exit 0 when every scenario passed, 1 when one failed, 2 for a bad scenario file
 * or option, 3 when the environment is in the way (a report folder that cannot be written).
 */
import type { Argv, CommandModule } from 'yargs';
import { InputError } from '../errors.js';
import { parseShard } from '../fleet/plan.js';
import { createProgress, renderConsole, renderJson, writeReports } from '../report/index.js';
import { runScenarios } from '../scenario/run.js';
import { parseIntArg } from './output.js';
import type { GlobalArgs } from './output.js';

interface RunArgs extends GlobalArgs {
  paths?: string[];
  seed?: string;
  'report-dir': string;
  filter?: string;
  'time-scale'?: string;
  parallel: string;
  shard?: string;
}

function timeScaleArg(v: string): number {
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0 && n <= 10)) throw new InputError('BAD_ARGUMENT', `--time-scale: expected a number > 0 and ≤ 10 (0.01 runs 100x faster than real time), got ${JSON.stringify(v)}`);
  return n;
}

export const runCommand: CommandModule<GlobalArgs, RunArgs> = {
  command: 'run [paths..]',
  describe: 'run scenario files or folders (default scenarios/): console summary, JUnit XML, JSON and HTML reports',
  builder: (y) =>
    y
      .positional('paths', { type: 'string', array: true, describe: 'scenario .yaml files or folders of them' })
      .option('seed', { type: 'string', describe: "seed for every scenario (default: each scenario's own)" })
      .option('report-dir', { type: 'string', default: 'reports', describe: 'write junit.xml, results.json and report.html here' })
      .option('filter', { type: 'string', describe: 'only scenarios whose name contains TEXT' })
      .option('time-scale', { type: 'string', describe: 'wall ms per simulated ms for every timer (default: each scenario\u2019s own, usually 0.01)' })
      .option('parallel', { type: 'string', default: '1', describe: 'scenarios run at once (1..8)' })
      .option('shard', { type: 'string', describe: 'run the I-th of N disjoint slices of the scenarios (1-based, name order), e.g. 2/4: one CI matrix job' })
      .example('$0 run', 'run every scenario in scenarios/')
      .example('$0 run scenarios/07-self-test-fail-rollback.yaml --seed 7', 'replay one scenario with a seed') as Argv<RunArgs>,
  handler: async (argv) => {
    const seed = argv.seed === undefined ? undefined : parseIntArg('--seed', argv.seed);
    if (seed !== undefined && seed > 0xffffffff) throw new InputError('BAD_ARGUMENT', `--seed: expected a whole number 0..4294967295, got ${seed}`);
    const timeScale = argv['time-scale'] === undefined ? undefined : timeScaleArg(argv['time-scale']);
    const parallel = parseIntArg('--parallel', argv.parallel);
    const shard = argv.shard === undefined ? undefined : parseShard(argv.shard);
    const paths = argv.paths && argv.paths.length > 0 ? argv.paths : ['scenarios'];
    const tty = process.stderr.isTTY === true && !argv.json;
    let progress = createProgress(0, { enabled: false });
    const run = await runScenarios(paths, {
      seed,
      timeScale,
      filter: argv.filter,
      parallel,
      ...(shard ? { shard } : {}),
      onStart: (name) => progress.start(name),
      onDone: (r) => progress.done(r.name, r.passed),
      onLoaded: (n) => {
        progress = createProgress(n, { enabled: tty });
      },
    });
    progress.stop();
    const files = await writeReports(run, argv['report-dir']);
    if (argv.json) process.stdout.write(renderJson(run));
    else {
      process.stdout.write(renderConsole(run, { color: process.stdout.isTTY === true }));
      process.stdout.write(`reports: ${files.junit}, ${files.json}, ${files.html}\n`);
    }
    process.exitCode = run.failed > 0 ? 1 : 0;
  },
};
