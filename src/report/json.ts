/**
 * results.json: the RunResult itself with a stable key order (schema order for the known
 * objects, alphabetical for open records and unknown extra fields), 2-space indent. It carries
 * `run --json`'s guarantee { passed, failed, scenarios: [{ name, passed, seed }] } by the schema.
 */
import type { DeviceResult, RunResult, ScenarioResult, TimelineEvent, Violation } from '../scenario/result.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const RUN_KEYS = ['schema', 'passed', 'failed', 'duration_wallMs', 'seed', 'scenarios', 'agentStates'] as const satisfies readonly (keyof RunResult)[];
const SCENARIO_KEYS = [
  'name', 'file', 'description', 'seed', 'passed', 'failure', 'replay', 'timeScale', 'simulated_ms', 'duration_wallMs',
  'board', 'strategy', 'devices', 'faultsInjected', 'expectations', 'invariants', 'violations',
] as const satisfies readonly (keyof ScenarioResult)[];
const DEVICE_KEYS = [
  'id', 'group', 'board', 'strategy', 'initialVersion', 'finalVersion', 'confirmed', 'bricked', 'reboots', 'downloads',
  'bytesDownloaded', 'powerCuts', 'netFaults', 'reports', 'timeline',
] as const satisfies readonly (keyof DeviceResult)[];
const EVENT_KEYS = ['at_ms', 'end_ms', 'kind', 'label', 'detail'] as const satisfies readonly (keyof TimelineEvent)[];
const VIOLATION_KEYS = ['invariant', 'device', 'opIndex', 'at_ms', 'message', 'replay'] as const satisfies readonly (keyof Violation)[];
const REPORT_KEYS = ['at_ms', 's', 'r', 'v', 't'] as const;
const EXPECTATION_KEYS = ['what', 'passed', 'detail'] as const;
const INVARIANT_KEYS = ['id', 'passed', 'detail'] as const;

/** A key order per schema object: known keys in schema order, then any others alphabetically. */
type Shape = { keys: readonly string[]; children?: Record<string, Shape> };

const EVENT_SHAPE: Shape = { keys: EVENT_KEYS };
const DEVICE_SHAPE: Shape = { keys: DEVICE_KEYS, children: { reports: { keys: REPORT_KEYS }, timeline: EVENT_SHAPE } };
const SCENARIO_SHAPE: Shape = {
  keys: SCENARIO_KEYS,
  children: { devices: DEVICE_SHAPE, expectations: { keys: EXPECTATION_KEYS }, invariants: { keys: INVARIANT_KEYS }, violations: { keys: VIOLATION_KEYS } },
};
const RUN_SHAPE: Shape = { keys: RUN_KEYS, children: { scenarios: SCENARIO_SHAPE } };

/** Rebuild `value` with keys ordered by `shape` (arrays map element-wise; unknown objects sort alphabetically). */
function order(value: unknown, shape: Shape | null): Json | undefined {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map((v) => order(v, shape) ?? null);
  const obj = value as Record<string, unknown>;
  const known = shape ? shape.keys.filter((k) => Object.prototype.hasOwnProperty.call(obj, k)) : [];
  const rest = Object.keys(obj)
    .filter((k) => !known.includes(k))
    .sort();
  const out: { [key: string]: Json } = {};
  for (const k of [...known, ...rest]) {
    const v = order(obj[k], shape?.children?.[k] ?? null);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

export function renderJson(run: RunResult): string {
  return JSON.stringify(order(run, RUN_SHAPE), null, 2) + '\n';
}
