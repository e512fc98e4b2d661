/**
 * Sweeps of the whole update: a real OTA (embedded server over UDP or DTLS, the agent, the
 * bootloader model) recorded once, then cut at flash ops of chosen phases, each case a fresh
 * device on the rebuilt flash, judged by the oracle. Each seeded agent defect is caught (the
 * right invariant) by a small sweep that reports nothing without the defect. Sweeps here cover a
 * few ops each (fromOp/toOp) to stay within seconds; the full sweep's cost is in the README.
 */
import { describe, expect, it } from 'vitest';
import type { AgentDefect } from '../../src/agent/index.js';
import { AGENT_DEFECTS } from '../../src/agent/index.js';
import { sweepUpdate } from '../../src/scenario/sweep.js';
import type { UpdateSweepOptions, UpdateSweepReport } from '../../src/scenario/sweep.js';
import { buildUpdateSpec } from '../../src/scenario/sweep-spec.js';
import type { UpdateSpecRecipe } from '../../src/scenario/sweep-spec.js';

const GOOD: UpdateSpecRecipe = { name: 'good', board: 'nrf52840', strategy: 'swap-move', from: { version: '1.0.0' }, to: { version: '2.0.0' } };
const FAILS: UpdateSpecRecipe = { ...GOOD, name: 'fails', to: { version: '2.0.0', behaviour: { selfTest: 'fail' } } };
const WRONG_BOARD: UpdateSpecRecipe = { ...GOOD, name: 'wrongboard', to: { version: '2.0.0', board: 'stm32f4' } };

async function sweep(recipe: UpdateSpecRecipe, o: Partial<UpdateSweepOptions>): Promise<UpdateSweepReport> {
  return sweepUpdate({ spec: buildUpdateSpec(recipe), phase: 'all', command: 'ota-sim sweep test.yaml', concurrency: 4, ...o });
}

const invariantsOf = (r: UpdateSweepReport): string[] => [...new Set(r.violations.map((v) => v.invariant))].sort();

