/** Shards, identities and seeds, the open-file check, and merging shard results. */
import { describe, expect, it } from 'vitest';
import { EnvironmentError, InputError } from '../../src/errors.js';
import { mergeShards, asFleetResult } from '../../src/fleet/merge.js';
import { checkFileLimit, chaosSocketsPerDevice, deviceSpec, milestones, parseFileLimit, parseShard, parseWeighted, pickWeighted, scaleGroups, shardIndices } from '../../src/fleet/plan.js';
import { parseChaosSpec } from '../../src/cli/fleet.js';
import type { FleetResult } from '../../src/fleet/types.js';
import { rolloutBucket } from '../../src/server/rollout.js';

const spec = (index: number) => deviceSpec({ seed: 9, index, prefix: 'fleet-', powerCutRate: 0.3, cutWindow_ops: 200 });

describe('shards', () => {
  it('are disjoint, cover the fleet, and give every device the same identity, seed, PSK, cut and bucket whatever N is', () => {
    const devices = 101;
    const whole = shardIndices(devices, { index: 1, count: 1 }).map(spec);
    expect(whole.map((d) => d.index)).toEqual(Array.from({ length: devices }, (_, i) => i));
    const slices = [1, 2, 3].map((i) => shardIndices(devices, { index: i, count: 3 }).map(spec));
    const union = slices.flat().sort((a, b) => a.index - b.index);
    expect(union).toEqual(whole); // same devices, field for field
    const seen = new Set<number>();
    for (const s of slices) for (const d of s) {
      expect(seen.has(d.index)).toBe(false);
      seen.add(d.index);
    }
    expect(new Set(whole.map((d) => d.identity)).size).toBe(devices);
    expect(new Set(whole.map((d) => d.seed)).size).toBe(devices);
    // rollout buckets depend on identity and release only
    for (const d of union) expect(rolloutBucket(d.identity, 'fleet')).toBe(rolloutBucket(whole[d.index]!.identity, 'fleet'));
    expect(whole.some((d) => d.powerCutAfterOps !== null) && whole.some((d) => d.powerCutAfterOps === null)).toBe(true);
  });

  it('boards, initial versions and chaos devices are seeded per device: the same whatever the shards, and near their weights', () => {
    const boards = [parseWeighted('--board', 'nrf52840:70'), parseWeighted('--board', 'nrf9160dk:30')];
    expect(boards).toEqual([{ name: 'nrf52840', weight: 70 }, { name: 'nrf9160dk', weight: 30 }]);
    expect(parseWeighted('--initial-version', '1.0.0')).toEqual({ name: '1.0.0', weight: 1 });
    for (const bad of ['x:0', 'x:-1', 'x:1.5', ':3', '']) expect(() => parseWeighted('--board', bad)).toThrow(InputError);
    const mixSpec = (index: number) => {
      const board = pickWeighted(boards, 9, index, 'board');
      return deviceSpec({ seed: 9, index, prefix: 'fleet-', powerCutRate: 0, cutWindow_ops: 200, mix: { board, template: `${board}/1.0.0` }, chaosRate: 0.25 });
    };
    const whole = shardIndices(1000, { index: 1, count: 1 }).map(mixSpec);
    const union = [1, 2, 3].flatMap((i) => shardIndices(1000, { index: i, count: 3 }).map(mixSpec)).sort((a, b) => a.index - b.index);
    expect(union).toEqual(whole);
    const on9160 = whole.filter((d) => d.board === 'nrf9160dk').length;
    expect(on9160).toBeGreaterThan(240);
    expect(on9160).toBeLessThan(360);
    const chaos = whole.filter((d) => d.chaos === 0).length;
    expect(chaos).toBeGreaterThan(190);
    expect(chaos).toBeLessThan(310);
    // the chaos pick does not move the power-cut pick (independent salts)
    const plain = shardIndices(1000, { index: 1, count: 1 }).map((index) => deviceSpec({ seed: 9, index, prefix: 'fleet-', powerCutRate: 0, cutWindow_ops: 200 }));
    expect(whole.map((d) => d.seed)).toEqual(plain.map((d) => d.seed));
    expect(plain.every((d) => d.chaos === undefined)).toBe(true);
  });

  it('scenario groups scale in proportion (largest remainder), covering every device', () => {
    expect(scaleGroups([6, 4], 20)).toEqual([12, 8]);
    expect(scaleGroups([1, 3], 8)).toEqual([2, 6]);
    expect(scaleGroups([1, 1, 1], 10)).toEqual([4, 3, 3]);
    expect(scaleGroups([5, 5], 1)).toEqual([1, 0]);
    expect(scaleGroups([2, 3], 5)).toEqual([2, 3]);
  });

  it('--chaos takes ota-sim proxy\'s flags as KEY=VALUE and its parser\'s checks', () => {
    expect(parseChaosSpec('loss=0.1,delay-ms=20,jitter-ms=10,duplicate=2%,reorder=0.05')).toEqual({ directions: ['up', 'down'], loss: 0.1, delay_ms: 20, jitter_ms: 10, duplicate: 0.02, reorder: 0.05 });
    expect(parseChaosSpec('burst=0.02:0.3,blackhole=10:60,blackhole=100:5,direction=down,rebind-every-s=30')).toEqual({ directions: ['down'], burst: { enter: 0.02, exit: 0.3 }, blackholes: [{ at_ms: 10_000, for_ms: 60_000 }, { at_ms: 100_000, for_ms: 5000 }], rebindEvery_ms: 30_000 });
    for (const [bad, text] of [['loss', 'KEY=VALUE'], ['dup=0.1', 'KEY one of'], ['loss=0.1,loss=0.2', 'loss given twice'], ['delay-ms=-3', 'delay-ms'], ['', 'KEY=VALUE']] as const) {
      expect(() => parseChaosSpec(bad)).toThrow(text);
    }
  });

  it('--shard I/N is checked', () => {
    expect(parseShard('2/8')).toEqual({ index: 2, count: 8 });
    for (const bad of ['0/3', '4/3', '1-3', 'x']) expect(() => parseShard(bad)).toThrow(InputError);
  });
});

