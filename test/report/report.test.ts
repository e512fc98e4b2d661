/**
 * Reports (src/report): console table, progress bar, JUnit XML, results.json, the HTML page's
 * static content, and writeReports. The HTML in a real browser is in html.browser.test.ts.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { agentStateNames } from '../../src/agent/index.js';
import { EnvironmentError } from '../../src/errors.js';
import { chartModel, createProgress, renderConsole, renderHtml, renderJson, renderJUnit, writeReports } from '../../src/report/index.js';
import { laneCapFor, renderTimeline } from '../../src/report/timeline.js';
import { INVARIANTS, type RunResult } from '../../src/scenario/result.js';
import { allPassingRun, bigRun, failingScenario, mixedRun, NASTY_DEVICE, NASTY_NAME, passingScenario } from './fixture.js';
import { unescapeXml, xmlProblems } from './xml-check.js';

/** The mixed run with ASCII-only names, for the "plain ASCII" checks. */
function asciiRun(): RunResult {
  const run = mixedRun();
  const failing = run.scenarios[1];
  if (failing) {
    failing.name = 'cut during swap';
    const dev = failing.devices[3];
    if (dev) dev.id = 'dev-d';
  }
  return run;
}

describe('renderConsole', () => {
  test('one row per scenario with result, devices, versions, faults, reboots and times; failures with replay; summary line', () => {
    const out = renderConsole(mixedRun(), { color: false });
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^RESULT\s+SCENARIO\s+DEVICES\s+FINAL VERSIONS\s+FAULTS\s+REBOOTS\s+SIM TIME\s+WALL$/);
    const rows = lines.filter((l) => /^(PASS|FAIL) {2}/.test(l));
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(/^PASS\s+happy path swap-scratch\s+3\s+1\.1\.0 x3\s+0\s+3\s+14\.0s\s+812ms$/);
    expect(rows[1]).toContain('FAIL');
    expect(rows[1]).toContain(NASTY_NAME);
    expect(rows[1]).toContain('1.0.0 x1, 1.1.0 x1, 1.1.0(test) x1, bricked x1');
    expect(rows[1]).toContain('50 (loss x43, power-cut x3, blackhole x1, flash-error x1, rebind x1, torn-write x1)');
    expect(rows[2]).toMatch(/^PASS\s+30% loss with jitter\s+2\s+1\.1\.0 x2\s+170 \(delay x120, loss x50\)\s+2\s+15\.0s\s+2\.2s$/);
    // the failure: one sentence, the scenario's replay, each violation and a differing replay
    const f = failingScenario();
    expect(out).toContain(`FAIL ${NASTY_NAME} (seed 42): ${f.failure}`);
    expect(out).toContain(`  replay: ${f.replay}`);
    expect(out).toContain('  - never-bricked (dev-a, op 1234, t=12.4s): slot0 holds');
    expect(out).toContain(`    replay: ${f.violations[0]?.replay}`);
    expect(lines[lines.length - 1]).toBe('2 passed, 1 failed');
  });

  test('wide characters count as two columns, so the columns stay aligned', () => {
    const rows = renderConsole(mixedRun(), { color: false }).split('\n').filter((l) => /^(PASS|FAIL) {2}/.test(l));
    const devicesEnd = (row: string): number => /^(PASS|FAIL)\s+.*?\s+\d+(?= {2}\d)/.exec(row)?.[0].length ?? -1;
    expect(devicesEnd(rows[0] ?? '')).toBeGreaterThan(0);
    // the failing scenario's name has two CJK characters: two code units fewer for the same columns
    expect(devicesEnd(rows[1] ?? '')).toBe(devicesEnd(rows[0] ?? '') - 2);
    expect(devicesEnd(rows[2] ?? '')).toBe(devicesEnd(rows[0] ?? ''));
  });

  test('color off: plain ASCII, no ANSI escapes, no trailing spaces', () => {
    const out = renderConsole(asciiRun(), { color: false });
    expect(out).toMatch(/^[\x20-\x7e\n]*$/);
    for (const line of out.split('\n')) expect(line).not.toMatch(/\s$/);
  });

  test('color on: ANSI colors and the × sign; still no trailing spaces', () => {
    const out = renderConsole(mixedRun(), { color: true });
    expect(out).toContain('\u001b[32mPASS\u001b[0m');
    expect(out).toContain('\u001b[31m\u001b[1mFAIL\u001b[0m');
    expect(out).toContain('1.1.0×3');
    for (const line of out.split('\n')) expect(line).not.toMatch(/ $/);
  });

  test('width: table lines are shortened to fit, with an ellipsis', () => {
    const out = renderConsole(asciiRun(), { color: false, width: 100 });
    const table = out.split('\n\n')[0] ?? '';
    for (const line of table.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
    expect(table).toContain('...');
    expect(renderConsole(asciiRun(), { color: false }).split('\n')[0]?.length).toBeGreaterThan(100);
  });

  test('all passed: no failure section', () => {
    const out = renderConsole(allPassingRun(), { color: false });
    expect(out).not.toContain('FAIL');
    expect(out.trimEnd().split('\n').pop()).toBe('2 passed, 0 failed');
  });
});

