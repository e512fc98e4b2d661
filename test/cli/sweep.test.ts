/**
 * `ota-sim sweep`: a clean sweep exits 0 with cases and cases/s; every seeded defect exits 1 with
 * a violation whose replay command, run through the CLI, reproduces it; bad flags exit 2 with one
 * line; --matrix restricted by --board/--strategy/--write-size/--erase-value; progress on a TTY only.
 * Small images (16 KiB on nrf52840) keep it fast.
 */
import { describe, expect, it } from 'vitest';
import { BOOT_DEFECTS } from '../../src/boot/context.js';
import { runBin, runCli } from '../helpers/cli.js';

const SMALL = ['--board', 'nrf52840', '--image-size', '16384'];
const HAPPY = 'scenarios/01-happy-swap-move.yaml';

interface ViolationJson {
  invariant: string;
  opIndex: number;
  block: number | null;
  phase: string;
  detail: string;
  replay: string;
}

interface SweepJson {
  board: string;
  strategy: string;
  phase: string;
  torn: boolean;
  cases: number;
  ops: number;
  casesPerSecond: number;
  durationMs: number;
  violations: ViolationJson[];
  notes: string[];
}

function argsOf(replay: string): string[] {
  expect(replay.startsWith('ota-sim sweep ')).toBe(true);
  return replay.split(' ').slice(1);
}

