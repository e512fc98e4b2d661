/**
 * The guides cannot rot: every fenced block of docs/guides/*.md (and docs/api.md when it exists)
 * runs, in order, in a temporary folder per guide that looks like a user's project — shell blocks
 * with bash, TypeScript blocks with node, scenario YAML through the scenario loader, fault
 * fragments inserted into BASE_SCENARIO, CI and Kubernetes YAML parsed and their ota-sim commands
 * run with the variables below. A block fenced ```sh no-run is skipped (the guide says why).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { extractBlocks } from './blocks.js';
import { GuideRun, ROOT } from './guide-runner.js';
import type { Substitution } from './guide-runner.js';

/**
 * The only changes made to documented commands, each for time (the guides say so next to the
 * command). Every entry must be used, or the test fails: a stale stand-in would hide a command.
 */
const SUBSTITUTIONS: readonly Substitution[] = [
  { guide: 'fleet.md', from: '--devices 1000', to: '--devices 16', reason: '1,000 devices take minutes on a 2-core machine; 16 run the same code paths in seconds' },
];

/** What CI would set: the first shard of the matrix, the first Kubernetes index. */
const CI_EXPRESSIONS: Record<string, string> = { 'matrix.shard': '1' };
const CI_ENV: Record<string, string> = { CI: 'true', CI_NODE_INDEX: '1', CI_NODE_TOTAL: '4', JOB_COMPLETION_INDEX: '0' };

/** Fault fragments of the QA guide are checked inside this scenario. */
const BASE_SCENARIO: Record<string, unknown> = {
  name: 'guide-base',
  description: 'Fault fragments of the QA guide are loaded inside this scenario.',
  board: 'nrf52840',
  strategy: 'swap-move',
  images: { v1: { version: '1.0.0' }, v2: { version: '1.1.0' }, 'v2-rebuilt': { version: '1.1.0', payloadSeed: 9 } },
  groups: [{ name: 'fleet', count: 1, image: 'v1' }],
  timeline: [{ at_ms: 0, release: { id: 'r1', images: ['v2'] } }],
  expect: { groups: { fleet: { version: '1.1.0' } } },
};

/** What each guide must have run (a block that silently stopped being recognised would drop out). */
const MUST_RUN: Record<string, RegExp[]> = {
  'qa.md': [/^scenario$/, /^fault fragment$/, /^sh$/],
  'ci.md': [/^GitHub Actions job /, /^GitLab CI job /, /^sh$/],
  'fleet.md': [/^Kubernetes container /, /^sh$/],
  'firmware.md': [/^json$/, /^sh$/],
  'api.md': [/^ts$/],
};

// OTA_SIM_GUIDES_DIR points the test at a scratch copy (to prove that a broken command fails it).
const GUIDES_DIR = process.env.OTA_SIM_GUIDES_DIR ?? join(ROOT, 'docs', 'guides');
const guides = existsSync(GUIDES_DIR) ? readdirSync(GUIDES_DIR).filter((f) => f.endsWith('.md')).sort() : [];
const files: [string, string][] = guides.map((g) => [g, join(GUIDES_DIR, g)]);
if (process.env.OTA_SIM_GUIDES_DIR === undefined && existsSync(join(ROOT, 'docs', 'api.md'))) files.push(['api.md', join(ROOT, 'docs', 'api.md')]);

const runs: GuideRun[] = [];
afterAll(async () => {
  for (const r of runs) await r.close(false);
});

describe('the guides run as written', () => {
  it('finds the four guides', () => {
    expect(guides).toEqual(['ci.md', 'firmware.md', 'fleet.md', 'qa.md']);
  });

  for (const [name, path] of files) {
    it(`docs/${name === 'api.md' ? '' : 'guides/'}${name}`, { timeout: 240_000 }, async () => {
      const blocks = extractBlocks(path);
      expect(blocks.length).toBeGreaterThan(0);
      const run = new GuideRun(name, {
        ciExpressions: CI_EXPRESSIONS,
        ciEnv: CI_ENV,
        substitutions: SUBSTITUTIONS,
        blockTimeout_ms: 120_000,
        baseScenario: BASE_SCENARIO,
      });
      runs.push(run);
      await run.runAll(blocks);
      expect(run.unusedSubstitutions()).toEqual([]);
      // Something executable ran: a guide of only prose and samples would prove nothing.
      expect(run.ran.some((o) => o.what !== 'json')).toBe(true);
      for (const re of MUST_RUN[name] ?? []) expect(run.ran.map((o) => o.what), `${name} ran no block matching ${re}`).toContainEqual(expect.stringMatching(re));
    });
  }
});
