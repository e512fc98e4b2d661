/**
 * Who is in the fleet and where each device runs: identities, PSKs, seeds and fault plans follow
 * from (seed, device index) alone, so a device is the same whatever the fleet is cut into (shards,
 * workers). Also the open-file check made before anything starts, and the update milestones.
 */
import { readFileSync } from 'node:fs';
import { EnvironmentError, InputError, assert } from '../errors.js';
import { Prng, mixSeed } from '../prng.js';
import type { FleetDeviceSpec, Milestone } from './types.js';

/** Largest fleet one run accepts (shard beyond it). */
export const MAX_DEVICES = 100_000;
/** Salts keeping the per-device decisions independent of each other. */
const SALT_PSK = 0x5053;
const SALT_CUT = 0xc07;
const SALT_BOARD = 0xb0a2d;
const SALT_INITIAL = 0x1a17;
const SALT_CHAOS = 0xc4a05;
/**
 * Flash ops an update of an image takes, roughly (download writes per 1 KiB block and sector
 * erases, the swap's erase + copy of each sector both ways): a power cut is placed within it.
 */
export function updateOpsEstimate(imageSize_bytes: number): number {
  return Math.max(16, Math.ceil(imageSize_bytes / 1024) * 2 + Math.ceil(imageSize_bytes / 4096) * 6);
}

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new InputError('BAD_ARGUMENT', `--shard: expected I/N (e.g. 2/8), got ${JSON.stringify(text)}`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (!(count >= 1 && count <= 10_000 && index >= 1 && index <= count)) throw new InputError('BAD_ARGUMENT', `--shard ${text}: need 1 <= I <= N <= 10000`);
  return { index, count };
}

/** Device indices of a shard: every N-th device, starting at I-1 (disjoint; their union is the fleet). */
export function shardIndices(devices: number, shard: Shard): number[] {
  assert(Number.isInteger(devices) && devices >= 0 && devices <= MAX_DEVICES, `fleet size ${devices}`);
  const out: number[] = [];
  for (let i = shard.index - 1; i < devices; i += shard.count) out.push(i);
  return out;
}

export function deviceIdentity(prefix: string, index: number): string {
  return `${prefix}${String(index).padStart(6, '0')}`;
}

/** Where a device starts: its board, its template (board + initial image), tags, group. */
export interface DeviceMix {
  board: string;
  template: string;
  tags?: string[];
  group?: string;
}

/**
 * The device with this index; `psk` (identity,key from --psk-file) replaces the generated
 * identity. `mix` (its board and starting image), `chaosRate` and `chaos` (a schedule index, or a
 * seeded choice with probability `chaosRate` of schedule 0) follow from (seed, index) too.
 */
export function deviceSpec(opts: { seed: number; index: number; prefix: string; powerCutRate: number; cutWindow_ops: number; psk?: { identity: string; key: string }; mix?: DeviceMix; chaosRate?: number; chaos?: number | null }): FleetDeviceSpec {
  const { seed, index } = opts;
  const psk = opts.psk?.key ?? `k${mixSeed(seed, index, SALT_PSK).toString(16).padStart(8, '0')}${mixSeed(seed, index, SALT_PSK, 1).toString(16).padStart(8, '0')}`;
  const cut = new Prng(mixSeed(seed, index, SALT_CUT));
  const powerCutAfterOps = cut.chance(opts.powerCutRate) ? 1 + cut.below(opts.cutWindow_ops) : null;
  const spec: FleetDeviceSpec = { index, identity: opts.psk?.identity ?? deviceIdentity(opts.prefix, index), psk, seed: mixSeed(seed, index), powerCutAfterOps };
  if (opts.mix) {
    spec.board = opts.mix.board;
    spec.template = opts.mix.template;
    if (opts.mix.tags && opts.mix.tags.length > 0) spec.tags = opts.mix.tags;
    if (opts.mix.group !== undefined) spec.group = opts.mix.group;
  }
  if (opts.chaos !== undefined && opts.chaos !== null) spec.chaos = opts.chaos;
  else if (opts.chaosRate !== undefined && opts.chaosRate > 0 && new Prng(mixSeed(seed, index, SALT_CHAOS)).chance(opts.chaosRate)) spec.chaos = 0;
  return spec;
}

/** A name with a whole-number weight (`--board nrf52840:70`). */
export interface Weighted {
  name: string;
  weight: number;
}

/** Parse NAME[:WEIGHT] (weight a whole number 1..1,000,000; default 1); `flag` names the option in errors. */
export function parseWeighted(flag: string, text: string): Weighted {
  const m = /^([^:\s]+)(?::(\d+))?$/.exec(text.trim());
  const weight = m?.[2] === undefined ? 1 : Number(m[2]);
  if (!m || !(Number.isInteger(weight) && weight >= 1 && weight <= 1_000_000)) throw new InputError('BAD_ARGUMENT', `${flag}: expected NAME[:WEIGHT] with a whole-number weight 1..1000000 (e.g. nrf52840:70), got ${JSON.stringify(text)}`);
  return { name: m[1]!, weight };
}

/** Device `index`'s pick among `choices` (seeded by fleet seed, index and `salt`; weights are relative). */
export function pickWeighted(choices: readonly Weighted[], seed: number, index: number, salt: 'board' | 'initial'): string {
  assert(choices.length >= 1, 'pickWeighted: no choices');
  if (choices.length === 1) return choices[0]!.name;
  const total = choices.reduce((s, c) => s + c.weight, 0);
  let r = new Prng(mixSeed(seed, index, salt === 'board' ? SALT_BOARD : SALT_INITIAL)).below(total);
  for (const c of choices) {
    if (r < c.weight) return c.name;
    r -= c.weight;
  }
  return choices[choices.length - 1]!.name;
}

