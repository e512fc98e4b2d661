/**
 * Combining shard results (`ota-sim report merge`): the shards of one fleet (same seed, size and
 * shard count, each index once) add up to the fleet; milestones are recomputed from every update
 * time (each shard measures from its own start, so with shards started apart they are approximate).
 */
import { InputError } from '../errors.js';
import { milestones } from './plan.js';
import type { FleetResult, MixCount } from './types.js';

/** Sum per-key counts over shards; undefined when no shard has them (results of older versions). */
function sumMix(list: (Record<string, MixCount> | undefined)[]): Record<string, MixCount> | undefined {
  if (list.every((m) => m === undefined)) return undefined;
  const out: Record<string, MixCount> = {};
  for (const m of list) {
    for (const [k, c] of Object.entries(m ?? {})) {
      const o = (out[k] ??= { devices: 0, targeted: 0, updated: 0 });
      o.devices += c.devices;
      o.targeted += c.targeted;
      o.updated += c.updated;
    }
  }
  return out;
}

const MAX_FAILING_KEPT = 1000;

/** Check a parsed JSON document is a fleet result; `source` names it in errors. */
export function asFleetResult(doc: unknown, source: string): FleetResult {
  const d = doc as Partial<FleetResult> | null;
  if (d === null || typeof d !== 'object' || d.format !== 'ota-sim-fleet/1') throw new InputError('BAD_SHARD_FILE', `${source}: not a fleet result (expected "format": "ota-sim-fleet/1", as written by ota-sim fleet --out)`);
  for (const k of ['devices', 'fleetDevices', 'expected', 'updated', 'bricked', 'seed', 'durationMs', 'rssBytesPerDevice', 'retries', 'reboots', 'powerCuts'] as const) {
    if (typeof d[k] !== 'number') throw new InputError('BAD_SHARD_FILE', `${source}: field ${k}: expected a number`);
  }
  if (!d.shard || typeof d.shard.index !== 'number' || typeof d.shard.count !== 'number') throw new InputError('BAD_SHARD_FILE', `${source}: field shard: expected {index, count}`);
  if (!Array.isArray(d.updateTimes_wallMs) || typeof d.failuresByReason !== 'object' || d.failuresByReason === null) throw new InputError('BAD_SHARD_FILE', `${source}: fields updateTimes_wallMs / failuresByReason missing`);
  return d as FleetResult;
}

export function mergeShards(parts: readonly { result: FleetResult; source: string }[]): FleetResult {
  if (parts.length === 0) throw new InputError('BAD_ARGUMENT', 'report merge: give at least one shard file');
  const first = parts[0]!.result;
  const seen = new Map<number, string>();
  for (const { result: r, source } of parts) {
    if (r.seed !== first.seed || r.fleetDevices !== first.fleetDevices || r.shard.count !== first.shard.count || r.targetVersion !== first.targetVersion) {
      throw new InputError('BAD_SHARD_FILE', `${source}: shard of another fleet (seed ${r.seed}, ${r.fleetDevices} devices, ${r.shard.count} shards, target ${r.targetVersion}; ${parts[0]!.source} has seed ${first.seed}, ${first.fleetDevices}, ${first.shard.count}, ${first.targetVersion})`);
    }
    if (r.board !== first.board || r.scenario !== first.scenario || r.chaosSpec !== first.chaosSpec || r.chaosRate !== first.chaosRate) {
      throw new InputError('BAD_SHARD_FILE', `${source}: shard of another fleet (boards ${r.board}, scenario ${r.scenario ?? 'none'}, chaos ${r.chaosSpec ?? 'none'} at ${r.chaosRate ?? 0}; ${parts[0]!.source} has ${first.board}, ${first.scenario ?? 'none'}, ${first.chaosSpec ?? 'none'} at ${first.chaosRate ?? 0})`);
    }
    const dup = seen.get(r.shard.index);
    if (dup !== undefined) throw new InputError('BAD_SHARD_FILE', `${source}: shard ${r.shard.index}/${r.shard.count} is also in ${dup}`);
    seen.set(r.shard.index, source);
  }
  const missing: number[] = [];
  for (let i = 1; i <= first.shard.count; i++) if (!seen.has(i)) missing.push(i);
  const sum = (f: (r: FleetResult) => number): number => parts.reduce((s, p) => s + f(p.result), 0);
  const devices = sum((r) => r.devices);
  const expected = sum((r) => r.expected);
  const updated = sum((r) => r.updated);
  const failuresByReason: Record<string, number> = {};
  for (const { result } of parts) for (const [k, v] of Object.entries(result.failuresByReason)) failuresByReason[k] = (failuresByReason[k] ?? 0) + v;
  const times = parts.flatMap((p) => p.result.updateTimes_wallMs).sort((a, b) => a - b);
  const results = parts.map((p) => p.result);
  const mixes: Partial<FleetResult> = {};
  const byBoard = sumMix(results.map((r) => r.byBoard));
  if (byBoard) mixes.byBoard = byBoard;
  const byInitialVersion = sumMix(results.map((r) => r.byInitialVersion));
  if (byInitialVersion) mixes.byInitialVersion = byInitialVersion;
  const byGroup = sumMix(results.map((r) => r.byGroup));
  if (byGroup) mixes.byGroup = byGroup;
  if (results.some((r) => r.chaosDevices !== undefined)) {
    mixes.chaosDevices = sum((r) => r.chaosDevices ?? 0);
    mixes.chaosDatagrams = sum((r) => r.chaosDatagrams ?? 0);
    const faults: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(r.chaosFaults ?? {})) faults[k] = (faults[k] ?? 0) + v;
    mixes.chaosFaults = faults;
  }
  const bytes = parts.every((p) => p.result.bytesServed !== null) ? sum((r) => r.bytesServed ?? 0) : null;
  return {
    ...first,
    shard: { index: 0, count: first.shard.count },
    devices,
    expected,
    updated,
    bricked: sum((r) => r.bricked),
    targetReached: missing.length === 0 && updated >= expected,
    durationMs: Math.max(...parts.map((p) => p.result.durationMs)),
    milestones: milestones(times, expected, first.timeScale),
    updateTimes_wallMs: times,
    failuresByReason,
    failingDevices: parts.flatMap((p) => p.result.failingDevices).slice(0, MAX_FAILING_KEPT),
    retries: sum((r) => r.retries),
    reboots: sum((r) => r.reboots),
    powerCuts: sum((r) => r.powerCuts),
    bytesServed: bytes,
    rssBytesPerDevice: devices > 0 ? sum((r) => r.rssBytesPerDevice * r.devices) / devices : 0,
    peakRssBytes: Math.max(...parts.map((p) => p.result.peakRssBytes)),
    workers: sum((r) => r.workers),
    sectorsStored: sum((r) => r.sectorsStored),
    sectorsShared: sum((r) => r.sectorsShared),
    ...mixes,
    missingShards: missing,
  } as FleetResult & { missingShards: number[] };
}