describe('open-file limit', () => {
  const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n';
  it('reads /proc/self/limits', () => {
    expect(parseFileLimit(limits)).toEqual({ soft: 1024, hard: 4096 });
    expect(parseFileLimit('Max open files unlimited unlimited files')).toEqual({ soft: null, hard: null });
  });
  it('refuses up front, saying how many fit and how to raise the limit or shard', () => {
    expect(() => checkFileLimit(800, { soft: 1024, hard: 4096 })).not.toThrow();
    let err: unknown;
    try {
      checkFileLimit(3000, { soft: 1024, hard: 4096 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EnvironmentError);
    const msg = (err as Error).message;
    expect((err as EnvironmentError).exitCode).toBe(3);
    expect(msg).toContain('at most 896 devices fit');
    expect(msg).toContain('ulimit -n 3128');
    expect(msg).toContain('--shard I/4');
    expect(() => checkFileLimit(10_000, { soft: 1024, hard: 4096 })).toThrow(/hard limit is 4096/);
  });
  it('counts the chaos proxies\' sockets: a listening socket and up to 8 flows per chaos device (twice with rebinds)', () => {
    expect(chaosSocketsPerDevice(false)).toBe(9);
    expect(chaosSocketsPerDevice(true)).toBe(17);
    // 800 devices fit 1024 alone; with 100 of them behind a proxy they need 800 + 900 + 128
    expect(() => checkFileLimit(800, { soft: 1024, hard: 4096 }, 100 * 9)).toThrow(/800 devices need about 1828 open files \(1 UDP socket each, 900 for the chaos proxies \+ 128\).*at most 421 devices fit/);
  });
});

function shard(index: number, count: number, over: Partial<FleetResult>): FleetResult {
  return {
    format: 'ota-sim-fleet/1', seed: 1, fleetDevices: 10, shard: { index, count }, devices: 5, expected: 5, updated: 5, bricked: 0, targetReached: true,
    rolloutPercent: 100, targetVersion: '1.1.0+0', board: 'nrf52840', durationMs: 1000, timeScale: 0.01, milestones: [], updateTimes_wallMs: [],
    failuresByReason: {}, failingDevices: [], retries: 0, reboots: 5, powerCuts: 0, bytesServed: 100, rssBytesPerDevice: 1000, rssNote: '', peakRssBytes: 1,
    workers: 1, sectorsStored: 10, sectorsShared: 40, ...over,
  };
}

describe('report merge', () => {
  it('sums counts, failures and bytes, and recomputes milestones over every update', () => {
    const a = shard(1, 2, { updated: 4, updateTimes_wallMs: [100, 300, 500, 700], failuresByReason: { 'power-cut': 2, 'not-updated': 1 }, retries: 2, bytesServed: 100, rssBytesPerDevice: 1000, durationMs: 900 });
    const b = shard(2, 2, { updated: 5, updateTimes_wallMs: [200, 400, 600, 800, 1000], failuresByReason: { 'power-cut': 1 }, retries: 1, bytesServed: 50, rssBytesPerDevice: 3000, bricked: 0, durationMs: 1100 });
    const m = mergeShards([{ result: a, source: 'a.json' }, { result: b, source: 'b.json' }]);
    expect(m.devices).toBe(10);
    expect(m.expected).toBe(10);
    expect(m.updated).toBe(9);
    expect(m.targetReached).toBe(false);
    expect(m.failuresByReason).toEqual({ 'power-cut': 3, 'not-updated': 1 });
    expect(m.retries).toBe(3);
    expect(m.reboots).toBe(10);
    expect(m.bytesServed).toBe(150);
    expect(m.rssBytesPerDevice).toBe(2000);
    expect(m.durationMs).toBe(1100);
    expect(m.updateTimes_wallMs).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 1000]);
    expect(m.milestones.find((x) => x.percent === 50)).toEqual({ percent: 50, devices: 5, wall_ms: 500, simulated_ms: 50_000 });
    expect(m.milestones.find((x) => x.percent === 100)!.wall_ms).toBeNull();
  });

  it('sums per-board, per-version and per-group counts and the chaos counters', () => {
    const a = shard(1, 2, { byBoard: { x: { devices: 3, targeted: 3, updated: 2 } }, byInitialVersion: { '1.0.0+0': { devices: 5, targeted: 5, updated: 5 } }, chaosDevices: 2, chaosFaults: { loss: 4 }, chaosDatagrams: 100 });
    const b = shard(2, 2, { byBoard: { x: { devices: 1, targeted: 1, updated: 1 }, y: { devices: 4, targeted: 2, updated: 2 } }, byInitialVersion: { '1.0.0+0': { devices: 5, targeted: 5, updated: 4 } }, chaosDevices: 1, chaosFaults: { loss: 1, delay: 7 }, chaosDatagrams: 50 });
    const m = mergeShards([{ result: a, source: 'a' }, { result: b, source: 'b' }]);
    expect(m.byBoard).toEqual({ x: { devices: 4, targeted: 4, updated: 3 }, y: { devices: 4, targeted: 2, updated: 2 } });
    expect(m.byInitialVersion).toEqual({ '1.0.0+0': { devices: 10, targeted: 10, updated: 9 } });
    expect(m.byGroup).toBeUndefined();
    expect(m.chaosDevices).toBe(3);
    expect(m.chaosFaults).toEqual({ loss: 5, delay: 7 });
    expect(m.chaosDatagrams).toBe(150);
    // shards of older versions (no mix fields) still merge
    expect(mergeShards([{ result: shard(1, 2, {}), source: 'a' }, { result: shard(2, 2, {}), source: 'b' }]).byBoard).toBeUndefined();
    expect(() => mergeShards([{ result: a, source: 'a' }, { result: shard(2, 2, { chaosSpec: 'loss=0.5' }), source: 'b' }])).toThrow(/another fleet/);
  });

  it('refuses shards of different fleets, twice the same shard, and foreign files', () => {
    expect(() => mergeShards([{ result: shard(1, 2, {}), source: 'a' }, { result: shard(1, 2, {}), source: 'b' }])).toThrow(/also in a/);
    expect(() => mergeShards([{ result: shard(1, 2, {}), source: 'a' }, { result: shard(2, 2, { seed: 2 }), source: 'b' }])).toThrow(/another fleet/);
    expect(() => asFleetResult({ hello: 1 }, 'x.json')).toThrow(/x.json: not a fleet result/);
  });

  it('milestones of an empty target are reached at once', () => {
    expect(milestones([], 0, 1).every((m) => m.wall_ms === 0)).toBe(true);
  });
});
