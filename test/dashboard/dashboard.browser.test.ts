/**
 * The live dashboard in a real browser (Debian's Chromium through playwright-core): snapshots
 * published from the test reach the page over SSE; the charts gain points and series, the totals
 * update, bricked > 0 turns red, a failing device appears in the table (its text not parsed as
 * HTML), a late browser gets the whole history, and nothing is requested outside the dashboard.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDashboard, type Dashboard } from '../../src/dashboard/index.js';
import { snapshot } from './helpers.js';

// Browser globals used inside page callbacks (this project's tsconfig has no DOM lib).
declare const document: { getElementById(id: string): { getAttribute(n: string): string | null } | null };
declare const getComputedStyle: (e: unknown) => { color: string };

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`skipping the dashboard browser test: ${CHROMIUM} is missing (apt-get install chromium)`);

/** "rgb(198, 40, 40)" → true when clearly red. */
function reddish(css: string): boolean {
  const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(css);
  if (!m) return false;
  const [r, g, b] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return r >= 150 && g <= 110 && b <= 110;
}

const WAIT = { timeout: 30_000 };

describe.skipIf(!hasChromium)('the live dashboard in headless Chromium', () => {
  let dash: Dashboard;
  let browser: Browser;
  let page: Page;
  let origin = '';
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const requests: string[] = [];

  async function openPage(): Promise<Page> {
    const p = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    p.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(`${m.type()}: ${m.text()}`);
    });
    p.on('pageerror', (e) => pageErrors.push(e.message));
    p.on('request', (r) => requests.push(r.url()));
    await p.goto(dash.url, { waitUntil: 'load', timeout: 60_000 });
    return p;
  }

  /** The number of points a chart has drawn (its data-points attribute). */
  async function chartPoints(p: Page, id: string): Promise<number> {
    return Number(await p.locator(`#${id}`).getAttribute('data-points'));
  }

  async function waitForPoints(p: Page, n: number): Promise<void> {
    await p.waitForFunction(
      (want) => document.getElementById('chart-state')?.getAttribute('data-points') === String(want) && document.getElementById('chart-version')?.getAttribute('data-points') === String(want),
      n,
      WAIT,
    );
  }

  beforeAll(async () => {
    dash = await startDashboard({ port: 0, title: 'fleet of 10' });
    origin = `http://127.0.0.1:${dash.port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'], timeout: 60_000 });
    page = await openPage();
    await page.waitForFunction(() => document.getElementById('status')?.getAttribute('data-status') === 'live', undefined, WAIT);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await dash?.close();
  });

  test('before any snapshot: connected, empty charts', async () => {
    expect(await page.title()).toBe('fleet of 10');
    expect(await chartPoints(page, 'chart-state')).toBe(0);
    expect(await page.locator('#chart-state text.empty').count()).toBe(1);
    expect(await page.locator('#failing tbody tr').count()).toBe(0);
    expect(await page.locator('#no-failing').isVisible()).toBe(true);
  });

  test('published snapshots become chart points, series and totals', async () => {
    dash.publish(snapshot(1, 10, 0));
    await waitForPoints(page, 1);
    expect(await page.locator('#devices').textContent()).toBe('10');
    expect(await page.locator('#updated-pct').textContent()).toBe('0.0%');
    expect(await page.locator('#chart-state path.series').evaluateAll((els) => els.map((e) => e.getAttribute('data-series')))).toEqual(['idle', 'downloading']);
    expect(await page.locator('#chart-version path.series').evaluateAll((els) => els.map((e) => e.getAttribute('data-series')))).toEqual(['1.0.0']);

    for (let i = 2; i <= 5; i++) dash.publish(snapshot(i, 10, i));
    await waitForPoints(page, 5);
    expect(await page.locator('#updated-pct').textContent()).toBe('50.0%');
    expect(await page.locator('#updated').textContent()).toBe('5 of 10');
    expect(await page.locator('#chart-version path.series').evaluateAll((els) => els.map((e) => e.getAttribute('data-series')))).toEqual(['1.0.0', '1.1.0']);
    // the legend shows the current count per series
    expect(await page.locator('#legend-version li[data-series="1.1.0"] .n').textContent()).toBe('5');
    // an area has real extent: the stacked areas together fill the plot's height
    const heights = await page.locator('#chart-state path.series').evaluateAll((els) => els.map((e) => (e as unknown as { getBBox(): { height: number; width: number } }).getBBox()).map((b) => ({ h: b.height, w: b.width })));
    for (const b of heights) expect(b.w).toBeGreaterThan(500);
    expect(heights.reduce((a, b) => a + b.h, 0)).toBeGreaterThan(150);
    expect(await page.locator('#chart-state text.empty').count()).toBe(0);
    // not red while nothing is bricked
    expect(reddish(await page.locator('#bricked').evaluate((e) => getComputedStyle(e).color))).toBe(false);
  });

  test('a failing device appears in the table, its text shown literally', async () => {
    dash.publish(snapshot(6, 10, 6, { failing: [{ id: 'dev-0007', reason: 'verify-failed', detail: 'signature <b>mismatch</b>', since_ms: 125_000 }] }));
    const row = page.locator('#failing tbody tr[data-device="dev-0007"]');
    await row.waitFor(WAIT);
    expect(await row.locator('td').allTextContents()).toEqual(['dev-0007', 'verify-failed', 'signature <b>mismatch</b>', '2 min 05 s']);
    expect(await row.locator('b').count()).toBe(0);
    expect(await page.locator('#failing-count').textContent()).toBe('1');
    expect(await page.locator('#no-failing').isVisible()).toBe(false);
    // it recovers: the next snapshot without it empties the table
    dash.publish(snapshot(7, 10, 7));
    await page.locator('#failing tbody tr').first().waitFor({ state: 'detached', ...WAIT });
    expect(await page.locator('#failing-count').textContent()).toBe('0');
  });

  test('bricked > 0 is shown in red', async () => {
    dash.publish(snapshot(8, 10, 7, { bricked: 1 }));
    await page.waitForFunction(() => document.getElementById('bricked-tile')?.getAttribute('class') === 'tile bad', undefined, WAIT);
    expect(await page.locator('#bricked').textContent()).toBe('1');
    expect(reddish(await page.locator('#bricked').evaluate((e) => getComputedStyle(e).color))).toBe(true);
  });

  test('a late browser sees the whole history at once; done shows finished', async () => {
    dash.publish(snapshot(9, 10, 10, { done: true }));
    await waitForPoints(page, 9);
    await page.waitForFunction(() => document.getElementById('status')?.getAttribute('data-status') === 'finished', undefined, WAIT);
    const late = await openPage();
    await waitForPoints(late, 9);
    expect(await late.locator('#updated-pct').textContent()).toBe('100.0%');
    expect(await late.locator('#chart-version path.series').count()).toBe(2);
    await late.close();
  });

  test('the page reconnects by itself when the server comes back, and starts over from its history', async () => {
    // A second dashboard of its own (this page's connection errors are expected, so not recorded).
    const first = await startDashboard({ port: 0 });
    const port = first.port;
    const p = await browser.newPage();
    let second: Dashboard | null = null;
    try {
      await p.goto(first.url, { waitUntil: 'load', timeout: 60_000 });
      for (let i = 1; i <= 3; i++) first.publish(snapshot(i, 4, i));
      await waitForPoints(p, 3);
      await first.close();
      await p.waitForFunction(() => document.getElementById('status')?.getAttribute('data-status') === 'reconnecting', undefined, WAIT);
      second = await startDashboard({ port });
      second.publish(snapshot(1, 4, 1));
      await waitForPoints(p, 1);
      await p.waitForFunction(() => document.getElementById('status')?.getAttribute('data-status') === 'live', undefined, WAIT);
      expect(await p.locator('#updated-pct').textContent()).toBe('25.0%');
    } finally {
      await p.close();
      await first.close();
      await second?.close();
    }
  }, 90_000);

  test('no console or page errors, and no request leaves the dashboard', () => {
    expect(consoleErrors).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(requests).toContain(origin);
    expect(requests).toContain(`${origin}events`);
    for (const url of requests) expect(url.startsWith(origin) || url.startsWith('data:')).toBe(true);
  });
});