describe('createProgress', () => {
  class Sink extends Writable {
    text = '';
    isTTY = true;
    columns = 120;
    override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
      this.text += chunk.toString('utf8');
      done();
    }
    cursorTo(): boolean {
      return true;
    }
    clearLine(): boolean {
      return true;
    }
    moveCursor(): boolean {
      return true;
    }
  }

  test('enabled: a bar with n/total, failures so far and the running scenario', async () => {
    const sink = new Sink();
    const p = createProgress(3, { enabled: true, stream: sink });
    // cli-progress redraws on its own timer (at most 10 per second), so wait for the frame
    const frame = (text: string): Promise<void> => vi.waitFor(() => expect(sink.text).toContain(text), { timeout: 20_000, interval: 50 });
    p.start('happy path');
    await frame('0/3 | failed 0 | happy path');
    p.done('happy path', true);
    p.start('cut during swap');
    p.start('second at once');
    await frame('1/3 | failed 0 | cut during swap +1');
    p.done('cut during swap', false);
    await frame('2/3 | failed 1 | second at once');
    p.stop();
    p.stop(); // idempotent
    p.done('late', true); // ignored after stop
  });

  test('disabled: writes nothing', () => {
    const sink = new Sink();
    const p = createProgress(2, { enabled: false, stream: sink });
    p.start('a');
    p.done('a', false);
    p.stop();
    expect(sink.text).toBe('');
  });
});

