/**
 * Bootloader sweep benchmark: the nrf52840 layout of MCUboot's simulator, swap-move, two 200 KiB
 * images (as its simulator sizes them), the upgrade boot's 906 cut points — between ops, then torn
 * (every write block of every write, 3 seeded partial-erase patterns per erase). MCUboot's
 * simulator covers those 906 between-op cut points at about 960 cases/s on this machine (release
 * build, one thread, swap-move + ed25519: 24,384 cases in 25.4 s, issue 4); it cannot be built
 * here (no crates.io), so that figure is quoted, not measured. A single uninterrupted boot is
 * measured in the same process as the in-process reference.
 */
import { performance } from 'node:perf_hooks';
import { boot } from '../src/boot/boot.js';
import { buildScenario } from '../src/boot/sweep.js';
import { sweepScenario } from '../src/boot/sweep-engine.js';
import type { SweepOptions } from '../src/boot/sweep.js';
import { timeIt } from './harness.js';
import type { BenchResult } from './harness.js';

/** MCUboot's simulator on this machine (issue 4): 906 cut points per configuration, ~960 cases/s. */
const MCUBOOT_SIM_CASES_PER_S = 960;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function benchBoot(): Promise<BenchResult[]> {
  const setup = { board: 'nrf52840', strategy: 'swap-move', imageSize_bytes: 200 * 1024 } as const;
  const scenario = buildScenario(setup);
  const results: BenchResult[] = [];

  // In-process reference: one whole upgrade boot (906 flash ops, 2 × 200 KiB moved).
  const bootOnce = (): void => {
    const f = scenario.initial.clone({ journal: false });
    const r = boot(f, { strategy: 'swap-move', trustedKeys: scenario.trustedKeys });
    if (r.kind !== 'booted') throw new Error('bench: the clean boot did not boot');
  };
  const single = timeIt(bootOnce, 500, 200);
  results.push({ name: 'one full swap-move upgrade boot, 200 KiB (reference)', value: single.msPerRun, unit: 'ms' });

  // Between ops: warm up once, then the median of several whole sweeps.
  const between: SweepOptions = { ...setup, phase: 'swap' };
  const first = sweepScenario(between, scenario);
  if (first.violations.length > 0) throw new Error(`bench: the faithful model shows violations: ${first.violations[0]!.detail}`);
  const rates: number[] = [];
  const t0 = performance.now();
  while (rates.length < 5 || (performance.now() - t0 < 3000 && rates.length < 30)) rates.push(sweepScenario(between, scenario).casesPerSecond);
  const rate = median(rates);
  results.push({
    name: `sweep between ops, nrf52840 swap-move 200 KiB (${first.cases} cases)`,
    value: rate,
    unit: 'cases/s',
    ratio: `${(rate / MCUBOOT_SIM_CASES_PER_S).toFixed(1)}x MCUboot's simulator's ~${MCUBOOT_SIM_CASES_PER_S} cases/s (quoted, not measured here); ${(rate * single.msPerRun / 1000).toFixed(0)} cases per full-boot time`,
  });

  // Torn: every write block and 3 erase patterns per op, once (it is the long one).
  const torn = sweepScenario({ ...setup, phase: 'swap', torn: true }, scenario);
  results.push({
    name: `sweep torn, nrf52840 swap-move 200 KiB (${torn.cases} cases, total)`,
    value: torn.durationMs / 1000,
    unit: 's',
    ratio: `target < 120 s; ${torn.violations.length} violation(s): the torn copy_done write (known finding)`,
  });
  results.push({ name: 'sweep torn, cases per second', value: torn.casesPerSecond, unit: 'cases/s' });
  return results;
}
