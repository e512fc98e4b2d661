/** A small fleet of full devices updates over DTLS to confirmed, in worker threads and in-process. */
import { describe, expect, it } from 'vitest';
import { runFleet } from '../../src/fleet/fleet.js';
import { inRollout } from '../../src/server/rollout.js';
import { deviceIdentity } from '../../src/fleet/plan.js';

describe('runFleet', () => {
  it('20 devices in 2 worker threads all update to confirmed over DTLS, none bricked', async () => {
    const seen: number[] = [];
    const r = await runFleet({ devices: 20, workers: 2, seed: 3, timeScale: 0.01, imageSize_bytes: 16 * 1024, timeout_ms: 120_000 }, { onProgress: (p) => seen.push(p.updated) });
    expect(r.devices).toBe(20);
    expect(r.expected).toBe(20);
    expect(r.updated).toBe(20);
    expect(r.bricked).toBe(0);
    expect(r.targetReached).toBe(true);
    expect(r.targetVersion).toBe('1.1.0+0');
    expect(r.workers).toBe(2);
    expect(r.updateTimes_wallMs).toHaveLength(20);
    expect(r.milestones.map((m) => m.percent)).toEqual([50, 90, 99, 100]);
    expect(r.milestones.every((m) => m.wall_ms !== null && m.simulated_ms !== null)).toBe(true);
    // every device downloaded the whole image from the server, and rebooted into it
    expect(r.bytesServed).toBeGreaterThanOrEqual(20 * 16 * 1024);
    expect(r.reboots).toBeGreaterThanOrEqual(20);
    expect(seen.length).toBeGreaterThan(0);
    // content-addressed flash: 20 devices × (two 16 KiB images + trailers) stored as far fewer distinct sectors
    expect(r.sectorsStored).toBeGreaterThan(0);
    expect(r.sectorsStored).toBeLessThan(2 * 30);
    expect(r.sectorsShared).toBeGreaterThan(20 * 8);
  }, 180_000);

  it('a 30 % rollout updates exactly the devices whose server-side bucket is in, in-process with power cuts', async () => {
    const r = await runFleet({ devices: 16, workers: 0, seed: 5, rolloutPercent: 30, powerCutRate: 1, timeScale: 0.01, imageSize_bytes: 16 * 1024, timeout_ms: 120_000, stall_ms: 8000 });
    const inIt = Array.from({ length: 16 }, (_, i) => deviceIdentity('fleet-', i)).filter((id) => inRollout(id, 'fleet', 30)).length;
    expect(r.expected).toBe(inIt);
    expect(r.updated).toBe(inIt);
    expect(r.bricked).toBe(0);
    expect(r.powerCuts).toBeGreaterThan(0);
    expect(r.failuresByReason['power-cut']).toBe(r.powerCuts);
  }, 180_000);
});

describe('fleet poll interval', () => {
  it('reaches every agent: short polls hit the server many times, the fleet default hardly ever', async () => {
    const polls = async (pollInterval_ms?: number): Promise<number> => {
      let server: { metrics(): { manifestRequests: number } } | null = null;
      const r = await runFleet(
        { devices: 4, workers: 0, seed: 5, timeScale: 0.01, imageSize_bytes: 8 * 1024, timeout_ms: 120_000, ...(pollInterval_ms !== undefined ? { pollInterval_ms } : {}) },
        { onServer: (s) => (server = s) },
      );
      expect(r.updated).toBe(4);
      expect(r.pollInterval_ms).toBe(pollInterval_ms ?? 300_000);
      return server!.metrics().manifestRequests;
    };
    // 300 s simulated = 3 wall s: hardly more than the registrations (and re-registrations after the test boot)
    const rare = await polls();
    expect(rare).toBeLessThan(4 * 4);
    // 1 s simulated = 10 wall ms between polls: many per device over the same run
    const often = await polls(1000);
    expect(often).toBeGreaterThan(rare + 4 * 3);
  }, 180_000);
});
