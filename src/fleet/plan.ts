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

/** The device with this index; `pskLines` (identity,key from --psk-file) replace the generated identity. */
export function deviceSpec(opts: { seed: number; index: number; prefix: string; powerCutRate: number; cutWindow_ops: number; psk?: { identity: string; key: string } }): FleetDeviceSpec {
  const { seed, index } = opts;
  const psk = opts.psk?.key ?? `k${mixSeed(seed, index, SALT_PSK).toString(16).padStart(8, '0')}${mixSeed(seed, index, SALT_PSK, 1).toString(16).padStart(8, '0')}`;
  const cut = new Prng(mixSeed(seed, index, SALT_CUT));
  const powerCutAfterOps = cut.chance(opts.powerCutRate) ? 1 + cut.below(opts.cutWindow_ops) : null;
  return { index, identity: opts.psk?.identity ?? deviceIdentity(opts.prefix, index), psk, seed: mixSeed(seed, index), powerCutAfterOps };
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
 * One UDP socket per device: refuse up front (exit 3) when the open-file limit cannot hold them,
 * saying how many fit and how to raise the limit or shard, instead of failing midway.
 */
export function checkFileLimit(devices: number, limit: { soft: number | null; hard: number | null }, extraPerDevice = 0): void {
  if (limit.soft === null) return;
  const perDevice = 1 + extraPerDevice;
  const need = devices * perDevice + FD_OVERHEAD;
  if (need <= limit.soft) return;
  const fit = Math.max(0, Math.floor((limit.soft - FD_OVERHEAD) / perDevice));
  const shards = Math.ceil(devices / Math.max(1, fit));
  const raise = limit.hard === null || limit.hard >= need ? `raise it with \`ulimit -n ${need}\`` : `the hard limit is ${limit.hard}, so raise that first (limits.conf / systemd LimitNOFILE) or`;
  throw new EnvironmentError(
    'FILE_LIMIT',
    `fleet: ${devices} devices need about ${need} open files (${perDevice} UDP socket(s) each + ${FD_OVERHEAD}), but the open-file limit (ulimit -n) is ${limit.soft}: at most ${fit} devices fit; ${raise} or split the fleet with --shard I/${shards}`,
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
