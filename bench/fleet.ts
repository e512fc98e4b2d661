/**
 * Fleet benchmark (issue 9 targets): N full devices (flash, MCUboot model, agent, own DTLS
 * session each) update a 64 KiB image over DTLS to confirmed against the embedded server, devices
 * in worker threads. Prints wall time to 100 % updated, devices/s (and as a ratio of a 100-device
 * reference run in the same process: how well throughput holds as the fleet grows), CPU per device
 * (all threads: the server's and the devices'), RSS per device and peak RSS.
 * Sizes: OTA_SIM_BENCH_FLEET (default "100,1000"; "100,1000,10000" for the 10 000-device target).
 */
import { runFleet } from '../src/fleet/index.js';
import type { BenchResult } from './harness.js';

const REFERENCE_DEVICES = 100;

async function measure(devices: number): Promise<{ r: Awaited<ReturnType<typeof runFleet>>; cpu_ms: number; perS: number }> {
  const before = process.cpuUsage();
  const r = await runFleet({ devices, imageSize_bytes: 64 * 1024, timeScale: 0.04, seed: 1, timeout_ms: 900_000 });
  const used = process.cpuUsage(before);
  return { r, cpu_ms: (used.user + used.system) / 1000, perS: r.updated / (r.durationMs / 1000) };
}

export async function benchFleet(): Promise<BenchResult[]> {
  const sizes = (process.env.OTA_SIM_BENCH_FLEET ?? '100,1000').split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0);
  const out: BenchResult[] = [];
  const reference = await measure(REFERENCE_DEVICES);
  for (const devices of sizes) {
    const m = devices === REFERENCE_DEVICES ? reference : await measure(devices);
    const { r } = m;
    const all = r.milestones.find((x) => x.percent === 100)?.wall_ms ?? null;
    const target = devices >= 10_000 ? 'target < 180 s, peak RSS < 4 GiB' : devices >= 1000 ? 'target < 20 s' : undefined;
    out.push({ name: `fleet: ${devices} devices, 64 KiB over DTLS, wall s to 100 % confirmed`, value: (all ?? r.durationMs) / 1000, unit: all === null ? 's (NOT all updated)' : 's', ...(target ? { ratio: target } : {}) });
    out.push({ name: `fleet: ${devices} devices, updates per wall second`, value: m.perS, unit: 'devices/s', ratio: `${(m.perS / reference.perS).toFixed(2)}x the ${REFERENCE_DEVICES}-device run` });
    out.push({ name: `fleet: ${devices} devices, CPU per device (all threads)`, value: m.cpu_ms / devices, unit: 'ms', ratio: `${(m.cpu_ms / devices / (reference.cpu_ms / REFERENCE_DEVICES)).toFixed(2)}x the ${REFERENCE_DEVICES}-device run` });
    out.push({ name: `fleet: ${devices} devices, RSS per device`, value: r.rssBytesPerDevice / 1024, unit: 'KiB' });
    out.push({ name: `fleet: ${devices} devices, peak RSS`, value: r.peakRssBytes / 2 ** 20, unit: 'MiB', ratio: `bricked ${r.bricked}, updated ${r.updated}/${r.expected}, ${r.workers} worker(s)` });
  }
  return out;
}
