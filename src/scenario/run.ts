/**
 * Runs a set of scenario files or folders and collects one RunResult (RUN_RESULT_SCHEMA). Every
 * file is loaded and checked first, so a bad file fails the run (InputError, exit 2) before any
 * scenario starts. Scenarios run one after another by default: each is deterministic on its own
 * (fault decisions are keyed by device and op/datagram index), and a 2-core machine gains little
 * from overlapping them; `parallel` > 1 overlaps them anyway.
 */
import { agentStateNames } from '../agent/index.js';
import { InputError } from '../errors.js';
import { loadScenario, scenarioFiles } from './load.js';
import type { LoadedScenario } from './load.js';
import { RUN_RESULT_SCHEMA } from './result.js';
import type { RunResult, ScenarioResult } from './result.js';
import { runScenario } from './runner.js';

export interface RunScenariosOptions {
  seed?: number;
  timeScale?: number;
  /** Only scenarios whose name contains this text (case-insensitive). */
  filter?: string;
  /** Scenarios run at once (1..8, default 1). */
  parallel?: number;
  /** Run only the I-th of N disjoint slices (1-based) of the scenarios, in name order: a CI matrix job. */
  shard?: { index: number; count: number };
  /** Called once the scenarios are loaded, with how many will run. */
  onLoaded?: (count: number) => void;
  onStart?: (name: string) => void;
  onDone?: (result: ScenarioResult) => void;
}

/** Load every scenario of the given files/folders (in name order), keeping those the filter names. */
export function loadScenarios(paths: readonly string[], filter?: string): LoadedScenario[] {
  const files = scenarioFiles(paths.length > 0 ? paths : ['scenarios']);
  const loaded = files.map((f) => loadScenario(f));
  const names = new Map<string, string>();
  for (const l of loaded) {
    const prior = names.get(l.spec.name);
    if (prior !== undefined) throw new InputError('BAD_SCENARIO', `${l.file}: name: "${l.spec.name}" is already the name of ${prior}; scenario names must be unique`);
    names.set(l.spec.name, l.file ?? '');
  }
  const f = filter?.toLowerCase();
  const kept = f ? loaded.filter((l) => l.spec.name.toLowerCase().includes(f)) : loaded;
  if (kept.length === 0) throw new InputError('NO_SCENARIOS', `no scenario name contains "${filter}" (names: ${loaded.map((l) => l.spec.name).join(', ')})`);
  return kept;
}

/** The I-th of N disjoint slices (1-based): every N-th item from the I-th; together the slices are the list. */
export function shardOf<T>(items: readonly T[], shard: { index: number; count: number }): T[] {
  if (!(Number.isInteger(shard.count) && shard.count >= 1 && Number.isInteger(shard.index) && shard.index >= 1 && shard.index <= shard.count)) {
    throw new InputError('BAD_ARGUMENT', `--shard ${shard.index}/${shard.count}: need 1 <= I <= N`);
  }
  return items.filter((_, i) => i % shard.count === shard.index - 1);
}

export async function runScenarios(paths: readonly string[], opts: RunScenariosOptions = {}): Promise<RunResult> {
  const wallStart = performance.now();
  const all = loadScenarios(paths, opts.filter);
  const scenarios = opts.shard ? shardOf(all, opts.shard) : all;
  const parallel = opts.parallel ?? 1;
  if (!(Number.isInteger(parallel) && parallel >= 1 && parallel <= 8)) throw new InputError('BAD_ARGUMENT', `parallel: expected a whole number 1..8, got ${parallel}`);
  opts.onLoaded?.(scenarios.length);
  const results: ScenarioResult[] = new Array<ScenarioResult>(scenarios.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      const s = scenarios[i];
      if (s === undefined) return;
      opts.onStart?.(s.spec.name);
      const r = await runScenario(s, { seed: opts.seed, timeScale: opts.timeScale });
      results[i] = r;
      opts.onDone?.(r);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, scenarios.length) }, () => worker()));
  const passed = results.filter((r) => r.passed).length;
  return {
    schema: RUN_RESULT_SCHEMA,
    passed,
    failed: results.length - passed,
    duration_wallMs: performance.now() - wallStart,
    seed: opts.seed ?? null,
    scenarios: results,
    agentStates: agentStateNames(),
  };
}
