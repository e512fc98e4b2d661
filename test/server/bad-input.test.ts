/**
 * Bad input, each answered with the right code and a readable message while a second,
 * well-behaved client keeps being served: an unknown PSK identity (and a known one with the
 * wrong key, and a device known only from plain UDP, which has no key) over DTLS; a report with
 * each field malformed in turn; requests the resources do not take; admin API calls with missing
 * or wrong fields on every route.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DtlsPskClient } from '../../src/dtls/index.js';
import { encodeCbor } from '../../src/server/cbor.js';
import type { UpdateServer } from '../../src/server/index.js';
import { OPT, TestClient, code, codeText, pathOptions, uint } from './coap-wire.js';
import { image, parseManifest, sha256, startServer } from './helpers.js';

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

type Transport = 'udp' | 'dtls';
const FAST = { initial_ms: 50, max_ms: 400, maxRetransmissions: 4 };

async function setup(): Promise<{ server: UpdateServer; v1: Uint8Array }> {
  const server = await startServer({ dtls: { retransmit: FAST } });
  cleanup.push(() => server.close());
  const v1 = image('1.0.0', 3000);
  await server.model.addArtifact({ package: 'main', bytes: v1 });
  await server.model.createRelease({ id: 'base', artifacts: ['main@1.0.0+0'] });
  return { server, v1 };
}

async function client(server: UpdateServer, transport: Transport, identity: string): Promise<TestClient> {
  const a = server.addresses();
  const c = transport === 'udp' ? await TestClient.udp(a.udp?.port ?? 0) : await TestClient.dtls(a.dtls?.port ?? 0, identity, `secret-${identity.slice(4)}`);
  cleanup.push(() => c.close());
  return c;
}

const q = (transport: Transport, id: string): string[] => (transport === 'udp' ? [`id=${id}`] : []);

/** The well-behaved client: its manifest, and a block of the artifact checked byte for byte. */
async function wellBehaved(c: TestClient, transport: Transport, v1: Uint8Array): Promise<void> {
  const m = await c.request({ code: code('0.01'), options: pathOptions('/.u/desired', q(transport, 'dev-2')) });
  expect(codeText(m.code)).toBe('2.05');
  expect(parseManifest(m.payload).components[0]?.hash).toBe(sha256(v1));
  const b = await c.request({ code: code('0.01'), options: [...pathOptions('/.u/c/main@1.0.0+0'), { num: OPT.block2, value: uint(2 * 16 + 4) }] });
  expect(codeText(b.code)).toBe('2.05');
  expect(b.payload.equals(Buffer.from(v1.subarray(2 * 256, 3 * 256)))).toBe(true);
}

describe('unknown identity over DTLS', () => {
  it('the handshake fails with a reason; a connected device and new ones keep being served', async () => {
    const { server, v1 } = await setup();
    await server.model.addDevice({ identity: 'udp-only', key: null, board: null, tags: [] });
    const good = await client(server, 'dtls', 'dev-2');
    await wellBehaved(good, 'dtls', v1);
    const port = server.addresses().dtls?.port ?? 0;
    const attempt = async (identity: string, key: string): Promise<string> => {
      try {
        const c = await DtlsPskClient.connect({ host: '127.0.0.1', port, identity, psk: Buffer.from(key), retransmit: FAST });
        c.close();
        return 'connected';
      } catch (e) {
        return e instanceof Error ? e.message : String(e);
      }
    };
    const results = await Promise.all([
      attempt('ghost', 'whatever'),
      attempt('dev-1', 'wrong-key'),
      attempt('udp-only', 'anything'),
      wellBehaved(good, 'dtls', v1).then(() => 'served'),
    ]);
    // an unknown identity fails exactly like a wrong key (bad_record_mac): no hint which identities exist
    expect(results.slice(0, 3)).toEqual(['DTLS alert 20 from server', 'DTLS alert 20 from server', 'DTLS alert 20 from server']);
    expect(results[3]).toBe('served');
    expect(server.metrics().handshakesFailed).toBe(3);
    expect(server.metrics().activeSessions).toBe(1);
    await wellBehaved(good, 'dtls', v1);
    // a new, known device still gets in
    const late = await client(server, 'dtls', 'dev-3');
    const m = await late.request({ code: code('0.01'), options: pathOptions('/.u/desired') });
    expect(codeText(m.code)).toBe('2.05');
  });

  it('over plain UDP with auto-registration off, an unknown ?id gets 4.01 with the reason', async () => {
    const server = await startServer({ udpAutoRegister: false });
    cleanup.push(() => server.close());
    const c = await client(server, 'udp', 'x');
    const r = await c.request({ code: code('0.01'), options: pathOptions('/.u/desired', ['id=ghost']) });
    expect(codeText(r.code)).toBe('4.01');
    expect(r.payload.toString()).toMatch(/unknown device ghost/);
    const none = await c.request({ code: code('0.01'), options: pathOptions('/.u/desired') });
    expect(codeText(none.code)).toBe('4.01');
    expect(none.payload.toString()).toMatch(/\?id=IDENTITY/);
    const known = await c.request({ code: code('0.01'), options: pathOptions('/.u/desired', ['id=dev-1']) });
    expect(codeText(known.code)).toBe('2.05');
  });
});