describe('whole-update sweep', () => {
  it('records the update phases of a clean run over UDP and cuts in the download phase without a violation', async () => {
    const r = await sweep(GOOD, { phase: 'download', fromOp: 0, toOp: 6 });
    expect(r.violations).toEqual([]);
    expect(r.opsByPhase).toMatchObject({ download: expect.any(Number), stage: expect.any(Number), swap: expect.any(Number), confirm: expect.any(Number) });
    expect(r.opsByPhase['revert']).toBeUndefined(); // a good target is never reverted
    expect(r.cases).toBe(1 + 6); // the clean run and one case per op (the first ops are all download)
    expect(r.casesPerSecond).toBeGreaterThan(0);
    expect(r.verdicts).toEqual(['clean ok', '0 ok', '1 ok', '2 ok', '3 ok', '4 ok', '5 ok']);
  });

  it('over DTLS, a failing target: cuts in stage and in the revert are judged right (rollback expected)', async () => {
    const probe = await sweep({ ...FAILS, transport: 'dtls' }, { phase: 'stage' });
    expect(probe.violations).toEqual([]);
    expect(probe.transport).toBe('dtls');
    expect(probe.cases).toBe(1 + probe.opsByPhase['stage']!);
    const revertStart = probe.firstOpByPhase['revert']!;
    expect(revertStart).toBeGreaterThan(probe.firstOpByPhase['swap']!);
    // cuts while the revert swaps sectors (its first ops mark slot1 for a 'perm' restore: a cut
    // there is a known finding of the sweep, see the README)
    const r = await sweep({ ...FAILS, transport: 'dtls' }, { phase: 'revert', fromOp: revertStart + 20, toOp: revertStart + 26 });
    expect(r.violations).toEqual([]);
    expect(r.cases).toBeGreaterThan(1);
  });

  it('torn: cuts inside the stage writes at every write block', async () => {
    const r = await sweep(GOOD, { phase: 'stage', torn: true });
    expect(r.violations).toEqual([]);
    expect(r.cases).toBeGreaterThan(1 + 2 * r.opsByPhase['stage']!); // write blocks of each trailer write
  });

  const CATCH: Record<AgentDefect, { recipe: UpdateSpecRecipe; o: Partial<UpdateSweepOptions>; invariant: string }> = {
    // a cut late in the download: without the progress record the agent starts again at block 0
    'progress-never-persisted': { recipe: GOOD, o: { phase: 'download', fromOp: 30, toOp: 34 }, invariant: 'bounded-effort' },
    // the failing image is confirmed before its self-test: it stays
    'confirm-before-self-test': { recipe: FAILS, o: { phase: 'stage' }, invariant: 'converges' },
    // the trailer of an image the agent refuses (wrong board) is already written: the bootloader test-boots it
    'pending-before-verify': { recipe: WRONG_BOARD, o: { phase: 'stage' }, invariant: 'converges' },
    // after the rollback the failure is forgotten: no failure report, the version is tried again
    'failure-report-from-ram': { recipe: FAILS, o: { phase: 'stage' }, invariant: 'honest-reports' },
  };

  it.each(AGENT_DEFECTS.map((d) => [d]))('agent defect %s: caught by the sweep, which reports nothing without it', async (defect) => {
    const c = CATCH[defect];
    const bad = await sweep(c.recipe, { ...c.o, defects: [defect] });
    expect(invariantsOf(bad)).toContain(c.invariant);
    const v = bad.violations.find((x) => x.invariant === c.invariant)!;
    expect(v.replay).toMatch(new RegExp(`^ota-sim sweep test\\.yaml --phase ${c.o.phase} --defect ${defect} --seed 1 --cut (clean|\\d+)$`));
    const honest = await sweep(c.recipe, c.o);
    expect(honest.violations).toEqual([]);
  });

  it('deterministic: the same spec and seed give the same cases and verdicts; --cut replays one case', async () => {
    const o = { phase: 'download' as const, fromOp: 28, toOp: 34, defects: ['progress-never-persisted'] };
    const a = await sweep(GOOD, o);
    const b = await sweep(GOOD, { ...o, concurrency: 2 });
    expect(a.verdicts).toEqual(b.verdicts);
    expect(a.cleanRunDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(a.cleanRunDigest).toBe(b.cleanRunDigest); // the same flash ops, op for op
    expect(a.ops).toBe(b.ops);
    expect(a.violations.map((v) => [v.invariant, v.opIndex, v.replay])).toEqual(b.violations.map((v) => [v.invariant, v.opIndex, v.replay]));
    const first = a.violations[0]!;
    const one = await sweep(GOOD, { ...o, cut: { opIndex: first.opIndex!, block: null } });
    expect(one.cases).toBe(1);
    expect(one.narrative.join('\n')).toMatch(new RegExp(`op ${first.opIndex} is a firmware (write|erase) of \\d+ bytes at slot1\\+0x[0-9a-f]+ \\(phase download\\)[^]*power cut before op ${first.opIndex}[^]*boot: 1\\.0\\.0\\+0 confirmed[^]*agent-state: downloading`));
    expect(one.violations.map((v) => v.invariant)).toEqual(a.violations.filter((v) => v.opIndex === first.opIndex).map((v) => v.invariant));
  });

  it('a bootloader defect in a whole-update sweep: revert-skipped keeps a failing image', async () => {
    const r = await sweep(FAILS, { phase: 'stage', toOp: 0, defects: ['revert-skipped'] });
    expect(r.cases).toBe(1);
    expect(invariantsOf(r)).toContain('converges');
    expect(r.violations[0]!.replay).toBe('ota-sim sweep test.yaml --phase stage --defect revert-skipped --seed 1 --cut clean');
  });

  it('rejects unknown defects and phases', async () => {
    await expect(sweep(GOOD, { defects: ['no-such-defect'] })).rejects.toThrow(/unknown; bootloader defects: .*agent defects: /);
    await expect(sweep(GOOD, { phase: 'test-boot' as 'all' })).rejects.toThrow(/--phase: expected one of download, stage, swap, confirm, revert, all/);
  });
  it('overwrite-only: a cut between the magic and the image_ok of a permanent request ends on the new image, no boot loop, an honest report', async () => {
    // The cut leaves a test request; the copy carries slot1's trailer (image_ok's block programmed)
    // into slot0, so the confirm is refused: the agent must not reboot into the same image forever.
    const r = await sweep({ ...GOOD, name: 'ow', strategy: 'overwrite-only' }, { phase: 'stage' });
    expect(r.cases).toBeGreaterThanOrEqual(3);
    expect(r.violations).toEqual([]);
  }, 120_000);
});
