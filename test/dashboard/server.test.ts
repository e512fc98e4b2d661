/**
 * The dashboard at the HTTP level, from node: the page is self-contained, /snapshot.json, the
 * SSE stream (history replay, live snapshots, heartbeats, framing parsed by hand), the client
 * cap, dropping a client that stops reading, close(), and the user-facing errors.
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { startDashboard, type Dashboard, type DashboardOptions } from '../../src/dashboard/index.js';
import { EnvironmentError, InputError } from '../../src/errors.js';
import { openEvents, snapshot, type SseReader } from './helpers.js';

const open: Dashboard[] = [];
const readers: SseReader[] = [];
const sockets: Socket[] = [];

async function start(options: Partial<DashboardOptions> = {}): Promise<Dashboard> {
  const d = await startDashboard({ port: 0, ...options });
  open.push(d);
  return d;
}

async function events(d: Dashboard): Promise<SseReader> {
  const { sse } = await openEvents(d.url);
  readers.push(sse);
  return sse;
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const r of readers.splice(0)) await r.cancel();
  for (const d of open.splice(0)) await d.close();
});

/** Wait (bounded, real time) until cond holds. */
async function until(cond: () => boolean, what: string, timeout_ms = 20_000): Promise<void> {
  for (let waited_ms = 0; !cond(); waited_ms += 10) {
    if (waited_ms > timeout_ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('dashboard over HTTP', () => {
  test('the page is one self-contained document: no URL to anything outside it, title escaped', async () => {
    const d = await start({ title: '<b>fleet & "co"</b>' });
    expect(d.url).toBe(`http://127.0.0.1:${d.port}/`);
    expect(d.port).toBeGreaterThan(0);
    const res = await fetch(d.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('content-security-policy')).toContain("connect-src 'self'");
    const html = await res.text();
    expect(html.startsWith('<!doctype html>')).toBe(true);
    // The SVG namespace is a name, never fetched; nothing else may look like a URL.
    const ns = 'http://www.w3.org/2000/svg';
    expect(html.split(ns).length - 1).toBe(1);
    const rest = html.split(ns).join('');
    expect(rest).not.toMatch(/[a-z][a-z0-9+.-]*:\/\//i);
    expect(rest).not.toMatch(/["'(=]\s*\/\/[a-z0-9]/i); // protocol-relative
    expect(rest).not.toMatch(/@import|url\(/i);
    expect(rest).not.toMatch(/\ssrc\s*=/i);
    const hrefs = [...rest.matchAll(/href\s*=\s*"([^"]*)"/gi)].map((m) => m[1]);
    expect(hrefs).toEqual(['data:,']);
    // the EventSource is relative to the page
    expect(rest).toContain("new EventSource('events')");
    expect(html).toContain('<title>&lt;b&gt;fleet &amp; &quot;co&quot;&lt;/b&gt;</title>');
    expect(html).not.toContain('<b>fleet');
    // /index.html is the same page; HEAD has no body
    expect(await (await fetch(new URL('index.html', d.url))).text()).toBe(html);
    const head = await fetch(d.url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  test('/snapshot.json is 204 before the first snapshot, then the latest one', async () => {
    const d = await start();
    const empty = await fetch(new URL('snapshot.json', d.url));
    expect(empty.status).toBe(204);
    const first = snapshot(1, 10, 0);
    const second = snapshot(2, 10, 3, { failing: [{ id: 'dev-3', reason: 'verify', detail: 'bad signature', since_ms: 1500 }], failingTotal: 1 });
    d.publish(first);
    d.publish(second);
    const res = await fetch(new URL('snapshot.json', d.url));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual(second);
  });

  test('SSE: a late client gets hello, the kept history (bounded), the latest snapshot, then live ones', async () => {
    const d = await start({ history: 5 });
    for (let i = 1; i <= 8; i++) d.publish(snapshot(i, 10, i, i === 8 ? { failing: [{ id: 'dev-9', reason: 'timeout', detail: 'no ack', since_ms: 7000 }] } : {}));
    expect(d.stats()).toMatchObject({ kept: 5, published: 8, clients: 0 });

    const { res, sse } = await openEvents(d.url);
    readers.push(sse);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');

    const hello = await sse.next();
    expect(hello?.event).toBe('hello');
    expect(JSON.parse(hello?.data ?? '')).toMatchObject({ kept: 5, history_max: 5 });
    expect(sse.retries).toEqual([2000]);
    // history: the last 5 points, oldest first, compact (the failing list reduced to its count)
    for (let i = 4; i <= 8; i++) {
      const p = await sse.next();
      expect(p?.event).toBe('point');
      expect(p?.id).toBe(String(i));
      const point = JSON.parse(p?.data ?? '') as Record<string, unknown>;
      expect(point).toMatchObject({ seq: i, at_ms: i * 1000, updated: i, devices: 10, failing: i === 8 ? 1 : 0 });
    }
    const latest = await sse.next();
    expect(latest?.event).toBe('snapshot');
    expect(latest?.id).toBe('8');
    expect(JSON.parse(latest?.data ?? '')).toMatchObject({ seq: 8, updated: 8, failing: [{ id: 'dev-9', reason: 'timeout', detail: 'no ack', since_ms: 7000 }] });
    expect(d.stats().clients).toBe(1);

    // live: every published snapshot, in order
    d.publish(snapshot(9, 10, 9));
    d.publish(snapshot(10, 10, 10, { done: true }));
    const live9 = await sse.next();
    const live10 = await sse.next();
    expect([live9?.event, live9?.id, live10?.event, live10?.id]).toEqual(['snapshot', '9', 'snapshot', '10']);
    expect(JSON.parse(live10?.data ?? '')).toMatchObject({ seq: 10, updated: 10, done: true, failing: [] });
    expect(d.stats().kept).toBe(5);
  });

  test('SSE: heartbeat comments keep an idle stream alive', async () => {
    const d = await start({ heartbeat_ms: 20 });
    const sse = await events(d);
    expect((await sse.next())?.event).toBe('hello');
    expect(await sse.nextComment()).toBe('heartbeat');
    // still a working stream afterwards
    d.publish(snapshot(1, 3, 0));
    expect((await sse.next())?.event).toBe('snapshot');
  });

  test('client cap: the extra stream gets 503, and a freed slot can be taken again', async () => {
    const d = await start({ max_clients: 2 });
    const a = await events(d);
    await events(d);
    const extra = await fetch(new URL('events', d.url));
    expect(extra.status).toBe(503);
    expect(extra.headers.get('retry-after')).toBe('5');
    expect(await extra.text()).toContain('at most 2');
    expect(d.stats()).toMatchObject({ clients: 2, refused: 1 });
    await a.cancel();
    await until(() => d.stats().clients === 1, 'the cancelled stream to be released');
    const again = await fetch(new URL('events', d.url));
    expect(again.status).toBe(200);
    await again.body?.cancel();
  });

  test('a client that stops reading is dropped; publish() never waits for it; a reading client stays', async () => {
    const d = await start({ client_buffer_bytes: 256 * 1024 });
    const good = await events(d);
    expect((await good.next())?.event).toBe('hello');
    // A raw client that asks for the stream and then never reads from its socket.
    const bad = connect({ host: '127.0.0.1', port: d.port });
    sockets.push(bad);
    await new Promise<void>((resolve, reject) => {
      bad.once('connect', resolve);
      bad.once('error', reject);
    });
    bad.on('error', () => undefined); // the server resets it when dropping it
    bad.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\n\r\n`);
    bad.pause();
    await until(() => d.stats().clients === 2, 'the raw client to be registered');

    // ~260 KB per snapshot: 200 failing rows with long details.
    const failing = Array.from({ length: 200 }, (_, i) => ({ id: `dev-${i}`, reason: 'verify', detail: 'x'.repeat(1000), since_ms: i }));
    let published = 0;
    for (let i = 1; i <= 400 && d.stats().dropped === 0; i++) {
      d.publish(snapshot(i, 200, 0, { failing }));
      published = i;
      // the good client drains every snapshot before the next one
      const ev = await good.next();
      expect(ev?.id).toBe(String(i));
    }
    expect(d.stats().dropped).toBe(1);
    expect(d.stats().clients).toBe(1);
    expect(published).toBeGreaterThan(1);
    // the good client keeps getting snapshots
    d.publish(snapshot(published + 1, 200, 1));
    expect((await good.next())?.id).toBe(String(published + 1));
  });

  test('close() ends every stream, refuses new connections, and later publish() is a no-op', async () => {
    const d = await start();
    const a = await events(d);
    const b = await events(d);
    expect((await a.next())?.event).toBe('hello');
    expect((await b.next())?.event).toBe('hello');
    await d.close();
    expect(await a.next()).toBeNull();
    expect(await b.next()).toBeNull();
    expect(d.stats().clients).toBe(0);
    d.publish(snapshot(1, 1, 0));
    expect(d.stats().published).toBe(0);
    await expect(fetch(d.url)).rejects.toThrow();
    await d.close(); // idempotent
  });

  test('a port in use is an EnvironmentError (exit 3) that names the port', async () => {
    const d = await start();
    const err = await startDashboard({ port: d.port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as EnvironmentError).exitCode).toBe(3);
    expect((err as EnvironmentError).code).toBe('dashboard-port-in-use');
    expect((err as EnvironmentError).message).toContain(`port ${d.port}`);
    expect((err as EnvironmentError).message).toContain('already in use');
  });

  test('bad options are InputErrors (exit 2): non-loopback host, bad port, bad bounds', async () => {
    const bad: Partial<DashboardOptions>[] = [
      { host: '0.0.0.0' },
      { host: '192.168.1.10' },
      { host: 'example.com' },
      { port: -1 },
      { port: 70000 },
      { port: 1.5 },
      { history: 0 },
      { max_clients: 0 },
    ];
    for (const o of bad) {
      const err = await startDashboard({ port: 0, ...o }).catch((e: unknown) => e);
      expect(err, JSON.stringify(o)).toBeInstanceOf(InputError);
      expect((err as InputError).exitCode).toBe(2);
      expect((err as InputError).message).toMatch(/^dashboard: /);
    }
  });

  test('unknown routes 404, other methods 405, a foreign Host header 403', async () => {
    const d = await start();
    expect((await fetch(new URL('nope', d.url))).status).toBe(404);
    expect((await fetch(d.url, { method: 'POST', body: 'x' })).status).toBe(405);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: d.port, path: '/snapshot.json', headers: { host: 'attacker.example:80' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  test('published snapshots are bounded: 200 failing rows (total kept), 64 series per chart', async () => {
    const d = await start();
    const failing = Array.from({ length: 250 }, (_, i) => ({ id: `dev-${i}`, reason: 'r', detail: 'd'.repeat(5000), since_ms: i }));
    const byVersion: Record<string, number> = {};
    for (let i = 0; i < 100; i++) byVersion[`1.0.${i}`] = i + 1;
    d.publish({ ...snapshot(1, 5050, 0), byVersion, failing });
    const got = (await (await fetch(new URL('snapshot.json', d.url))).json()) as { failing: { detail: string }[]; failingTotal: number; byVersion: Record<string, number> };
    expect(got.failing).toHaveLength(200);
    expect(got.failingTotal).toBe(250);
    expect(got.failing[0]?.detail.length).toBe(1000);
    expect(Object.keys(got.byVersion)).toHaveLength(64);
    // nothing is lost from the sum: the smallest versions are folded into "(other)"
    expect(Object.values(got.byVersion).reduce((a, b) => a + b, 0)).toBe(5050);
    expect(got.byVersion['1.0.99']).toBe(100);
    expect(got.byVersion['(other)']).toBeGreaterThan(0);
  });
});