describe('ota-sim sweep', () => {
  it('a clean sweep exits 0 and reports cases, cases/s and no violation', async () => {
    const r = await runCli(['sweep', ...SMALL, '--strategy', 'swap-move', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as SweepJson;
    expect(json).toMatchObject({ board: 'nrf52840', strategy: 'swap-move', phase: 'all', torn: false, violations: [] });
    expect(json.cases).toBeGreaterThan(json.ops); // every op index of both phases, plus the clean boots
    expect(json.ops).toBeGreaterThan(0);
    expect(json.casesPerSecond).toBeGreaterThan(0);
    expect(r.stderr).toBe('');
  });

  it('defaults: the board\'s first strategy (nrf52840: swap-scratch); text output; torn and multi-cut run', async () => {
    let r = await runCli(['sweep', ...SMALL, '--phase', 'swap']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^sweep nrf52840 swap-scratch, write size 4, erase value 0xff, phase swap/);
    expect(r.stdout).toMatch(/\d+ cases over \d+ flash ops in [\d.]+ s: [\d,.]+ cases\/s/);
    expect(r.stdout).toMatch(/no violation/);

    r = await runCli(['sweep', ...SMALL, '--strategy', 'overwrite-only', '--torn', '--write-size', '8', '--erase-value', '0', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const torn = JSON.parse(r.stdout) as SweepJson & { writeSize: number; eraseValue: number };
    expect(torn).toMatchObject({ strategy: 'overwrite-only', torn: true, writeSize: 8, eraseValue: 0, violations: [] });
    expect(torn.cases).toBeGreaterThan(torn.ops * 2);
    expect(torn.notes.join('\n')).toMatch(/overwrite-only cannot revert/);

    r = await runCli(['sweep', ...SMALL, '--strategy', 'swap-move', '--phase', 'swap', '--multi-cut', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as SweepJson).violations).toEqual([]);
  });

  it.each(BOOT_DEFECTS)('--defect %s: exit 1, and the replay command reproduces the violation', async (defect) => {
    // The pre-PR-2100 swap table only bricks on a torn secondary magic during a revert (mcuboot issue 1966).
    const extra = defect === 'revert-requires-secondary-unset' ? ['--torn', '--phase', 'revert', '--to-op', '12'] : [];
    const r = await runCli(['sweep', ...SMALL, '--strategy', 'swap-move', '--defect', defect, ...extra, '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/violation/);
    const json = JSON.parse(r.stdout) as SweepJson;
    expect(json.violations.length).toBeGreaterThan(0);
    const v = json.violations[0]!;
    expect(Number.isInteger(v.opIndex)).toBe(true);
    expect(v.invariant).toMatch(/\w/);
    expect(v.replay).toContain(`--defect ${defect}`);
    expect(v.replay).toContain(`--cut ${v.opIndex}${v.block === null ? '' : `:${v.block}`}`);
    if (defect === 'revert-requires-secondary-unset') {
      expect(v.block).not.toBeNull();
      expect(v.opIndex).toBe(3); // fixup_revert's torn secondary magic
    }

    const replay = await runCli([...argsOf(v.replay), '--json']);
    expect(replay.code, replay.stderr).toBe(1);
    expect(replay.stderr.trim().split('\n')).toHaveLength(1);
    const again = JSON.parse(replay.stdout) as { cases: number; narrative: string[]; violations: ViolationJson[] };
    expect(again.cases).toBe(1);
    expect(again.narrative.length).toBeGreaterThan(2);
    expect(again.violations).toContainEqual(expect.objectContaining({ invariant: v.invariant, opIndex: v.opIndex, block: v.block, phase: v.phase }));

    // The same case without the defect holds: the defect, not the cut, breaks it.
    const faithful = await runCli(argsOf(v.replay).filter((a, i, all) => a !== '--defect' && all[i - 1] !== '--defect'));
    expect(faithful.code, faithful.stdout).toBe(0);
    expect(faithful.stdout).toMatch(/no violation/);
  });

  it('--cut prints the narrative of one case', async () => {
    const r = await runCli(['sweep', ...SMALL, '--strategy', 'swap-move', '--phase', 'swap', '--cut', '40']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^replay nrf52840 swap-move, phase swap, before op 40:/);
    expect(r.stdout).toMatch(/recovery boot: booted slot0/);
    expect(r.stdout).toMatch(/no violation/);
  });

  it('bad flags: exit 2 with one line naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['sweep', ...SMALL, '--defect', 'no-such-defect'], new RegExp(`--defect no-such-defect: unknown.*${BOOT_DEFECTS.join(', ')}`)],
      [['sweep', ...SMALL, '--phase', 'sideways'], /--phase: expected one of swap, revert, all/],
      [['sweep', ...SMALL, '--phase', 'download'], /--phase download: needs a SCENARIO/],
      [['sweep', ...SMALL, '--strategy', 'swap-move', '--cut', 'x7'], /--cut: expected OP or OP:BLOCK/],
      [['sweep', ...SMALL, '--strategy', 'swap-move', '--cut', '7'], /--phase swap or --phase revert/],
      [['sweep', ...SMALL, '--strategy', 'swap-sideways'], /--strategy: expected one of/],
      [['sweep', ...SMALL, '--strategy', 'swap-offset'], /swap-offset is not modelled/],
      [['sweep', '--board', 'nrf9160dk', '--strategy', 'swap-scratch', '--image-size', '16384'], /nrf9160dk.*scratch/],
      [['sweep', '--board', 'no-such-board'], /no-such-board/],
      [['sweep', '--board', 'nrf52840', '--image-size', '0x1000000'], /--image-size 16777216: .*at most \d+ bytes/],
      [['sweep', '--board', 'nrf52840', '--image-size', 'big'], /--image-size: expected a number/],
      [['sweep', ...SMALL, '--image-size', '4096'], /--image-size: given 2 times/],
      [['sweep', ...SMALL, '--write-size', '3'], /write size|writeSize|--write-size/i],
      [['sweep', ...SMALL, '--erase-value', '7'], /--erase-value: expected 0 or 0xff/],
      [['sweep', ...SMALL, '--multi-cut', '-1'], /--multi-cut/],
      [['sweep', ...SMALL, '--board', 'k64f'], /--board: given 2 times/],
      [['sweep', '--matrix', '--defect', 'copy-done-early'], /--defect cannot be combined with --matrix/],
      [['sweep', '--matrix', '--board', 'no-such-board'], /no-such-board/],
      [['sweep', 'scenarios/no-such.yaml'], /scenarios\/no-such\.yaml: cannot read the scenario file/],
      [['sweep', HAPPY, '--board', 'k64f'], /--board: not with a SCENARIO/],
      [['sweep', HAPPY, '--phase', 'sideways'], /--phase: expected one of download, stage, swap, confirm, revert, all; got sideways/],
      [['sweep', HAPPY, '--defect', 'nope'], /--defect nope: unknown; bootloader defects: .*; agent defects: confirm-before-self-test/],
      [['sweep', HAPPY, '--cut', 'x'], /--cut: expected OP or OP:BLOCK/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('--matrix restricted by --board, --strategy, --write-size, --erase-value: a table and the skipped combinations', async () => {
    const args = ['sweep', '--matrix', ...SMALL, '--strategy', 'swap-move', '--strategy', 'swap-offset', '--write-size', '4', '--write-size', '8', '--erase-value', '0xff', '--phase', 'swap'];
    const r = await runCli([...args, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as {
      cases: number;
      casesPerSecond: number;
      violations: ViolationJson[];
      reports: (SweepJson & { writeSize: number })[];
      skipped: { board: string; strategy: string; writeSize: number; why: string }[];
    };
    expect(json.reports.map((x) => [x.board, x.strategy, x.writeSize])).toEqual([
      ['nrf52840', 'swap-move', 4],
      ['nrf52840', 'swap-move', 8],
    ]);
    expect(json.cases).toBe(json.reports.reduce((n, x) => n + x.cases, 0));
    expect(json.casesPerSecond).toBeGreaterThan(0);
    expect(json.violations).toEqual([]);
    expect(json.skipped).toHaveLength(2);
    expect(json.skipped[0]).toMatchObject({ board: 'nrf52840', strategy: 'swap-offset' });
    expect(json.skipped[0]!.why).toMatch(/swap-offset is not modelled/);

    const text = await runBin(args);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^board +strategy +ws +erase +cases +cases\/s +violations/);
    expect(text.stdout).toMatch(/nrf52840 +swap-move +8 +0xff +\d+/);
    expect(text.stdout).toMatch(/2 configurations, \d+ cases/);
    expect(text.stdout).toMatch(/skipped 2:\n +nrf52840 swap-offset ws 4 ev 0xff: swap-offset is not modelled/);
    expect(text.stderr).toBe(''); // not a terminal: no progress line
  });

  it('progress: one line updated in place with \\r when stderr is a terminal, nothing otherwise', async () => {
    const had = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
    try {
      const r = await runCli(['sweep', ...SMALL, '--strategy', 'swap-move', '--phase', 'swap']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/\rsweep nrf52840 swap-move swap: \d+\/\d+ cases/);
      expect(r.stderr).not.toContain('\n');
      expect(r.stderr.endsWith('\r')).toBe(true); // the line is cleared before the report
    } finally {
      if (had) Object.defineProperty(process.stderr, 'isTTY', had);
      else delete (process.stderr as { isTTY?: boolean }).isTTY;
    }
  });

  it('the built executable: --help names the options; a defect exits 1', async () => {
    const help = await runBin(['sweep', '--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--board', '--strategy', '--image-size', '--phase', '--torn', '--multi-cut', '--write-size', '--erase-value', '--matrix', '--defect', '--cut', '--seed']) {
      expect(help.stdout).toContain(flag);
    }
    const r = await runBin(['sweep', ...SMALL, '--strategy', 'swap-move', '--defect', 'status-before-copy', '--phase', 'swap']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/violations? in \d+ cases?:/);
    expect(r.stdout).toMatch(/replay: ota-sim sweep --board nrf52840 --strategy swap-move --image-size 16384 --phase swap --defect status-before-copy --seed 1 --cut \d+/);
    expect(r.stderr).toMatch(/^ota-sim: sweep: \d+ violations?/);
  });

  it('SCENARIO: a whole-update sweep over the network; a seeded agent defect exits 1 and its replay command reproduces it', async () => {
    const ok = await runCli(['sweep', HAPPY, '--phase', 'download', '--to-op', '4', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const json = JSON.parse(ok.stdout) as { cases: number; casesPerSecond: number; violations: unknown[]; opsByPhase: Record<string, number>; phase: string; name: string };
    expect(json).toMatchObject({ name: 'happy-swap-move', phase: 'download', cases: 5, violations: [] });
    expect(json.casesPerSecond).toBeGreaterThan(0);
    expect(json.opsByPhase['download']).toBeGreaterThan(30);

    const bad = await runCli(['sweep', HAPPY, '--phase', 'download', '--from-op', '30', '--to-op', '32', '--defect', 'progress-never-persisted', '--json']);
    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    const found = JSON.parse(bad.stdout) as { violations: { invariant: string; opIndex: number | null; replay: string }[] };
    const v = found.violations.find((x) => x.opIndex !== null)!;
    expect(v.invariant).toBe('bounded-effort');
    expect(v.replay).toBe(`ota-sim sweep ${HAPPY} --phase download --defect progress-never-persisted --seed 1 --cut ${v.opIndex}`);
    const replay = await runCli(argsOf(v.replay));
    expect(replay.code, replay.stderr).toBe(1);
    expect(replay.stdout).toMatch(/1 cases? in [\d.]+ s/);
    expect(replay.stdout).toMatch(/the case, step by step:\n +clean run: \d+ flash ops/);
    expect(replay.stdout).toMatch(/bounded-effort: device .* wrote \d+ download bytes to slot1 \(limit \d+\)/);
    expect(replay.stdout).toContain(`replay: ${v.replay}`);
  });
});