const cbor = (entries: [string, unknown][]): Buffer => encodeCbor(new Map<string, unknown>(entries));
const GOOD: [string, unknown][] = [['s', 0], ['r', 0], ['pkg', 'main'], ['v', '1.0.0'], ['t', '1.1.0']];
const withField = (key: string, value: unknown): Buffer => cbor([...GOOD.filter(([k]) => k !== key), [key, value]]);
const without = (key: string): Buffer => cbor(GOOD.filter(([k]) => k !== key));

describe.each(['udp', 'dtls'] as const)('malformed requests over %s', (transport) => {
  it('each malformed report field gets 4.00 and its own diagnostic, and is recorded; others are served throughout', async () => {
    const { server, v1 } = await setup();
    const bad = await client(server, transport, 'dev-1');
    const good = await client(server, transport, 'dev-2');
    const cases: [string, Buffer, RegExp][] = [
      ['empty payload', Buffer.alloc(0), /empty payload: expected a CBOR map/],
      ['truncated CBOR', Buffer.from('a2617303', 'hex'), /malformed CBOR/],
      ['trailing bytes', Buffer.concat([cbor(GOOD), Buffer.of(0x00)]), /malformed CBOR|trailing|end of buffer/i],
      ['not a map', encodeCbor(['s', 0]), /must be a CBOR map/],
      ['text, not CBOR', Buffer.from('{"s":0}'), /malformed CBOR|must be a CBOR map/],
      ['missing s', without('s'), /missing "s" \(integer 0\.\.3\)/],
      ['s as text', withField('s', 'IDLE'), /"s" must be an integer 0\.\.3, got "IDLE"/],
      ['s out of range', withField('s', 4), /"s" must be an integer 0\.\.3, got 4/],
      ['s negative', withField('s', -1), /"s" must be an integer 0\.\.3, got -1/],
      ['s fractional', withField('s', 1.5), /"s" must be an integer 0\.\.3, got 1\.5/],
      ['missing r', without('r'), /missing "r" \(integer 0\.\.11\)/],
      ['r out of range', withField('r', 12), /"r" must be an integer 0\.\.11, got 12/],
      ['r as bool', withField('r', true), /"r" must be an integer 0\.\.11, got true/],
      ['missing pkg', without('pkg'), /missing "pkg" \(text\)/],
      ['pkg as number', withField('pkg', 7), /"pkg" must be text, got number/],
      ['pkg empty', withField('pkg', ''), /"pkg" must be 1\.\.128 characters/],
      ['pkg of another package', withField('pkg', 'modem'), /"pkg" is "modem" but the report was posted to \/\.u\/c\/main/],
      ['v as number', withField('v', 100), /"v" must be text, got number/],
      ['v too long', withField('v', 'x'.repeat(129)), /"v" must be 1\.\.128 characters/],
      ['t as bytes', withField('t', Buffer.from('1.1.0')), /"t" must be text, got object/],
      ['t empty', withField('t', ''), /"t" must be 1\.\.128 characters/],
    ];
    for (const [what, payload, message] of cases) {
      const r = await bad.request({ code: code('0.02'), options: [...pathOptions('/.u/c/main', q(transport, 'dev-1')), { num: OPT.contentFormat, value: uint(60) }], payload });
      expect([what, codeText(r.code)]).toEqual([what, '4.00']);
      expect([what, r.payload.toString()]).toEqual([what, expect.stringMatching(message)]);
      expect(r.payload.toString()).toMatch(/^bad state report: /);
      await wellBehaved(good, transport, v1);
    }
    const h = server.model.reports('dev-1').history;
    expect(h).toHaveLength(cases.length);
    expect(h.every((r) => r.report === null && r.error !== null)).toBe(true);
    expect(h[1]?.rawHex).toBe('a2617303');
    // a good report after all that is accepted
    const ok = await bad.request({ code: code('0.02'), options: pathOptions('/.u/c/main', q(transport, 'dev-1')), payload: cbor(GOOD) });
    expect(codeText(ok.code)).toBe('2.04');
    expect(server.metrics().reportsRejected).toBe(cases.length);
  });

  it('methods, paths and Block2 options the resources do not take get 4.05/4.04/4.02 with a reason', async () => {
    const { server, v1 } = await setup();
    const bad = await client(server, transport, 'dev-1');
    const good = await client(server, transport, 'dev-2');
    const id = q(transport, 'dev-1');
    const cases: [string, number, { num: number; value: Buffer }[], string, RegExp][] = [
      ['POST manifest', code('0.02'), pathOptions('/.u/desired', id), '4.05', /POST is not allowed on \/\.u\/desired/],
      ['PUT artifact', code('0.03'), pathOptions('/.u/c/main@1.0.0+0', id), '4.05', /PUT is not allowed/],
      ['DELETE artifact', code('0.04'), pathOptions('/.u/c/main@1.0.0+0', id), '4.05', /DELETE is not allowed/],
      ['unknown path', code('0.01'), pathOptions('/.well-known/core', id), '4.04', /no resource \/\.well-known\/core/],
      ['unknown artifact', code('0.01'), pathOptions('/.u/c/main@9.9.9'), '4.04', /no artifact at \/\.u\/c\/main@9\.9\.9/],
      ['report to unknown package', code('0.02'), pathOptions('/.u/c/modem', id), '4.04', /unknown package "modem"/],
      ['block past the end', code('0.01'), [...pathOptions('/.u/c/main@1.0.0+0'), { num: OPT.block2, value: uint(100 * 16 + 4) }], '4.02', /block 100 of 256 bytes is past the end/],
      ['block SZX 7 (BERT)', code('0.01'), [...pathOptions('/.u/c/main@1.0.0+0'), { num: OPT.block2, value: uint(7) }], '4.02', /SZX 7 \(BERT\) is not supported/],
      ['Block2 of 4 bytes', code('0.01'), [...pathOptions('/.u/c/main@1.0.0+0'), { num: OPT.block2, value: Buffer.of(1, 0, 0, 6) }], '4.02', /Block2 option of 4 bytes/],
    ];
    for (const [what, method, options, status, message] of cases) {
      const r = await bad.request({ code: method, options, payload: method === code('0.02') ? cbor(GOOD) : Buffer.alloc(0) });
      expect([what, codeText(r.code)]).toEqual([what, status]);
      expect([what, r.payload.toString()]).toEqual([what, expect.stringMatching(message)]);
      await wellBehaved(good, transport, v1);
    }
    // garbage that is not CoAP at all: no answer, no harm
    bad.sendRawBytes(Buffer.from('not coap at all'));
    bad.sendRawBytes(Buffer.of(0x40));
    await wellBehaved(good, transport, v1);
    expect(server.metrics().errorResponses).toBe(cases.length);
  });
});

