/**
 * The doc-test harness itself: a failing shell line is reported with the guide's file and line and
 * its output; what a block leaves in the background is killed when the guide closes; a stale
 * substitution is reported; an unclassifiable YAML block fails instead of passing silently.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { extractBlocks } from './blocks.js';
import { GuideRun } from './guide-runner.js';
import type { GuideOptions } from './guide-runner.js';

const opts = (over: Partial<GuideOptions> = {}): GuideOptions => ({
  ciExpressions: { 'matrix.shard': '1' },
  ciEnv: { JOB_COMPLETION_INDEX: '0' },
  substitutions: [],
  blockTimeout_ms: 60_000,
  baseScenario: {},
  ...over,
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('doc-test harness', () => {
  it('names the guide line that failed, with its output', async () => {
    const md = ['# t', '', '```sh', 'echo first > a.txt', 'echo visible-output', 'false', 'echo never', '```', ''].join('\n');
    const run = new GuideRun('t.md', opts());
    try {
      await expect(run.runAll(extractBlocks('t.md', md))).rejects.toThrow(/^t\.md:6: sh block failed \(exit 1\)[\s\S]*visible-output/);
      expect(readFileSync(join(run.dir, 'a.txt'), 'utf8')).toBe('first\n');
    } finally {
      await run.close(false);
    }
  });

  it('kills what a block left running in the background when the guide closes', async () => {
    const md = ['```sh', 'sleep 300 &', 'echo $! > bg.pid', '```', '```sh no-run', 'exit 1', '```', ''].join('\n');
    const run = new GuideRun('bg.md', opts());
    await run.runAll(extractBlocks('bg.md', md));
    const pid = Number(readFileSync(join(run.dir, 'bg.pid'), 'utf8'));
    expect(alive(pid)).toBe(true);
    await run.close(false);
    expect(alive(pid)).toBe(false);
  });

  it('runs GitHub Actions steps with the matrix value, skipping setup lines, and rejects unknown YAML', async () => {
    const gh = ['```yaml', 'jobs:', '  t:', '    steps:', '      - run: npm ci', '      - run: echo "shard ${{ matrix.shard }}" > shard.txt && ota-sim --version > v.txt', '```', ''].join('\n');
    const run = new GuideRun('gh.md', opts());
    try {
      await run.runAll(extractBlocks('gh.md', gh));
      expect(readFileSync(join(run.dir, 'shard.txt'), 'utf8')).toBe('shard 1\n');
      await expect(run.runAll(extractBlocks('x.md', '```yaml\nsomething: else\n```\n'))).rejects.toThrow(/neither a scenario/);
    } finally {
      await run.close(false);
    }
  });

  it('reports a substitution that no longer matches anything', async () => {
    const run = new GuideRun('s.md', opts({ substitutions: [{ guide: 's.md', from: '--devices 1000', to: '--devices 2', reason: 'time' }] }));
    try {
      await run.runAll(extractBlocks('s.md', '```sh\necho --devices 5\n```\n'));
      expect(run.unusedSubstitutions().map((s) => s.from)).toEqual(['--devices 1000']);
    } finally {
      await run.close(false);
    }
  });
});
