/**
 * The fleet's inputs beyond one board and one image: device mixes (--board/--initial-version
 * with weights), network chaos at a per-device rate (one seeded chaos proxy per chosen device),
 * and a fleet taken from a scenario file (groups scaled, images, timeline, network faults).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runFleet } from '../../src/fleet/fleet.js';
import { deviceIdentity, pickWeighted } from '../../src/fleet/plan.js';
import { loadScenario } from '../../src/scenario/index.js';
import { inRollout } from '../../src/server/rollout.js';

const dir = mkdtempSync(join(tmpdir(), 'ota-sim-fleet-mix-'));

describe('device mixes', () => {
  it('two boards and two initial versions, in 2 workers: every device updates; counts per board and version follow the seeded picks', async () => {
    const boards = [{ name: 'nrf52840', weight: 60 }, { name: 'nrf9160dk', weight: 40 }];
    const initials = [{ name: '1.0.0', weight: 1 }, { name: '0.9.0', weight: 1 }];
    const r = await runFleet({ devices: 16, workers: 2, seed: 11, boards, initialVersions: initials, timeScale: 0.01, imageSize_bytes: 8 * 1024, timeout_ms: 120_000 });
    expect(r.updated).toBe(16);
    expect(r.bricked).toBe(0);
    expect(r.board).toBe('nrf52840+nrf9160dk');
    // each device's board and start version are the seeded picks of (seed, index) alone
    const wantBoard: Record<string, number> = {};
    const wantInitial: Record<string, number> = {};
    for (let i = 0; i < 16; i++) {
      const b = pickWeighted(boards, 11, i, 'board');
      wantBoard[b] = (wantBoard[b] ?? 0) + 1;
      const v = `${pickWeighted(initials, 11, i, 'initial')}+0`;
      wantInitial[v] = (wantInitial[v] ?? 0) + 1;
    }
    expect(Object.keys(wantBoard).sort()).toEqual(['nrf52840', 'nrf9160dk']); // the seed gives a real mix
    expect(Object.keys(wantInitial).sort()).toEqual(['0.9.0+0', '1.0.0+0']);
    for (const [b, n] of Object.entries(wantBoard)) expect(r.byBoard?.[b]).toEqual({ devices: n, targeted: n, updated: n });
    for (const [v, n] of Object.entries(wantInitial)) expect(r.byInitialVersion?.[v]).toEqual({ devices: n, targeted: n, updated: n });
    // one artifact per board: both boards downloaded their own image, one template per (board, version) per worker
    expect(r.bytesServed).toBeGreaterThanOrEqual(16 * 8 * 1024);
  }, 180_000);
});

describe('network chaos at a per-device rate', () => {
  // a lossy link at a fast time scale: the agents' network timers are floored at 200 ms of wall time
  // (not the fleet's 1 s default), so a test boot still reaches the server within its rollback timer
  it('chaos rate 1 with 20 % loss: every device still updates, and the proxies counted the losses', async () => {
    const r = await runFleet({ devices: 10, workers: 0, seed: 2, chaosRate: 1, chaos: { loss: 0.2 }, chaosSpec: 'loss=0.2', netTimeoutFloor_wallMs: 200, imageSize_bytes: 4096, timeScale: 0.04, timeout_ms: 150_000, stall_ms: 40_000 });
    expect(r.updated).toBe(10);
    expect(r.bricked).toBe(0);
    expect(r.chaosDevices).toBe(10);
    expect(r.chaosRate).toBe(1);
    expect(r.chaosSpec).toBe('loss=0.2');
    expect(r.chaosFaults?.['loss']).toBeGreaterThan(20);
    // every datagram of every device went through a proxy: far more than the losses
    expect(r.chaosDatagrams).toBeGreaterThan(10 * 20);
  }, 180_000);

  it('chaos rate 0.5 puts a seeded half of the devices behind a proxy, in worker threads too (delays and duplicates)', async () => {
    const r = await runFleet({ devices: 12, workers: 2, seed: 4, chaosRate: 0.5, chaos: { delay_ms: 20, jitter_ms: 10, duplicate: 0.05 }, imageSize_bytes: 4096, timeScale: 0.01, timeout_ms: 120_000 });
    expect(r.updated).toBe(12);
    expect(r.chaosDevices).toBeGreaterThan(0);
    expect(r.chaosDevices).toBeLessThan(12);
    expect(r.chaosFaults?.['delay']).toBeGreaterThan(0);
    expect(r.chaosFaults?.['duplicate']).toBeGreaterThan(0);
    // the same seed picks the same devices again
    const again = await runFleet({ devices: 12, workers: 0, seed: 4, chaosRate: 0.5, chaos: { loss: 0 }, imageSize_bytes: 4096, timeScale: 0.01, timeout_ms: 120_000 });
    expect(again.chaosDevices).toBe(r.chaosDevices);
  }, 180_000);
});

const SCENARIO = `
name: fleet-mix-rollout
description: Do two groups on two boards, one behind a lossy link, all reach 1.1.0 when a 50 % rollout goes to 100 %?
seed: 21
board: nrf52840
strategy: swap-move
images:
  v1: { version: 1.0.0, size_bytes: 4096 }
  v09dk: { version: 0.9.0, size_bytes: 4096, board: nrf9160dk, security_counter: 0 }
  v2: { version: 1.1.0, size_bytes: 4096 }
  v2dk: { version: 1.1.0, size_bytes: 4096, board: nrf9160dk, security_counter: 0 }
groups:
  - { name: north, count: 6, image: v1, tags: [eu] }
  - { name: south, count: 4, image: v09dk, board: nrf9160dk }
timeline:
  - { at_ms: 0, release: { id: r1, images: [v2, v2dk], rolloutPercent: 50 } }
  - { at_ms: 30000, rollout: { release: r1, percent: 100 } }
faults:
  - { kind: network, devices: [south], loss: 0.1 }
expect:
  groups:
    north: { version: 1.1.0 }
    south: { version: 1.1.0 }
`;

describe('a fleet from a scenario file', () => {
  it('groups scaled to --devices, their boards and images, the timeline (rollout 50 % then 100 %) and a group behind a lossy link', async () => {
    const file = join(dir, 'mix.yaml');
    writeFileSync(file, SCENARIO);
    const r = await runFleet({ scenario: loadScenario(file), devices: 20, workers: 2, netTimeoutFloor_wallMs: 200, timeScale: 0.04, timeout_ms: 150_000, stall_ms: 40_000 });
    expect(r.scenario).toBe('fleet-mix-rollout');
    expect(r.release).toBe('r1');
    expect(r.rolloutPercent).toBe(100); // as the timeline leaves it
    expect(r.seed).toBe(21); // the scenario's seed
    expect(r.devices).toBe(20);
    // 6:4 scaled to 20 devices: 12 and 8, contiguous in group order
    expect(r.byGroup).toEqual({ north: { devices: 12, targeted: 12, updated: 12 }, south: { devices: 8, targeted: 8, updated: 8 } });
    expect(r.byBoard).toEqual({ nrf52840: { devices: 12, targeted: 12, updated: 12 }, nrf9160dk: { devices: 8, targeted: 8, updated: 8 } });
    expect(r.byInitialVersion).toEqual({ '1.0.0+0': { devices: 12, targeted: 12, updated: 12 }, '0.9.0+0': { devices: 8, targeted: 8, updated: 8 } });
    expect(r.targetVersion).toBe('1.1.0+0');
    expect(r.updated).toBe(20);
    expect(r.bricked).toBe(0);
    // the release starts at 50 %: without the timeline's rollout step only that bucket would have updated
    const bucket = Array.from({ length: 20 }, (_, i) => deviceIdentity('fleet-', i)).filter((id) => inRollout(id, 'r1', 50)).length;
    expect(bucket).toBeLessThan(20);
    // only the south group is behind the chaos proxy
    expect(r.chaosDevices).toBe(8);
    expect(r.chaosFaults?.['loss']).toBeGreaterThan(0);
  }, 200_000);
});
