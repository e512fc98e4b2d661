/**
 * `ota-sim fleet --dashboard PORT`: a real fleet (the built CLI, as users run it) publishes its
 * progress to the live dashboard — read over SSE from node and shown in headless Chromium — plus
 * the failing-device details, the publish throttle, a port in use (exit 3) and bad flags (exit 2).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { FleetSnapshot } from '../../src/dashboard/index.js';
import { dashboardPublisher, fleetSnapshot, MIN_INTERVAL_WALL_MS } from '../../src/fleet/live.js';
import { runFleet, type FleetProgress } from '../../src/fleet/fleet.js';
import { loadBoard } from '../../src/flash/index.js';
import { boardTlv, ed25519KeyPemFromSeed, parseSigningKeyPem, signImage } from '../../src/image/index.js';
import { Prng } from '../../src/prng.js';
import { ROOT, runBin, runCli } from '../helpers/cli.js';
import { openEvents } from '../dashboard/helpers.js';

// Browser globals used inside page callbacks (this project's tsconfig has no DOM lib).
declare const document: { getElementById(id: string): { getAttribute(n: string): string | null } | null };

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`skipping the fleet dashboard browser check: ${CHROMIUM} is missing (apt-get install chromium)`);

const TARGET = '1.1.0+0';
const FAST = ['--image-size', '16384', '--time-scale', '0.01', '--timeout-s', '120'];

interface Run {
  child: ChildProcess;
  url: Promise<string>;
  exit: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Start the built CLI; `url` resolves with the dashboard URL it prints (stdout, or stderr with --json). */
function startCli(args: string[]): Run {
  const child = spawn(process.execPath, [`${ROOT}bin/ota-sim.js`, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let found: (u: string) => void = () => undefined;
  let failed: (e: Error) => void = () => undefined;
  const url = new Promise<string>((resolve, reject) => {
    found = resolve;
    failed = reject;
  });
  const look = (text: string): void => {
    const m = /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(text);
    if (m) found(m[1]!);
  };
  child.stdout!.on('data', (b: Buffer) => look((stdout += b.toString('utf8'))));
  child.stderr!.on('data', (b: Buffer) => look((stderr += b.toString('utf8'))));
  const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('exit', (code) => {
      failed(new Error(`ota-sim exited (${code}) before printing the dashboard URL: ${stderr}`));
      resolve({ code, stdout, stderr });
    });
  });
  return { child, url, exit };
}

function stopCli(run: Run): void {
  if (run.child.exitCode === null && run.child.pid !== undefined) run.child.kill('SIGTERM');
}