describe('renderJUnit', () => {
  const xml = renderJUnit(mixedRun());

  test('is well-formed XML', () => {
    expect(xmlProblems(xml)).toEqual([]);
    // and the checker does catch what would break a CI parser
    expect(xmlProblems('<a><b></a>')).not.toEqual([]);
    expect(xmlProblems('<a x="1 & 2"/>')).not.toEqual([]);
    expect(xmlProblems('<a>x < y</a>')).not.toEqual([]);
  });

  test('one testsuite "ota-sim", one testcase per scenario, the seed in properties', () => {
    expect(xml.match(/<testsuite /g)).toHaveLength(1);
    expect(xml).toMatch(/<testsuite name="ota-sim" tests="3" failures="1" errors="0" skipped="0" time="4\.700">/);
    expect(xml.match(/<testcase classname="ota-sim\.scenarios" /g)).toHaveLength(3);
    expect(xml).toContain('<testcase classname="ota-sim.scenarios" name="happy path swap-scratch" time="0.812" file="scenarios/happy-swap-scratch.yaml">');
    expect(xml).toContain('<property name="seed" value="per-scenario"/>');
    expect(xml).toContain('<property name="seed" value="42"/>');
    expect(renderJUnit(allPassingRun())).toContain('<property name="seed" value="5"/>');
    expect(renderJUnit(allPassingRun())).not.toContain('<failure');
  });

  test('names with <>&"\' and non-ASCII are escaped and round-trip', () => {
    const m = /<testcase classname="ota-sim\.scenarios" name="([^"]*)" time="1\.534"/.exec(xml);
    expect(m?.[1]).toBe('cut &lt;during&gt; swap &amp; &quot;revert&quot; &apos;nrf52&apos; — ünïcødé ✓ 電源');
    expect(unescapeXml(m?.[1] ?? '')).toBe(NASTY_NAME);
  });

  test('a failure: message is the sentence; body has every violation and the replay commands', () => {
    const f = failingScenario();
    expect(xml.match(/<failure /g)).toHaveLength(1);
    const m = /<failure message="([^"]*)" type="ScenarioFailed">([^<]*)<\/failure>/.exec(xml);
    expect(unescapeXml(m?.[1] ?? '')).toBe(f.failure);
    const body = unescapeXml(m?.[2] ?? '');
    expect(body).toContain(`replay: ${f.replay}`);
    for (const v of f.violations) {
      expect(body).toContain(v.message);
      expect(body).toContain(`replay: ${v.replay}`);
    }
    expect(body).toContain('invariant failed: never-bricked');
    expect(body).toContain('expectation failed: group fleet: final version 1.1.0 confirmed');
  });

  test('characters XML cannot carry are replaced, not emitted', () => {
    const run = allPassingRun();
    const s = run.scenarios[0];
    if (s) s.name = 'bell\u0007 and nul\u0000 and lone \ud800 surrogate';
    const out = renderJUnit(run);
    expect(xmlProblems(out)).toEqual([]);
    expect(out).toContain('bell\ufffd and nul\ufffd and lone \ufffd surrogate');
  });
});

describe('renderJson', () => {
  test('is the RunResult itself, 2-space indented, with the run --json guarantee', () => {
    const run = mixedRun();
    const text = renderJson(run);
    expect(text.startsWith('{\n  "schema": "ota-sim/run-result@1",\n  "passed": 2,\n  "failed": 1,')).toBe(true);
    const parsed = JSON.parse(text) as RunResult;
    expect(parsed).toEqual(run);
    expect(parsed.passed).toBe(2);
    expect(parsed.failed).toBe(1);
    expect(parsed.scenarios.map((s) => ({ name: s.name, passed: s.passed, seed: s.seed }))).toEqual([
      { name: 'happy path swap-scratch', passed: true, seed: 1 },
      { name: NASTY_NAME, passed: false, seed: 42 },
      { name: '30% loss with jitter', passed: true, seed: 7 },
    ]);
  });

  test('stable key order whatever order the runner built the objects in', () => {
    const run = mixedRun();
    const reversed = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(reversed);
      if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversed(x)]));
      return v;
    };
    const shuffled = reversed(run) as RunResult;
    expect(Object.keys(shuffled)[0]).toBe('agentStates');
    expect(renderJson(shuffled)).toBe(renderJson(run));
    // schema order for known objects, alphabetical for open records
    const s = (JSON.parse(renderJson(shuffled)) as RunResult).scenarios[1];
    expect(Object.keys(s ?? {}).slice(0, 5)).toEqual(['name', 'file', 'description', 'seed', 'passed']);
    expect(Object.keys(s?.faultsInjected ?? {})).toEqual(['blackhole', 'flash-error', 'loss', 'power-cut', 'rebind', 'torn-write']);
    expect(Object.keys(s?.devices[0]?.timeline.find((e) => e.detail)?.detail ?? {})).toEqual([...Object.keys(s?.devices[0]?.timeline.find((e) => e.detail)?.detail ?? {})].sort());
  });

  test('an extra field the report does not know survives, after the known ones', () => {
    const run = { ...allPassingRun(), zzExtra: { b: 1, a: 2 } } as RunResult & { zzExtra: unknown };
    const parsed = JSON.parse(renderJson(run)) as Record<string, unknown>;
    expect(Object.keys(parsed).slice(-1)).toEqual(['zzExtra']);
    expect(Object.keys(parsed.zzExtra as object)).toEqual(['a', 'b']);
  });
});

