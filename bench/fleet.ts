/**
 * Fleet benchmark (issue 9 targets): N full devices (flash, MCUboot model, agent, own DTLS
 * session each) update a 64 KiB image over DTLS to confirmed against the embedded server, devices
 * in worker threads. Prints wall time to 100 % updated, devices/s, RSS per device and peak RSS.
 * Sizes: OTA_SIM_BENCH_FLEET (default "100,1000"; "100,1000,10000" for the 10 000-device target).
 */
import { runFleet } from '../src/fleet/index.js';
import type { BenchResult } from './harness.js';

export async function benchFleet(): Promise<BenchResult[]> {
  const sizes = (process.env.OTA_SIM_BENCH_FLEET ?? '100,1000').split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0);
  const out: BenchResult[] = [];
  for (const devices of sizes) {
    const r = await runFleet({ devices, imageSize_bytes: 64 * 1024, timeScale: 0.04, seed: 1, timeout_ms: 900_000 });
    const all = r.milestones.find((m) => m.percent === 100)?.wall_ms ?? null;
    const target = devices >= 10_000 ? 'target < 180 s, peak RSS < 4 GiB' : devices >= 1000 ? 'target < 20 s' : undefined;
    out.push({ name: `fleet: ${devices} devices, 64 KiB over DTLS, wall s to 100 % confirmed`, value: (all ?? r.durationMs) / 1000, unit: all === null ? 's (NOT all updated)' : 's', ...(target ? { ratio: target } : {}) });
    out.push({ name: `fleet: ${devices} devices, updates per wall second`, value: r.updated / (r.durationMs / 1000), unit: 'devices/s' });
    out.push({ name: `fleet: ${devices} devices, RSS per device`, value: r.rssBytesPerDevice / 1024, unit: 'KiB' });
    out.push({ name: `fleet: ${devices} devices, peak RSS`, value: r.peakRssBytes / 2 ** 20, unit: 'MiB', ratio: `bricked ${r.bricked}, updated ${r.updated}/${r.expected}, ${r.workers} worker(s)` });
  }
  return out;
}
