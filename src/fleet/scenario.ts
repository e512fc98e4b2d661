/**
 * `ota-sim fleet --scenario FILE`: a fleet taken from a scenario file (src/scenario). Its device
 * groups (count, board, initial image, tags) scaled to `--devices`, its images, its server
 * timeline (release, rollout, activate, rollback steps at simulated times) and its network faults
 * (a chaos schedule for the devices of the groups they name). What has no fleet equivalent —
 * faults at an op index, state or block of particular devices, per-group agent settings, an
 * external server — is refused with an InputError naming the field.
 */
import { InputError, assert } from '../errors.js';
import type { Strategy } from '../flash/types.js';
import type { PublicKey } from '../image/index.js';
import { validateSchedule } from '../net/proxy/index.js';
import type { ChaosSchedule } from '../net/proxy/index.js';
import { addNetworkFault } from '../scenario/chaos-schedule.js';
import type { LoadedScenario, TimelineStepSpec } from '../scenario/index.js';
import { inRollout } from '../server/rollout.js';
import type { UpdateServer } from '../server/index.js';
import type { ArtifactInfo } from '../server/types.js';
import { scaleGroups } from './plan.js';
import type { DeviceMix } from './plan.js';
import type { FleetDeviceSpec, SliceTemplate } from './types.js';

/** One group of the fleet, scaled: devices [first, first + count). */
export interface FleetGroup {
  name: string;
  first: number;
  count: number;
  board: string;
  /** Template key: `${board}/${image name}`. */
  template: string;
  tags: string[];
  /** Chaos schedule index, or null. */
  chaos: number | null;
}

export interface ScenarioFleet {
  name: string;
  seed: number | undefined;
  strategy: Strategy;
  groups: FleetGroup[];
  templates: SliceTemplate[];
  schedules: ChaosSchedule[];
  trusted: PublicKey[];
  boards: string[];
  /** The version of the last release step's images: confirming it counts as updated. */
  targetVersion: string;
  /** The last release step's release id and its rollout percent as the timeline leaves it. */
  targetRelease: string;
  targetPercent: number;
  /** Does the last release (as the timeline leaves it) target this device? */
  targets(spec: FleetDeviceSpec): boolean;
  /** Apply the timeline steps to the embedded server: those at or before 0 now, the rest at their simulated time. */
  steps: { at_ms: number; where: string; step: TimelineStepSpec }[];
  /** Run one timeline step on the server (artifacts added on first use). */
  apply(server: UpdateServer, step: TimelineStepSpec, fleetIdentities: (groups: readonly string[]) => string[]): Promise<void>;
}

function refuse(file: string, path: string, message: string): never {
  throw new InputError('BAD_SCENARIO', `${file}: ${path}: ${message}`);
}