async function api(server: UpdateServer, method: string, path: string, body?: unknown): Promise<{ status: number; json: { error?: { code: string; message: string } } & Record<string, unknown> }> {
  const port = server.addresses().admin?.port ?? 0;
  const raw = body === undefined ? undefined : body instanceof Uint8Array ? body : typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, body: raw });
  return { status: res.status, json: (await res.json()) as { error?: { code: string; message: string } } & Record<string, unknown> };
}

describe('admin API: missing and wrong fields on every route', () => {
  it('answers each with the status and a readable message, and the CoAP side keeps serving', async () => {
    const server = await startServer({ limits: { maxArtifact_bytes: 64 * 1024 } });
    cleanup.push(() => server.close());
    const v1 = image('1.0.0', 3000);
    expect((await api(server, 'POST', '/api/artifacts?package=main', new Uint8Array(v1))).status).toBe(201);
    expect((await api(server, 'POST', '/api/releases', { id: 'base', artifacts: ['main@1.0.0+0'] })).status).toBe(201);
    expect((await api(server, 'POST', '/api/releases', { id: 'draft', artifacts: ['main@1.0.0+0'], activate: false })).status).toBe(201);
    const good = await client(server, 'udp', 'dev-2');
    const notJson = '{"artifacts": [';
    const cases: [string, string, unknown, number, string, RegExp][] = [
      // metrics, rollback
      ['POST', '/api/metrics', undefined, 405, 'METHOD_NOT_ALLOWED', /POST \/api\/metrics: use GET/],
      ['GET', '/api/rollback', undefined, 405, 'METHOD_NOT_ALLOWED', /use POST/],
      // artifacts
      ['POST', '/api/artifacts', new Uint8Array(v1), 400, 'MISSING_FIELD', /needs \?package=NAME/],
      ['POST', '/api/artifacts?package=bad%20name', new Uint8Array(v1), 400, 'BAD_FIELD', /package must be 1\.\.128 of/],
      ['POST', '/api/artifacts?package=main', undefined, 400, 'EMPTY_ARTIFACT', /no bytes/],
      ['POST', '/api/artifacts?package=main', new Uint8Array(Buffer.from('raw')), 400, 'NO_VERSION', /not an MCUboot image .*give its version/],
      ['POST', '/api/artifacts?package=modem&version=1%20beta', new Uint8Array(Buffer.from('raw')), 400, 'BAD_FIELD', /version must be 1\.\.64 of/],
      ['POST', '/api/artifacts?package=modem&version=1.0&board=no%2Fslash', new Uint8Array(Buffer.from('raw')), 400, 'BAD_FIELD', /board must be/],
      ['POST', '/api/artifacts?package=modem&version=1.0', new Uint8Array(70 * 1024), 413, 'BODY_TOO_LARGE', /at most 65536/],
      ['PUT', '/api/artifacts', undefined, 405, 'METHOD_NOT_ALLOWED', /use POST/],
      ['GET', '/api/artifacts/main%409.9.9', undefined, 404, 'UNKNOWN_ARTIFACT', /no artifact main@9\.9\.9/],
      ['POST', '/api/artifacts/main%401.0.0%2B0', undefined, 405, 'METHOD_NOT_ALLOWED', /use GET/],
      // releases
      ['POST', '/api/releases', notJson, 400, 'BAD_JSON', /not JSON/],
      ['POST', '/api/releases', [1, 2], 400, 'BAD_JSON', /must be a JSON object/],
      ['POST', '/api/releases', {}, 400, 'BAD_FIELD', /artifacts must be a non-empty array/],
      ['POST', '/api/releases', { artifacts: 'main@1.0.0+0' }, 400, 'BAD_FIELD', /artifacts must be a non-empty array/],
      ['POST', '/api/releases', { artifacts: [5] }, 400, 'BAD_FIELD', /artifacts\[0\] must be an artifact id/],
      ['POST', '/api/releases', { artifacts: ['main@1.0.0+0'], id: 'has space' }, 400, 'BAD_FIELD', /id must be/],
      ['POST', '/api/releases', { artifacts: ['main@1.0.0+0'], id: 7 }, 400, 'BAD_FIELD', /id must be/],
      ['POST', '/api/releases', { artifacts: ['main@1.0.0+0'], boards: 'nrf52840' }, 400, 'BAD_FIELD', /boards must be an array of names/],
      ['POST', '/api/releases', { artifacts: ['main@1.0.0+0'], tags: [1] }, 400, 'BAD_FIELD', /tags\[0\] must be/],
      ['POST', '/api/releases', { artifacts: ['main@1.0.0+0'], devices: [''] }, 400, 'BAD_FIELD', /devices\[0\] must be/],
      ['POST', '/api/releases', { artifacts: ['main@1.0.0+0'], rolloutPercent: '50' }, 400, 'BAD_FIELD', /rolloutPercent must be a number 0\.\.100, got "50"/],
      ['POST', '/api/releases', { artifacts: ['main@1.0.0+0'], rolloutPercent: -1 }, 400, 'BAD_FIELD', /rolloutPercent must be a number 0\.\.100/],
      ['POST', '/api/releases', { artifacts: ['main@1.0.0+0'], activate: 'yes' }, 400, 'BAD_FIELD', /activate must be true or false/],
      ['POST', '/api/releases', { artifacts: ['main@1.0.0+0'], id: 'base' }, 409, 'RELEASE_EXISTS', /already exists/],
      ['GET', '/api/releases/nope', undefined, 404, 'UNKNOWN_RELEASE', /no release nope/],
      ['DELETE', '/api/releases/base', undefined, 405, 'METHOD_NOT_ALLOWED', /use GET/],
      ['GET', '/api/releases/base/activate', undefined, 405, 'METHOD_NOT_ALLOWED', /use POST/],
      ['POST', '/api/releases/base/frobnicate', undefined, 404, 'NO_ROUTE', /no release action frobnicate/],
      ['POST', '/api/releases/nope/pause', undefined, 404, 'UNKNOWN_RELEASE', /no release nope/],
      ['POST', '/api/releases/nope/rollback', undefined, 404, 'UNKNOWN_RELEASE', /no release nope/],
      ['POST', '/api/releases/draft/pause', undefined, 409, 'NOT_ACTIVE', /draft; only an active release can be paused/],
      ['POST', '/api/releases/draft/rollback', undefined, 409, 'NOT_ACTIVE', /draft; only an active or paused release/],
      ['PUT', '/api/releases/base/rollout', notJson, 400, 'BAD_JSON', /not JSON/],
      ['PUT', '/api/releases/base/rollout', { percent: 5 }, 400, 'MISSING_FIELD', /"rolloutPercent": 0\.\.100/],
      ['PUT', '/api/releases/base/rollout', { rolloutPercent: 'half' }, 400, 'BAD_FIELD', /got "half"/],
      ['PUT', '/api/releases/base/rollout', { rolloutPercent: 101 }, 400, 'BAD_FIELD', /got 101/],
      ['PUT', '/api/releases/nope/rollout', { rolloutPercent: 5 }, 404, 'UNKNOWN_RELEASE', /no release nope/],
      ['GET', '/api/releases/base/rollout', undefined, 405, 'METHOD_NOT_ALLOWED', /use POST/],
      // devices
      ['POST', '/api/devices', notJson, 400, 'BAD_JSON', /not JSON/],
      ['POST', '/api/devices', {}, 400, 'MISSING_FIELD', /"identity" \(text\)/],
      ['POST', '/api/devices', { identity: 42 }, 400, 'MISSING_FIELD', /"identity" \(text\)/],
      ['POST', '/api/devices', { identity: 'has space' }, 400, 'BAD_FIELD', /identity must be/],
      ['POST', '/api/devices', { identity: 'dev-9', key: 1234 }, 400, 'BAD_FIELD', /"key" must be text/],
      ['POST', '/api/devices', { identity: 'dev-9', key: 'has space' }, 400, 'BAD_FIELD', /key must be 1\.\.64 printable ASCII/],
      ['POST', '/api/devices', { identity: 'dev-9', board: 5 }, 400, 'BAD_FIELD', /"board" must be text/],
      ['POST', '/api/devices', { identity: 'dev-9', board: 'no/slash' }, 400, 'BAD_FIELD', /board must be/],
      ['POST', '/api/devices', { identity: 'dev-9', tags: 'beta' }, 400, 'BAD_FIELD', /tags must be an array of names/],
      ['POST', '/api/devices', { identity: 'dev-9', tags: ['ok', 3] }, 400, 'BAD_FIELD', /tags\[1\] must be/],
      ['GET', '/api/devices/ghost', undefined, 404, 'UNKNOWN_DEVICE', /no device ghost/],
      ['GET', '/api/devices/dev-1/history', undefined, 404, 'UNKNOWN_DEVICE', /no device dev-1/],
      ['PUT', '/api/devices', undefined, 405, 'METHOD_NOT_ALLOWED', /use POST/],
      ['POST', '/api/devices/dev-1', undefined, 405, 'METHOD_NOT_ALLOWED', /use GET/],
      // routes
      ['GET', '/api/nothing', undefined, 404, 'NO_ROUTE', /no route GET \/api\/nothing/],
      ['GET', '/', undefined, 404, 'NO_ROUTE', /no route/],
      ['GET', '/api/releases/a/b/c', undefined, 404, 'NO_ROUTE', /no route/],
      ['GET', '/api/devices/%E0%A4%A', undefined, 400, 'BAD_PATH', /not valid percent-encoding/],
    ];
    for (const [method, path, body, status, errCode, message] of cases) {
      const r = await api(server, method, path, body);
      const what = `${method} ${path} ${typeof body === 'object' && !(body instanceof Uint8Array) ? JSON.stringify(body) : ''}`;
      expect([what, r.status, r.json.error?.code]).toEqual([what, status, errCode]);
      expect([what, r.json.error?.message]).toEqual([what, expect.stringMatching(message)]);
      await wellBehaved(good, 'udp', v1);
    }
    // nothing half-done: no device dev-9, the releases as they were
    expect(server.model.device('dev-9')).toBeUndefined();
    expect(server.model.listReleases().map((r) => [r.id, r.state])).toEqual([['base', 'active'], ['draft', 'draft']]);
    expect(server.model.listArtifacts().map((a) => a.id)).toEqual(['main@1.0.0+0']);
  });

  it('POST /api/rollback with nothing active says so', async () => {
    const server = await startServer();
    cleanup.push(() => server.close());
    const r = await api(server, 'POST', '/api/rollback');
    expect([r.status, r.json.error?.code]).toEqual([409, 'NOTHING_TO_ROLL_BACK']);
    expect(r.json.error?.message).toMatch(/no active release to roll back/);
  });
});