/**
 * Split `devices` over groups in proportion to their counts (largest remainder, ties in group
 * order): the first group gets indices [0, n0), the next [n0, n0 + n1), and so on.
 */
export function scaleGroups(counts: readonly number[], devices: number): number[] {
  assert(counts.length >= 1 && counts.every((c) => c >= 1), 'scaleGroups: counts');
  const total = counts.reduce((s, c) => s + c, 0);
  const exact = counts.map((c) => (c * devices) / total);
  const out = exact.map((x) => Math.floor(x));
  let left = devices - out.reduce((s, c) => s + c, 0);
  const order = exact.map((x, i) => ({ i, frac: x - Math.floor(x) })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let k = 0; left > 0 && k < order.length; k++, left--) out[order[k]!.i]!++;
  assert(out.reduce((s, c) => s + c, 0) === devices, 'scaleGroups: sum');
  return out;
}

/** Split a list into `parts` contiguous, nearly equal pieces (workers). */
export function splitEven<T>(items: readonly T[], parts: number): T[][] {
  assert(parts >= 1, `parts ${parts}`);
  const out: T[][] = [];
  for (let p = 0; p < parts; p++) out.push(items.slice(Math.floor((p * items.length) / parts), Math.floor(((p + 1) * items.length) / parts)));
  return out;
}

/** File descriptors a run needs beside the devices' sockets (server, stdio, node internals, workers). */
export const FD_OVERHEAD = 128;

/** Soft and hard "Max open files" from /proc/self/limits text (null: unlimited or unknown). */
export function parseFileLimit(limitsText: string): { soft: number | null; hard: number | null } {
  const line = limitsText.split('\n').find((l) => l.startsWith('Max open files'));
  if (!line) return { soft: null, hard: null };
  const [soft, hard] = line.slice('Max open files'.length).trim().split(/\s+/);
  const num = (v: string | undefined): number | null => (v === undefined || v === 'unlimited' || !/^\d+$/.test(v) ? null : Number(v));
  return { soft: num(soft), hard: num(hard) };
}

export function readFileLimit(): { soft: number | null; hard: number | null } {
  try {
    return parseFileLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return { soft: null, hard: null }; // not Linux: nothing to check against
  }
}

/**
 * Flows one device's chaos proxy keeps at once: each handshake attempt or reboot of the device is
 * a new socket, so a new flow; the old ones close when idle (devices.ts), and beyond this many a
 * new flow's datagrams are dropped until one has (the device retries, as it does after loss).
 */
export const CHAOS_MAX_FLOWS = 8;
/**
 * Sockets of one device behind a chaos proxy, beside its own: the proxy's listening socket and
 * one upstream socket per flow (two while a flow's rebound old port lingers).
 */
export function chaosSocketsPerDevice(rebinds: boolean): number {
  return 1 + CHAOS_MAX_FLOWS * (rebinds ? 2 : 1);
}

/**
 * One UDP socket per device, plus `chaosSockets` more for the devices behind a chaos proxy (in
 * total): refuse up front (exit 3) when the open-file limit cannot hold them, saying how many fit
 * and how to raise the limit or shard, instead of failing midway.
 */
export function checkFileLimit(devices: number, limit: { soft: number | null; hard: number | null }, chaosSockets = 0): void {
  if (limit.soft === null) return;
  assert(chaosSockets >= 0, 'chaos sockets');
  const need = devices + chaosSockets + FD_OVERHEAD;
  if (need <= limit.soft) return;
  // with chaos the fleet's average sockets per device (the chosen share of devices is fixed by the seed)
  const perDevice = devices > 0 ? (devices + chaosSockets) / devices : 1;
  const fit = Math.max(0, Math.floor((limit.soft - FD_OVERHEAD) / perDevice));
  const shards = Math.ceil(devices / Math.max(1, fit));
  const raise = limit.hard === null || limit.hard >= need ? `raise it with \`ulimit -n ${need}\`` : `the hard limit is ${limit.hard}, so raise that first (limits.conf / systemd LimitNOFILE) or`;
  const each = chaosSockets > 0 ? `1 UDP socket each, ${chaosSockets} for the chaos proxies` : '1 UDP socket(s) each';
  throw new EnvironmentError(
    'FILE_LIMIT',
    `fleet: ${devices} devices need about ${need} open files (${each} + ${FD_OVERHEAD}), but the open-file limit (ulimit -n) is ${limit.soft}: at most ${fit} devices fit; ${raise} or split the fleet with --shard I/${shards}`,
  );
}

export const MILESTONE_PERCENTS = [50, 90, 99, 100] as const;

/** Time to 50/90/99/100 % of `expected` updates from the sorted update times. */
export function milestones(sortedTimes_wallMs: readonly number[], expected: number, timeScale: number): Milestone[] {
  return MILESTONE_PERCENTS.map((percent) => {
    const devices = Math.ceil((expected * percent) / 100);
    const t = devices === 0 ? 0 : (sortedTimes_wallMs[devices - 1] ?? null);
    return { percent, devices, wall_ms: t, simulated_ms: t === null ? null : t / timeScale };
  });
}
