/**
 * report.html in a real browser (Debian's Chromium through playwright-core, one launch for the
 * file): it renders without errors and without any network request, each timeline has one lane
 * per device, a failed scenario is visibly marked in red, the statechart has a node per agent
 * state; and junit.xml parses with the browser's XML parser.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { agentStateNames } from '../../src/agent/index.js';
import { writeReports } from '../../src/report/index.js';
import { mixedRun, NASTY_NAME } from './fixture.js';

// Browser globals used inside page.evaluate callbacks (this project's tsconfig has no DOM lib).
declare const getComputedStyle: (e: unknown) => { backgroundColor: string; borderLeftColor: string; borderTopColor: string };
declare class DOMParser {
  parseFromString(text: string, type: string): { getElementsByTagName(name: string): ArrayLike<{ getAttribute(n: string): string | null; textContent: string | null }> };
}
interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}
/* getBBox's SVGRect does not serialize out of the page: the callbacks copy its numbers. */

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`skipping the report browser test: ${CHROMIUM} is missing (apt-get install chromium)`);

/** "rgb(198, 40, 40)" → true when clearly red. */
function reddish(css: string): boolean {
  const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(css);
  if (!m) return false;
  const [r, g, b] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return r >= 150 && g <= 110 && b <= 110;
}

describe.skipIf(!hasChromium)('report.html in headless Chromium', () => {
  const run = mixedRun();
  let dir = '';
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const requests: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ota-sim-report-html-'));
    const paths = await writeReports(run, dir);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'], timeout: 60_000 });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(paths.html).href, { waitUntil: 'load', timeout: 60_000 });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('renders: no console errors, no page errors, and no network request at all', async () => {
    expect(await page.locator('header.top h1').textContent()).toBe('ota-sim run report');
    expect(await page.title()).toBe('ota-sim report: 2 passed, 1 failed');
    expect(consoleErrors).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(requests.length).toBeGreaterThan(0); // the page itself
    for (const url of requests) expect(url).toMatch(/^(file|data|about):/);
  });

  test('each timeline has exactly one lane per device, drawn with its marks', async () => {
    const sections = page.locator('section.scenario');
    expect(await sections.count()).toBe(run.scenarios.length);
    for (const s of run.scenarios) {
      const section = page.locator(`section.scenario[data-scenario="${s.name.replace(/["\\]/g, '\\$&')}"]`);
      expect(await section.count()).toBe(1);
      const lanes = section.locator('svg.timeline [data-lane]');
      expect(await lanes.count()).toBe(s.devices.length);
      expect(await lanes.evaluateAll((els) => els.map((e) => e.getAttribute('data-lane')))).toEqual(s.devices.map((d) => d.id));
      // lanes are laid out one under the other, with real height
      const boxes = await lanes.evaluateAll((els) => els.map((e) => { const b = (e as unknown as { getBBox(): Box }).getBBox(); return { y: b.y, h: b.height }; }));
      for (const b of boxes) expect(b.h).toBeGreaterThan(10);
    }
    // the <use> marks resolve to the page's glyphs (a power cut has a visible box)
    const cut = page.locator('section.scenario.failed svg.timeline use.power-cut').first();
    const box = await cut.evaluate((e) => { const b = (e as unknown as { getBBox(): Box }).getBBox(); return { height: b.height }; });
    expect(box.height).toBeGreaterThan(20);
  });

  test('the failed scenario is listed first and visibly marked in red', async () => {
    const first = page.locator('section.scenario').first();
    expect(await first.getAttribute('class')).toMatch(/\bfailed\b/);
    expect(await first.getAttribute('data-scenario')).toBe(NASTY_NAME);
    const badge = first.locator('.badge.failed');
    expect(await badge.isVisible()).toBe(true);
    expect(await badge.textContent()).toBe('FAILED');
    expect(reddish(await badge.evaluate((e) => getComputedStyle(e).backgroundColor))).toBe(true);
    const banner = first.locator('.banner.failed');
    expect(await banner.isVisible()).toBe(true);
    expect(reddish(await banner.evaluate((e) => getComputedStyle(e).borderLeftColor))).toBe(true);
    expect(await banner.textContent()).toContain(run.scenarios[1]?.replay ?? '?');
    expect(reddish(await first.evaluate((e) => getComputedStyle(e).borderTopColor))).toBe(true);
    // passed ones are not red
    const passed = page.locator('section.scenario.passed .badge').first();
    expect(reddish(await passed.evaluate((e) => getComputedStyle(e).backgroundColor))).toBe(false);
    // the anchor at the top leads to it
    const href = await page.locator('#failed a').first().getAttribute('href');
    expect(href).toBe(`#${await first.getAttribute('id')}`);
  });

  test('"show failed scenarios only" hides the passed ones', async () => {
    await page.locator('#only-failed').check();
    expect(await page.locator('section.scenario.passed').first().isVisible()).toBe(false);
    expect(await page.locator('section.scenario.failed').isVisible()).toBe(true);
    await page.locator('#only-failed').uncheck();
    expect(await page.locator('section.scenario.passed').first().isVisible()).toBe(true);
  });

  test('the statechart has a node per agent state and arrows between them', async () => {
    const nodes = page.locator('svg.statechart [data-state]');
    expect(await nodes.evaluateAll((els) => els.map((e) => e.getAttribute('data-state')))).toEqual(agentStateNames());
    const boxes = await nodes.evaluateAll((els) => els.map((e) => { const b = (e as unknown as { getBBox(): Box }).getBBox(); return { x: b.x, y: b.y, width: b.width, height: b.height }; }));
    for (const b of boxes) expect(b.width).toBeGreaterThan(50);
    // no two nodes overlap
    for (let i = 0; i < boxes.length; i++)
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i];
        const b = boxes[j];
        if (!a || !b) continue;
        const overlap = a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
        expect(overlap, `nodes ${i} and ${j} overlap`).toBe(false);
      }
    expect(await page.locator('svg.statechart .edge').count()).toBeGreaterThan(20);
  });

  test('junit.xml parses with the browser XML parser and keeps the names', async () => {
    const xml = await readFile(join(dir, 'junit.xml'), 'utf8');
    const parsed = await page.evaluate((text) => {
      const doc = new DOMParser().parseFromString(text, 'application/xml');
      return {
        errors: doc.getElementsByTagName('parsererror').length,
        suites: Array.from(doc.getElementsByTagName('testsuite')).map((s) => s.getAttribute('name')),
        cases: Array.from(doc.getElementsByTagName('testcase')).map((c) => c.getAttribute('name')),
        failure: doc.getElementsByTagName('failure')[0]?.textContent ?? '',
      };
    }, xml);
    expect(parsed.errors).toBe(0);
    expect(parsed.suites).toEqual(['ota-sim']);
    expect(parsed.cases).toEqual(run.scenarios.map((s) => s.name));
    expect(parsed.failure).toContain(run.scenarios[1]?.violations[0]?.replay ?? '?');
  });
});