describe('ota-sim fleet --dashboard', () => {
  it('10 devices in a worker thread: snapshots stream over SSE while the fleet runs; the last is done with every device on the release', async () => {
    // time scale 0.03: slow enough (a few wall seconds) that live snapshots come before the final one
    const run = startCli(['fleet', '--devices', '10', '--workers', '1', '--seed', '2', '--dashboard', '0', '--dashboard-linger-s', '120', '--json', '--image-size', '16384', '--time-scale', '0.03', '--timeout-s', '120']);
    try {
      const url = await run.url;
      const { sse } = await openEvents(url);
      const first = await sse.next(60_000);
      expect(first?.event).toBe('hello');
      const snapshots: FleetSnapshot[] = [];
      /** Everything seen, in order: replayed history points (compact), then live snapshots. */
      const series: Pick<FleetSnapshot, 'at_ms' | 'devices' | 'byState' | 'byVersion' | 'done'>[] = [];
      const ids: number[] = [];
      // bounded: the fleet publishes ~4 snapshots per second and ends within its 120 s timeout
      for (let i = 0; i < 5000; i++) {
        const ev = await sse.next(60_000);
        expect(ev, 'the stream ended before the final snapshot').not.toBeNull();
        if (ev!.event !== 'snapshot' && ev!.event !== 'point') continue;
        ids.push(Number(ev!.id));
        const s = JSON.parse(ev!.data) as FleetSnapshot;
        series.push(s);
        if (ev!.event !== 'snapshot') continue;
        snapshots.push(s);
        if (s.done) break;
      }
      // still served after the fleet ended (lingering)
      const latest = (await (await fetch(new URL('snapshot.json', url))).json()) as FleetSnapshot;
      expect(latest.done).toBe(true);
      stopCli(run); // SIGTERM ends the linger: the dashboard closes, the process exits normally
      expect(await sse.next(60_000)).toBeNull();
      const end = await run.exit;
      expect(end.code).toBe(0);
      expect(JSON.parse(end.stdout)).toMatchObject({ devices: 10, updated: 10, bricked: 0 });

      expect(series.length).toBeGreaterThanOrEqual(2);
      expect(series.some((s) => !s.done)).toBe(true);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      for (const s of series) {
        expect(s.devices).toBe(10);
        expect(Object.values(s.byState).reduce((a, b) => a + b, 0)).toBe(10);
        expect(Object.values(s.byVersion).reduce((a, b) => a + b, 0)).toBe(10);
      }
      for (let i = 1; i < series.length; i++) expect(series[i]!.at_ms).toBeGreaterThanOrEqual(series[i - 1]!.at_ms);
      const last = snapshots[snapshots.length - 1]!;
      expect(last.done).toBe(true);
      expect(last.byVersion).toEqual({ [TARGET]: 10 });
      // as the devices were before the fleet powered them off, not after
      expect(last.byState.off ?? 0).toBe(0);
      expect(last.updated).toBe(10);
      expect(last.bricked).toBe(0);
      expect(last.failing).toEqual([]);
      expect(last.at_ms).toBeGreaterThan(0);
      expect(last.at_ms).toBeCloseTo(last.wall_ms / 0.03, 0);
      expect(latest).toMatchObject({ updated: 10, byVersion: { [TARGET]: 10 } });
    } finally {
      stopCli(run);
    }
  }, 240_000);

  it.skipIf(!hasChromium)('headless Chromium: the page of a running fleet shows its totals and finishes', async () => {
    let browser: Browser | null = null;
    const run = startCli(['fleet', '--devices', '10', '--workers', '0', '--seed', '6', '--dashboard', '0', '--dashboard-linger-s', '120', ...FAST]);
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'], timeout: 60_000 });
      const url = await run.url;
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
      await page.waitForFunction(() => document.getElementById('devices') !== null && (document.getElementById('chart-state')?.getAttribute('data-points') ?? '0') !== '0', undefined, { timeout: 90_000 });
      expect(await page.locator('#devices').textContent()).toBe('10');
      await page.waitForFunction(() => document.getElementById('status')?.getAttribute('data-status') === 'finished', undefined, { timeout: 150_000 });
      expect(await page.locator('#updated').textContent()).toBe('10 of 10');
      expect(await page.locator('#updated-pct').textContent()).toBe('100.0%');
      expect(await page.locator('#bricked').textContent()).toBe('0');
      expect(await page.locator('#failing-count').textContent()).toBe('0');
      expect(await page.locator(`#legend-version li[data-series="${TARGET}"] .n`).textContent()).toBe('10');
      expect(Number(await page.locator('#chart-version').getAttribute('data-points'))).toBeGreaterThan(1);
      expect(errors).toEqual([]);
      stopCli(run);
      const end = await run.exit;
      expect(end.code).toBe(0);
      expect(end.stdout).toContain('updated 10/10 targeted');
    } finally {
      stopCli(run);
      await browser?.close();
    }
  }, 300_000);

  it('failing devices carry reason, detail and since; the final progress is done (an image the devices do not trust)', async () => {
    const board = loadBoard('nrf52840');
    const stranger = parseSigningKeyPem(ed25519KeyPemFromSeed(new Prng(98).bytes(32)));
    const img = signImage(new Prng(2).bytes(8192), { key: stranger, headerSize_bytes: 0x200, padHeader: true, slotSize_bytes: board.partitions.slot0.size, align: 4, version: '2.0.0', customTlvs: [boardTlv('nrf52840')] });
    const seen: FleetProgress[] = [];
    const r = await runFleet({ devices: 3, workers: 0, seed: 4, targetImage: img, timeScale: 0.01, imageSize_bytes: 16 * 1024, timeout_ms: 120_000, stall_ms: 3000 }, { onProgress: (p) => seen.push(p) });
    expect(r.updated).toBe(0);
    const last = seen[seen.length - 1]!;
    expect(seen.filter((p) => p.done)).toEqual([last]);
    expect(last.versions).toEqual({ '1.0.0+0': 3 });
    expect(last.failingTotal).toBe(3);
    expect(last.failing.map((f) => f.identity).sort()).toEqual(['fleet-000000', 'fleet-000001', 'fleet-000002']);
    for (const f of last.failing) {
      // refused by the agent, then reported to the server: the latest is shown, the earlier in detail
      expect(f.reason).toMatch(/^(refused|report)-/);
      expect(`${f.reason} ${f.detail}`).toContain('refused-');
      expect(f.detail).toContain('on 1.0.0+0');
      expect(f.since_ms).toBeGreaterThan(0);
      expect(f.since_ms).toBeLessThanOrEqual(last.at_ms);
    }
    const snap = fleetSnapshot(last);
    expect(snap).toMatchObject({ devices: 3, updated: 0, bricked: 0, done: true, failingTotal: 3, byVersion: { '1.0.0+0': 3 } });
    expect(snap.failing[0]).toEqual({ id: last.failing[0]!.identity, reason: last.failing[0]!.reason, detail: last.failing[0]!.detail, since_ms: last.failing[0]!.since_ms });
  }, 180_000);

  it('publishes at most one snapshot per 240 ms of wall time, and always the final one', () => {
    const published: FleetSnapshot[] = [];
    let now = 0;
    const onProgress = dashboardPublisher({ publish: (s) => published.push(s) }, () => now);
    const p = (done: boolean, updated: number): FleetProgress => ({
      devices: 2, expected: 2, updated, bricked: 0, states: { idle: 2 }, versions: { [TARGET]: updated, '1.0.0+0': 2 - updated }, failing: [], failingTotal: 0, poweredOn: 2, targetVersion: TARGET, elapsed_ms: now, wall_ms: now, at_ms: now * 100, done,
    });
    onProgress(p(false, 0));
    now += MIN_INTERVAL_WALL_MS - 1;
    onProgress(p(false, 1)); // too soon: dropped
    now += 1;
    onProgress(p(false, 1));
    now += 1;
    onProgress(p(true, 2)); // the final one is never dropped
    expect(published.map((s) => [s.updated, s.done])).toEqual([[0, false], [1, false], [2, true]]);
    expect(() => onProgress(p(false, 2))).toThrow(/after the final/);
  });

  it('exit 3 before any device starts when the port is in use; exit 2 on a bad --dashboard or --dashboard-linger-s', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await runCli(['fleet', '--devices', '5', '--workers', '0', '--dashboard', String(port), ...FAST]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
      expect(r.stdout).toBe('');
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    for (const [args, text] of [
      [['--dashboard', 'abc'], '--dashboard'],
      [['--dashboard', '70000'], '--dashboard'],
      [['--dashboard', '0', '--dashboard-linger-s', '-1'], '--dashboard-linger-s'],
      [['--dashboard-linger-s', '5'], '--dashboard-linger-s'],
    ] as const) {
      const r = await runCli(['fleet', '--devices', '5', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(text);
    }
    const help = await runBin(['fleet', '--help']);
    expect(help.stdout).toContain('--dashboard-linger-s');
    expect(help.stdout).toMatch(/--dashboard\s+serve a live dashboard/);
  }, 60_000);
});
