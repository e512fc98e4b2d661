/**
 * API facade, scenarios and sweeps: `loadScenario` and `runScenario` (a YAML path, a plain object
 * or a loaded scenario; the result is the ScenarioResult the JSON report carries, plus the fault
 * log), and one `sweep` for both power-cut sweeps: the bootloader sweep (boot options: board,
 * strategy, image size, phase swap|revert|all; synchronous) and, when a `scenario` is given, the
 * sweep of the whole update (download, stage, swap, confirm ...; asynchronous).
 */
import { sweep as sweepBoot } from '../boot/sweep.js';
import type { SweepOptions, SweepReport } from '../boot/sweep.js';
import { InputError } from '../errors.js';
import { loadScenario } from '../scenario/load.js';
import type { LoadedScenario } from '../scenario/load.js';
import { sweepUpdate } from '../scenario/sweep.js';
import type { UpdatePhaseArg, UpdateSweepOptions, UpdateSweepReport } from '../scenario/sweep.js';
import { updateSpecFromScenario } from '../scenario/sweep-spec.js';

export { loadScenario } from '../scenario/load.js';
export { runScenario } from '../scenario/runner.js';

/** A scenario: a YAML file path, a plain object with the YAML's fields, or what loadScenario returned. */
export type ScenarioSource = string | object | LoadedScenario;

function isLoaded(s: ScenarioSource): s is LoadedScenario {
  return typeof s === 'object' && s !== null && 'spec' in s && 'images' in s && (s as { images: unknown }).images instanceof Map;
}

/** The whole-update sweep: every flash op of one update of the scenario's first device, cut in turn. */
export interface UpdateSweepArgs extends Omit<UpdateSweepOptions, 'spec' | 'phase' | 'command'> {
  scenario: ScenarioSource;
  /** download, stage, swap, confirm, revert ... or all (default 'all'). */
  phase?: UpdatePhaseArg;
  /** What replay commands start with (default `ota-sim sweep FILE`). */
  command?: string;
}

/** The bootloader sweep (synchronous): SweepOptions as `ota-sim sweep` without a scenario. */
export function sweep(options: SweepOptions): SweepReport;
/** The whole-update sweep of a scenario (asynchronous). */
export function sweep(options: UpdateSweepArgs): Promise<UpdateSweepReport>;
export function sweep(options: SweepOptions | UpdateSweepArgs): SweepReport | Promise<UpdateSweepReport> {
  if (typeof options !== 'object' || options === null) throw new InputError('BAD_ARGUMENT', 'sweep: expected an options object');
  if (!('scenario' in options)) return sweepBoot(options);
  const { scenario, phase, command, ...rest } = options;
  const loaded = isLoaded(scenario) ? scenario : loadScenario(scenario);
  const spec = updateSpecFromScenario(loaded);
  return sweepUpdate({ ...rest, spec, phase: phase ?? 'all', command: command ?? `ota-sim sweep ${loaded.file ?? '<scenario.yaml>'}` });
}