/** The scenario's fleet at `devices` devices (default: the sum of its group counts). */
export function scenarioFleet(loaded: LoadedScenario, devices: number | undefined): ScenarioFleet {
  const spec = loaded.spec;
  const file = loaded.file ?? '(scenario object)';
  if (spec.server && !('embedded' in spec.server)) refuse(file, 'server.url', 'a fleet scenario runs against the embedded server; for an external one use ota-sim fleet --server URL --psk-file FILE without --scenario');
  if (spec.server && 'embedded' in spec.server && spec.server.transport === 'udp') refuse(file, 'server.transport', 'fleets talk DTLS (coaps) only; leave transport out or set dtls');
  for (const [i, g] of spec.groups.entries()) {
    if (g.agent !== undefined) refuse(file, `groups[${i}].agent`, 'per-group agent settings are not supported in a fleet (every fleet device runs the agent with its defaults and the fleet\'s --block-size/--window)');
  }
  // ---- faults: network faults of whole groups become chaos schedules; nothing else maps ----
  const groupNames = new Set(spec.groups.map((g) => g.name));
  const schedules: ChaosSchedule[] = [];
  const chaosOfGroup = new Map<string, number>();
  for (const [i, f] of (spec.faults ?? []).entries()) {
    if (f.kind !== 'network') {
      refuse(file, `faults[${i}].kind`, `"${f.kind}" is not supported in a fleet (faults at an op index, state, block or time of particular devices or of the server do not map to a per-device rate); use --power-cut-rate for power cuts, and network faults for groups`);
    }
    if (f.blackholeAtBlock !== undefined) refuse(file, `faults[${i}].blackholeAtBlock`, 'a blackhole at a download block of one device does not map to a fleet; use blackholes (at simulated times)');
    if (f.rebindAtBlock !== undefined) refuse(file, `faults[${i}].rebindAtBlock`, 'a rebind at a download block of one device does not map to a fleet; use rebindAt_ms or rebindEvery_ms');
    const schedule: ChaosSchedule = addNetworkFault({}, f);
    try {
      validateSchedule(schedule, `faults[${i}]`);
    } catch (e) {
      refuse(file, `faults[${i}]`, e instanceof Error ? e.message : String(e));
    }
    const index = schedules.push(schedule) - 1;
    for (const name of f.devices ?? [...groupNames]) {
      if (!groupNames.has(name)) refuse(file, `faults[${i}].devices`, `"${name}" is not a group name (a fleet addresses faults by group, not by device id)`);
      if (chaosOfGroup.has(name)) refuse(file, `faults[${i}].devices`, `group "${name}" already has a network fault (one network fault per group in a fleet)`);
      chaosOfGroup.set(name, index);
    }
  }
  // ---- groups scaled to the fleet size ----
  const total = spec.groups.reduce((s, g) => s + g.count, 0);
  const n = devices ?? total;
  const counts = scaleGroups(spec.groups.map((g) => g.count), n);
  const templates = new Map<string, SliceTemplate>();
  const groups: FleetGroup[] = [];
  let first = 0;
  for (const [i, g] of spec.groups.entries()) {
    const board = g.board ?? spec.board;
    const image = loaded.images.get(g.image);
    if (!image) refuse(file, `groups[${i}].image`, `no image "${g.image}"`);
    if (image.version === null) refuse(file, `groups[${i}].image`, `"${g.image}" does not parse as an image, so no device can start on it`);
    const key = `${board}/${g.image}`;
    if (!templates.has(key)) templates.set(key, { key, board, image: image.bytes });
    groups.push({ name: g.name, first, count: counts[i]!, board, template: key, tags: g.tags ?? [], chaos: chaosOfGroup.get(g.name) ?? null });
    first += counts[i]!;
  }
  assert(first === n, 'scenario groups cover the fleet');
  // ---- the timeline: the last release step's release is the fleet's target ----
  const steps = (spec.timeline ?? []).map((step, i) => ({ at_ms: step.at_ms ?? 0, where: `timeline[${i}]`, step })).sort((a, b) => a.at_ms - b.at_ms);
  const releases = steps.filter((s) => 'release' in s.step);
  const last = releases[releases.length - 1];
  if (!last || !('release' in last.step)) refuse(file, 'timeline', 'a fleet scenario needs at least one release step (the last one is the release the fleet rolls out)');
  const target = last.step.release;
  const versions = new Set<string>();
  for (const name of target.images) {
    const im = loaded.images.get(name);
    if (!im || im.version === null) refuse(file, `${last.where}.release.images`, `"${name}" is not a parseable image`);
    versions.add(im.version);
  }
  if (versions.size !== 1) refuse(file, `${last.where}.release.images`, `the fleet's target release must have one version on every board, got ${[...versions].join(', ')}`);
  let percent = target.rolloutPercent ?? 100;
  let active = target.activate ?? true;
  for (const s of steps) {
    if (s.at_ms < last.at_ms || s === last) continue;
    if ('rollout' in s.step && s.step.rollout.release === target.id) percent = s.step.rollout.percent;
    if ('activate' in s.step && s.step.activate === target.id) active = true;
    if ('rollback' in s.step && (s.step.rollback === true || s.step.rollback === target.id)) refuse(file, `${s.where}.rollback`, `rolls back ${target.id}, the fleet's target release (the last release step); a fleet measures the rollout of its last release`);
  }
  const groupOf = new Map<string, FleetGroup>(groups.map((g) => [g.name, g]));
  const targets = (d: FleetDeviceSpec): boolean => {
    if (!active) return false;
    if (target.groups && !(d.group !== undefined && target.groups.includes(d.group))) return false;
    if (target.tags && target.tags.length > 0) {
      const tags = d.tags ?? groupOf.get(d.group ?? '')?.tags ?? [];
      if (!target.tags.some((t) => tags.includes(t))) return false;
    }
    return inRollout(d.identity, target.id, percent);
  };
  const artifacts = new Map<string, ArtifactInfo>();
  const apply = async (server: UpdateServer, step: TimelineStepSpec, fleetIdentities: (groups: readonly string[]) => string[]): Promise<void> => {
    if ('release' in step) {
      const r = step.release;
      const ids: string[] = [];
      for (const name of r.images) {
        let a = artifacts.get(name);
        if (!a) {
          const im = loaded.images.get(name);
          assert(im !== undefined, `image ${name} exists`);
          a = await server.model.addArtifact({ package: 'main', version: im.version ?? im.releaseVersion, board: im.board, bytes: im.bytes });
          artifacts.set(name, a);
        }
        ids.push(a.id);
      }
      const devicesIn = r.groups ? fleetIdentities(r.groups) : [];
      // a release restricted to groups with no device in this run (scaled to 0, or another shard's) reaches nobody here
      if (r.groups && devicesIn.length === 0) devicesIn.push('no-device-of-this-run');
      await server.model.createRelease({ id: r.id, artifacts: ids, ...(r.rolloutPercent !== undefined ? { rolloutPercent: r.rolloutPercent } : {}), ...(r.tags ? { tags: r.tags } : {}), devices: devicesIn, ...(r.activate !== undefined ? { activate: r.activate } : {}) });
    } else if ('activate' in step) await server.model.activate(step.activate);
    else if ('rollout' in step) await server.model.setRollout(step.rollout.release, step.rollout.percent);
    else await server.model.rollback(step.rollback === true ? undefined : step.rollback);
  };
  return {
    name: spec.name,
    seed: spec.seed,
    strategy: spec.strategy,
    groups,
    templates: [...templates.values()],
    schedules,
    trusted: loaded.trusted,
    boards: [...new Set(groups.map((g) => g.board))],
    targetVersion: [...versions][0]!,
    targetRelease: target.id,
    targetPercent: percent,
    targets,
    steps,
    apply,
  };
}

/** Device `index`'s group (contiguous ranges in group order). */
export function groupOf(groups: readonly FleetGroup[], index: number): FleetGroup {
  const g = groups.find((x) => index >= x.first && index < x.first + x.count);
  assert(g !== undefined, `device ${index} is in no group`);
  return g;
}

export function mixOfGroup(g: FleetGroup): DeviceMix {
  return { board: g.board, template: g.template, tags: g.tags, group: g.name };
}
