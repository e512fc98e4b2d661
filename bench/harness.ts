/** Small timing harness for bench/: repeat until enough time has passed, report ms per run. */
import { performance } from 'node:perf_hooks';

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  /** The figure against a reference measured in the same process, in words. */
  ratio?: string;
}

/** Run fn repeatedly for at least `min_ms` (after one warm-up run); ms per run. */
export function timeIt(fn: () => void, min_ms = 300, max_runs = 100_000): { msPerRun: number; runs: number } {
  fn();
  let runs = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < min_ms && runs < max_runs) {
    fn();
    runs++;
    elapsed = performance.now() - start;
  }
  return { msPerRun: elapsed / runs, runs };
}

export function printResults(title: string, results: BenchResult[]): void {
  process.stdout.write(`\n${title}\n`);
  for (const r of results) {
    const value = r.value >= 100 ? r.value.toFixed(0) : r.value.toFixed(3);
    process.stdout.write(`  ${r.name.padEnd(62)} ${value.padStart(12)} ${r.unit}${r.ratio ? `   (${r.ratio})` : ''}\n`);
  }
}