describe('renderHtml (static checks; the browser test renders it)', () => {
  const run = mixedRun();
  const html = renderHtml(run);

  test('self-contained: no URL, no external script, style, image or font', () => {
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<(link|img|iframe|object|embed)\b/i);
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/url\((?!#)/); // only in-page references like url(#arrow)
    expect(html).not.toMatch(/@import|@font-face/);
  });

  test('summary header; failed scenarios listed first with anchors', () => {
    expect(html).toContain('<span>2 passed</span><span>1 failed</span>');
    const sections = [...html.matchAll(/<section class="scenario (passed|failed)" id="([^"]+)" data-scenario="([^"]*)"/g)];
    expect(sections.map((m) => m[1])).toEqual(['failed', 'passed', 'passed']);
    const failedId = sections[0]?.[2] ?? '';
    expect(html).toContain(`<div class="failed-list" id="failed"><h2>Failed scenarios</h2><ol><li><a href="#${failedId}">`);
    expect(unescapeXml(sections[0]?.[3] ?? '')).toBe(NASTY_NAME);
  });

  test('one lane per device in each timeline; every invariant listed; violations with replay', () => {
    const sections = html.split('<section class="scenario ').slice(1);
    const byName = new Map(run.scenarios.map((s) => [s.name, s]));
    for (const sec of sections) {
      const name = unescapeXml(/data-scenario="([^"]*)"/.exec(sec)?.[1] ?? '');
      const s = byName.get(name);
      expect(s).toBeDefined();
      const lanes = [...sec.matchAll(/data-lane="([^"]*)"/g)].map((m) => unescapeXml(m[1] ?? ''));
      expect(lanes).toEqual(s?.devices.map((d) => d.id));
      for (const inv of INVARIANTS) expect(sec).toContain(`data-invariant="${inv.id}"`);
    }
    expect(html).toContain(`data-lane="${NASTY_DEVICE.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;')}"`);
    for (const v of failingScenario().violations) expect(html).toContain(`<code class="replay">${v.replay.replace(/'/g, '&apos;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}</code>`);
  });

  test('the timeline draws every kind of event', () => {
    const svg = renderTimeline(failingScenario()).svg;
    for (const cls of ['agent-state', 'agent-state busy', 'flash-phase', 'power-cut', 'net-fault', 'net-fault window', 'fault', 'fault window', 'report', 'boot', 'reboot']) {
      expect(svg).toContain(`class="${cls}`);
    }
    expect(svg).toContain('<g class="server">');
    expect(svg).toMatch(/<text x="[\d.]+" y="\d+" class="tick">16s<\/text>/); // axis in simulated seconds
    expect(svg).toContain('cut at op 1234 (swap, sector 17)');
  });

  test('the statechart has a node per agent state and the transitions of the machine', () => {
    const model = chartModel();
    expect(model.states).toEqual(agentStateNames());
    expect(model.initial).toBe('booting');
    const has = (from: string, to: string, label: string): boolean => model.edges.some((e) => e.from === from && e.to === to && e.labels.includes(label));
    expect(has('idle', 'downloading', 'MANIFEST [offerAcceptable]')).toBe(true);
    expect(has('downloaded', 'verifying', 'always')).toBe(true);
    expect(has('testing', 'rollingBack', 'after rollbackTimeout')).toBe(true);
    expect(has('rebooting', 'booting', 'reboot')).toBe(true);
    expect(has('testing', 'testing.connecting', 'initial')).toBe(true);
    const nodes = [...html.matchAll(/<g class="state[^"]*" data-state="([^"]+)"/g)].map((m) => m[1]);
    expect(nodes).toEqual(agentStateNames());
    // a state the run names that the chart does not have is still drawn
    expect(chartModel(['legacyState']).states).toContain('legacyState');
  });

  test('size stays bounded for 16 scenarios × 20 devices × 500 events', () => {
    const big = bigRun(16, 20, 500);
    const page = renderHtml(big);
    const cap = laneCapFor(16 * 20);
    expect(cap).toBeLessThan(160);
    for (const lane of page.split('data-lane=').slice(1)) {
      const body = (lane.split('</g><g class="lane')[0] ?? '').split('</svg>')[0] ?? '';
      expect((body.match(/<(rect|use) /g) ?? []).length).toBeLessThanOrEqual(cap + 1); // + the lane background
    }
    expect(page.length).toBeLessThan(8_000_000);
    expect(page).toContain('drawn coarser');
  });
});

describe('writeReports', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ota-sim-report-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('writes junit.xml, results.json and report.html (mkdir -p), nothing else left behind', async () => {
    const run = mixedRun();
    const target = join(dir, 'a', 'b', 'reports');
    const paths = await writeReports(run, target);
    expect(paths).toEqual({ junit: join(target, 'junit.xml'), json: join(target, 'results.json'), html: join(target, 'report.html') });
    expect(await readFile(paths.junit, 'utf8')).toBe(renderJUnit(run));
    expect(await readFile(paths.json, 'utf8')).toBe(renderJson(run));
    expect(await readFile(paths.html, 'utf8')).toBe(renderHtml(run));
    expect((await readdir(target)).sort()).toEqual(['junit.xml', 'report.html', 'results.json']);
    // a second run replaces the files
    const again = await writeReports(allPassingRun(), target);
    expect(JSON.parse(await readFile(again.json, 'utf8'))).toMatchObject({ passed: 2, failed: 0 });
    expect((await readdir(target)).sort()).toEqual(['junit.xml', 'report.html', 'results.json']);
  });

  test('a directory that cannot be created is an EnvironmentError (exit 3) naming it', async () => {
    const file = join(dir, 'not-a-dir');
    await writeFile(file, 'x');
    const err = await writeReports(allPassingRun(), join(file, 'reports')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as EnvironmentError).exitCode).toBe(3);
    expect((err as Error).message).toContain(join(file, 'reports'));
  });

  test('a report path occupied by a directory fails without leaving temp files', async () => {
    const target = join(dir, 'blocked');
    await writeReports(passingRunOnly(), target);
    await rm(join(target, 'results.json'));
    await (await import('node:fs/promises')).mkdir(join(target, 'results.json', 'inner'), { recursive: true });
    const err = await writeReports(passingRunOnly(), target).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((await readdir(target)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});

function passingRunOnly(): RunResult {
  const run = allPassingRun();
  return { ...run, scenarios: [passingScenario()], passed: 1 };
}

describe('edge cases', () => {
  test('an empty run and a scenario without devices or events still render everywhere', () => {
    const empty: RunResult = { ...allPassingRun(), scenarios: [], passed: 0, failed: 0 };
    expect(renderConsole(empty, { color: false }).trimEnd().split('\n').pop()).toBe('0 passed, 0 failed');
    expect(xmlProblems(renderJUnit(empty))).toEqual([]);
    expect(renderHtml(empty)).toContain('<span>0 scenarios</span>');
    const bare = { ...passingScenario(), devices: [], simulated_ms: 0, faultsInjected: { loss: Number.NaN } };
    const run: RunResult = { ...allPassingRun(), scenarios: [bare], passed: 1 };
    expect(renderConsole(run, { color: false })).toContain('PASS    happy path swap-scratch');
    expect(renderHtml(run)).toContain('<svg class="timeline"');
    expect((JSON.parse(renderJson(run)) as RunResult).scenarios[0]?.faultsInjected).toEqual({ loss: null });
  });

  test('odd timelines (end before start, unsorted, unknown state names) draw without throwing', () => {
    const s = passingScenario();
    const d = s.devices[0];
    if (d) {
      d.timeline = [
        { at_ms: 5000, kind: 'flash-phase', label: 'swap', end_ms: 4000 },
        { at_ms: 100, kind: 'agent-state', label: 'someFutureState' },
        { at_ms: 50, kind: 'net-fault', label: 'blackhole', end_ms: 50 },
        { at_ms: 20_000, kind: 'power-cut', label: 'late' }, // past simulated_ms: the axis grows
      ];
    }
    const svg = renderTimeline(s).svg;
    expect(svg).toContain('someFutureState');
    expect(svg).toMatch(/class="tick">20s</);
  });
});
