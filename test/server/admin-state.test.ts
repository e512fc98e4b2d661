/**
 * The admin HTTP API (routes, JSON shapes, errors for missing or wrong fields) and --state-dir
 * persistence: a restart gets everything back, and a torn last journal line (a crash mid-write)
 * is dropped without losing acknowledged entries.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UpdateServer } from '../../src/server/index.js';
import { DEVICES, image, startServer } from './helpers.js';

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function api(server: UpdateServer, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> & { error?: { code: string; message: string } } }> {
  const port = server.addresses().admin?.port ?? 0;
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    body: body === undefined ? undefined : body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('admin API', () => {
  it('uploads artifacts, creates and rolls releases back, lists devices; refuses bad calls with a reason', async () => {
    const server = await startServer();
    cleanup.push(() => server.close());
    const up = await api(server, 'POST', '/api/artifacts?package=main', image('1.0.0', 3000, 'nrf52840'));
    expect(up.status).toBe(201);
    expect(up.json).toMatchObject({ id: 'main@1.0.0+0/nrf52840', package: 'main', version: '1.0.0+0', board: 'nrf52840', size_bytes: expect.any(Number), uri: '/.u/c/main@1.0.0+0/nrf52840' });
    expect((await api(server, 'POST', '/api/artifacts?package=main', image('1.1.0'))).status).toBe(201);
    expect((await api(server, 'POST', '/api/artifacts?package=modem&version=2.0', Buffer.from('raw modem firmware'))).status).toBe(201);
    const r1 = await api(server, 'POST', '/api/releases', { id: 'r1', artifacts: ['main@1.0.0+0/nrf52840'], boards: ['nrf52840'] });
    expect(r1.status).toBe(201);
    expect(r1.json).toMatchObject({ id: 'r1', state: 'active', rolloutPercent: 100, boards: ['nrf52840'] });
    const r2 = await api(server, 'POST', '/api/releases', { artifacts: ['main@1.1.0+0'], rolloutPercent: 0 });
    expect(r2.json).toMatchObject({ id: 'r2', rolloutPercent: 0 });
    let devices = (await api(server, 'GET', '/api/devices')).json as unknown as { identity: string; desiredRelease: string | null; desiredVersions: Record<string, string> }[];
    expect(devices.find((d) => d.identity === 'dev-1')?.desiredRelease).toBe('r1');
    expect(devices.find((d) => d.identity === 'dev-3')?.desiredRelease).toBeNull(); // stm32f4: not targeted
    expect((await api(server, 'PUT', '/api/releases/r2/rollout', { rolloutPercent: 100 })).json).toMatchObject({ rolloutPercent: 100 });
    devices = (await api(server, 'GET', '/api/devices')).json as unknown as typeof devices;
    expect(devices.every((d) => d.desiredVersions.main === '1.1.0+0')).toBe(true);
    const rb = await api(server, 'POST', '/api/rollback');
    expect(rb.json).toMatchObject({ rolledBack: { id: 'r2', state: 'rolled-back' }, restored: { id: 'r1', state: 'active' } });
    expect((await api(server, 'GET', '/api/devices/dev-1')).json).toMatchObject({ desiredRelease: 'r1', history: [] });
    expect((await api(server, 'POST', '/api/releases/r1/pause')).json).toMatchObject({ state: 'paused' });
    expect((await api(server, 'POST', '/api/releases/r1/activate')).json).toMatchObject({ state: 'active' });
    const m = (await api(server, 'GET', '/api/metrics')).json;
    expect(m).toMatchObject({ artifacts: 3, releases: 2, devices: DEVICES.length, requests: { udp: 0, dtls: 0 } });

    const bad: [string, string, unknown, number, RegExp][] = [
      ['POST', '/api/releases', { artifacts: [] }, 400, /non-empty array/],
      ['POST', '/api/releases', { artifacts: ['main@7.7.7'] }, 404, /no artifact main@7.7.7/],
      ['POST', '/api/releases', { id: 'r1', artifacts: ['main@1.1.0+0'] }, 409, /already exists/],
      ['POST', '/api/releases', { artifacts: ['main@1.1.0+0'], rolloutPercent: 150 }, 400, /rolloutPercent must be a number 0..100/],
      ['PUT', '/api/releases/r1/rollout', {}, 400, /rolloutPercent/],
      ['POST', '/api/releases/nope/activate', undefined, 404, /no release nope/],
      ['POST', '/api/artifacts', Buffer.from('x'), 400, /needs \?package=NAME/],
      ['POST', '/api/artifacts?package=main', Buffer.from('not an image'), 400, /not an MCUboot image/],
      ['POST', '/api/artifacts?package=main&version=1.0.0%2B0&board=nrf52840', Buffer.from('other bytes'), 409, /immutable/],
      ['POST', '/api/devices', { key: 'k' }, 400, /"identity"/],
      ['GET', '/api/devices/ghost', undefined, 404, /no device ghost/],
      ['DELETE', '/api/releases', undefined, 405, /use POST/],
      ['GET', '/api/nothing', undefined, 404, /no route/],
    ];
    for (const [method, path, body, status, message] of bad) {
      const r = await api(server, method, path, body instanceof Buffer ? new Uint8Array(body) : body);
      expect([path, r.status]).toEqual([path, status]);
      expect(r.json.error?.message).toMatch(message);
    }
    const bigBody = await fetch(`http://127.0.0.1:${server.addresses().admin?.port ?? 0}/api/releases`, { method: 'POST', body: 'x'.repeat(70_000) });
    expect(bigBody.status).toBe(413);
  });
});

describe('--state-dir', () => {
  it('a restart gets artifacts, releases, devices and reports back; a torn last line is dropped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ota-sim-state-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const a = await UpdateServer.start({ stateDir: dir, port: null, dtlsPort: null });
    await a.model.addArtifact({ package: 'main', bytes: image('1.0.0') });
    await a.model.addArtifact({ package: 'main', bytes: image('1.2.0') });
    await a.model.addDevice({ identity: 'dev-9', key: 'k9', board: 'nrf52840', tags: ['lab'] });
    await a.model.createRelease({ id: 'first', artifacts: ['main@1.0.0+0'] });
    await a.model.createRelease({ id: 'second', artifacts: ['main@1.2.0+0'], tags: ['lab'], rolloutPercent: 50 });
    await a.model.rollback('second');
    await a.model.recordReport('dev-9', { at_ms: 1, package: 'main', transport: 'dtls', report: { s: 0, r: 0, pkg: 'main', v: '1.0.0+0', t: null }, error: null, rawHex: null });
    const before = { m: a.model.manifestFor('dev-9'), releases: a.model.listReleases(), artifacts: a.model.listArtifacts() };
    await a.close();
    // a crash in the middle of the next append
    appendFileSync(join(dir, 'journal.ndjson'), '{"op":"release","release":{"id":"half');
    const b = await UpdateServer.start({ stateDir: dir, port: null, dtlsPort: null });
    cleanup.push(() => b.close());
    expect(b.notes.join('\n')).toMatch(/torn last journal line/);
    expect(b.model.listReleases()).toEqual(before.releases);
    expect(b.model.listArtifacts()).toEqual(before.artifacts);
    expect(b.model.manifestFor('dev-9').equals(before.m)).toBe(true);
    expect(b.model.pskFor('dev-9')?.toString()).toBe('k9');
    expect(b.model.reports('dev-9').history).toHaveLength(1);
    expect(readFileSync(join(dir, 'journal.ndjson'), 'utf8').endsWith('\n')).toBe(true);
    // new releases continue the sequence
    const r = await b.model.activate('second');
    expect(r.activationSeq).toBeGreaterThan(Math.max(...before.releases.map((x) => x.activationSeq)));
  });
});
