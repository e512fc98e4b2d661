/**
 * `ota-sim run`: exit 0 when every scenario passed, 1 when one failed (with its replay command),
 * 2 for a bad scenario file or option; --json prints the run result only; reports are written.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runBin, runCli } from '../helpers/cli.js';
import { base } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ota-sim-run-cli-'));
const file = (name: string, o: Record<string, unknown>): string => {
  const p = join(dir, `${name}.yaml`);
  writeFileSync(p, stringify(o));
  return p;
};
// a refusal (no reboot, no swap) keeps these quick
const quick = { images: { v1: { version: '1.0.0' }, v2: { version: '1.1.0', corrupt: 'signature' } }, expect: { groups: { fleet: { version: '1.0.0', reports: [{ r: 5 }] } } } };

describe('ota-sim run', () => {
  it('exit 0 when every scenario passed; --json prints the run result; reports are written', async () => {
    const reports = join(dir, 'reports-ok');
    const r = await runCli(['run', file('ok', base('ok', quick)), '--report-dir', reports, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { schema: string; passed: number; failed: number; scenarios: { name: string; passed: boolean; seed: number }[]; agentStates: string[] };
    expect(json).toMatchObject({ schema: 'ota-sim/run-result@1', passed: 1, failed: 0 });
    expect(json.scenarios[0]).toMatchObject({ name: 'ok', passed: true, seed: 5 });
    expect(json.agentStates).toContain('idle');
    for (const f of ['junit.xml', 'results.json', 'report.html']) expect(existsSync(join(reports, f)), f).toBe(true);
  }, 120_000);

  it('exit 1 when a scenario fails, with the failure sentence and the replay command', async () => {
    const p = file('bad-expect', base('bad-expect', { ...quick, expect: { groups: { fleet: { version: '2.0.0' } } } }));
    const r = await runCli(['run', p, '--report-dir', join(dir, 'reports-fail'), '--seed', '9']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/FAIL/);
    expect(r.stdout).toContain(`npx ota-sim run ${p} --seed 9`);
    expect(readFileSync(join(dir, 'reports-fail', 'junit.xml'), 'utf8')).toMatch(/<failure/);
  }, 120_000);

  it('exit 2 for a bad scenario file, naming the file and the path, before anything runs', async () => {
    const p = file('typo', { ...base('typo', quick), groups: [{ name: 'fleet', count: 'two', image: 'v1' }] });
    const r = await runBin(['run', p, '--report-dir', join(dir, 'reports-bad')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${p}: groups[0].count: expected a whole number ≥ 1, got "two"`);
    expect(existsSync(join(dir, 'reports-bad'))).toBe(false);
  }, 60_000);

  it('exit 2 for bad options and for a filter that names nothing', async () => {
    const p = file('ok2', base('ok2', quick));
    expect((await runCli(['run', p, '--time-scale', 'fast'])).stderr).toMatch(/--time-scale: expected a number > 0/);
    const f = await runCli(['run', p, '--filter', 'nothing-like-this']);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/no scenario name contains "nothing-like-this" \(names: ok2\)/);
    expect((await runCli(['run', join(dir, 'missing.yaml')])).code).toBe(2);
  }, 60_000);
});

describe('ota-sim run --shard', () => {
  it('shards are disjoint and together the whole list, in order', async () => {
    const { shardOf } = await import('../../src/scenario/run.js');
    const items = Array.from({ length: 11 }, (_, i) => i);
    const shards = [1, 2, 3, 4].map((index) => shardOf(items, { index, count: 4 }));
    expect(shards[0]).toEqual([0, 4, 8]);
    expect(shards.flat().sort((a, b) => a - b)).toEqual(items);
    expect(shardOf(items, { index: 12, count: 12 })).toEqual([]);
  });

  it('runs only its slice (name order), an empty slice passes, a bad one exits 2', async () => {
    const a = file('shard-a', base('shard-a', quick));
    const b = file('shard-b', base('shard-b', quick));
    const r = await runCli(['run', a, b, '--shard', '2/2', '--report-dir', join(dir, 'reports-shard'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { scenarios: { name: string }[] };
    expect(json.scenarios.map((s) => s.name)).toEqual(['shard-b']);
    const empty = await runCli(['run', a, '--shard', '2/2', '--report-dir', join(dir, 'reports-shard-empty'), '--json']);
    expect(empty.code, empty.stderr).toBe(0);
    expect((JSON.parse(empty.stdout) as { scenarios: unknown[] }).scenarios).toEqual([]);
    const bad = await runCli(['run', a, '--shard', '3/2']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--shard/);
  }, 120_000);
});
