/**
 * The CoAP resources over real sockets, UDP and DTLS: manifest with Observe (notifications on
 * release and rollback, increasing sequence numbers, deregistration), blockwise artifact
 * download at every block size, state reports, and bad input answered with readable errors.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeCbor } from '../../src/server/cbor.js';
import type { UpdateServer } from '../../src/server/index.js';
import { OPT, TestClient, code, codeText, optUint, pathOptions, uint } from './coap-wire.js';
import type { CoapMsg } from './coap-wire.js';
import { image, parseManifest, sha256, startServer } from './helpers.js';

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function setup(): Promise<{ server: UpdateServer; v1: Uint8Array; v2: Uint8Array }> {
  const server = await startServer();
  cleanup.push(() => server.close());
  const v1 = image('1.0.0', 5000);
  const v2 = image('1.1.0', 7777);
  await server.model.addArtifact({ package: 'main', bytes: v1 });
  await server.model.addArtifact({ package: 'main', bytes: v2 });
  await server.model.createRelease({ id: 'base', artifacts: ['main@1.0.0+0'] });
  return { server, v1, v2 };
}

async function client(server: UpdateServer, transport: 'udp' | 'dtls', identity = 'dev-1'): Promise<TestClient> {
  const a = server.addresses();
  const c = transport === 'udp' ? await TestClient.udp(a.udp?.port ?? 0) : await TestClient.dtls(a.dtls?.port ?? 0, identity, `secret-${identity.slice(4)}`);
  cleanup.push(() => c.close());
  return c;
}

const q = (transport: 'udp' | 'dtls', id = 'dev-1'): string[] => (transport === 'udp' ? [`id=${id}`] : []);

async function download(c: TestClient, uri: string, size: number, transport: 'udp' | 'dtls'): Promise<{ bytes: Buffer; etags: Set<string> }> {
  const szx = Math.log2(size) - 4;
  const parts: Buffer[] = [];
  const etags = new Set<string>();
  for (let num = 0; ; num++) {
    const r = await c.request({ code: code('0.01'), options: [...pathOptions(uri, q(transport)), { num: OPT.block2, value: uint(num * 16 + szx) }] });
    expect(codeText(r.code)).toBe('2.05');
    const b2 = optUint(r, OPT.block2) ?? 0;
    expect(b2 >> 4).toBe(num);
    expect(b2 & 7).toBe(szx);
    etags.add(r.options.find((o) => o.num === OPT.etag)?.value.toString('hex') ?? '');
    parts.push(r.payload);
    if ((b2 & 8) === 0) break;
  }
  return { bytes: Buffer.concat(parts), etags };
}

describe.each(['udp', 'dtls'] as const)('CoAP over %s', (transport) => {
  it('serves the manifest, notifies observers on release and rollback, and the artifact blockwise', async () => {
    const { server, v1, v2 } = await setup();
    const c = await client(server, transport);
    const reg = await c.request({ code: code('0.01'), options: [{ num: OPT.observe, value: uint(0) }, ...pathOptions('/.u/desired', q(transport))] });
    expect(codeText(reg.code)).toBe('2.05');
    expect(optUint(reg, OPT.contentFormat)).toBe(60);
    const obs0 = optUint(reg, OPT.observe) ?? -1;
    const m0 = parseManifest(reg.payload);
    expect(m0.components).toEqual([{ package: 'main', version: '1.0.0+0', hash: sha256(v1), size: v1.length, uri: '/.u/c/main@1.0.0+0' }]);
    expect(m0.hash).toMatch(/^[0-9a-f]{64}$/);

    // every block size, checked by SHA-256 against the manifest
    for (const size of [16, 32, 64, 128, 256, 512, 1024]) {
      const { bytes, etags } = await download(c, m0.components[0]?.uri ?? '', size, transport);
      expect(sha256(bytes)).toBe(m0.components[0]?.hash);
      expect(etags.size).toBe(1);
    }
    // any block number, in any order
    const r7 = await c.request({ code: code('0.01'), options: [...pathOptions('/.u/c/main@1.0.0+0'), { num: OPT.block2, value: uint(7 * 16 + 2) }] });
    expect(r7.payload.equals(Buffer.from(v1.subarray(7 * 64, 8 * 64)))).toBe(true);

    // a release: a confirmable notification with a higher Observe number and sequence
    let from = c.inbox.length;
    await server.model.createRelease({ id: 'r2', artifacts: ['main@1.1.0+0'] });
    const n1 = await c.waitFor((m) => m.token.equals(reg.token), from);
    expect(n1.type).toBe(0);
    expect(optUint(n1, OPT.observe) ?? -1).toBeGreaterThan(obs0);
    const m1 = parseManifest(n1.payload);
    expect(m1.components[0]?.version).toBe('1.1.0+0');
    expect(m1.components[0]?.hash).toBe(sha256(v2));
    expect(m1.seq).toBeGreaterThan(m0.seq);

    // rollback: the previous release is desired again, with a new sequence number
    from = c.inbox.length;
    await server.model.rollback('r2');
    const n2 = await c.waitFor((m) => m.token.equals(reg.token), from);
    expect(optUint(n2, OPT.observe) ?? -1).toBeGreaterThan(optUint(n1, OPT.observe) ?? -1);
    const m2 = parseManifest(n2.payload);
    expect(m2.components[0]?.version).toBe('1.0.0+0');
    expect(m2.seq).toBeGreaterThan(m1.seq);
    expect(server.metrics().notifications).toBe(2);
    expect(server.metrics().blocksServed).toBeGreaterThan(500);
  });

  it('accepts reports and refuses bad ones with readable diagnostics, and keeps serving', async () => {
    const { server } = await setup();
    const c = await client(server, transport);
    const post = (path: string, payload: Buffer, query = q(transport)): Promise<CoapMsg> =>
      c.request({ code: code('0.02'), options: [...pathOptions(path, query), { num: OPT.contentFormat, value: uint(60) }], payload });
    const good = encodeCbor(new Map<string, unknown>([['s', 3], ['r', 1], ['pkg', 'main'], ['v', '1.0.0'], ['t', '1.0.0']]));
    expect(codeText((await post('/.u/c/main', good)).code)).toBe('2.04');
    const bad = await post('/.u/c/main', Buffer.from('a2617303', 'hex'));
    expect(codeText(bad.code)).toBe('4.00');
    expect(bad.payload.toString()).toMatch(/malformed CBOR/);
    const badState = await post('/.u/c/main', encodeCbor(new Map<string, unknown>([['s', 9], ['r', 1], ['pkg', 'main']])));
    expect(codeText(badState.code)).toBe('4.00');
    expect(badState.payload.toString()).toMatch(/"s" must be an integer 0..3/);
    const unknownPkg = await post('/.u/c/modem', good);
    expect(codeText(unknownPkg.code)).toBe('4.04');
    expect(unknownPkg.payload.toString()).toMatch(/unknown package "modem"/);
    const past = await c.request({ code: code('0.01'), options: [...pathOptions('/.u/c/main@1.0.0+0'), { num: OPT.block2, value: uint(5000 * 16 + 6) }] });
    expect(codeText(past.code)).toBe('4.02');
    expect(past.payload.toString()).toMatch(/block 5000 of 1024 bytes is past the end/);
    const noArtifact = await c.request({ code: code('0.01'), options: pathOptions('/.u/c/main@9.9.9') });
    expect(codeText(noArtifact.code)).toBe('4.04');
    const reports = server.model.reports('dev-1');
    expect(reports.history.map((r) => r.error === null)).toEqual([true, false, false]);
    expect(reports.history[0]?.report).toEqual({ s: 3, r: 1, pkg: 'main', v: '1.0.0', t: '1.0.0' });
    // still serving
    const ok = await c.request({ code: code('0.01'), options: pathOptions('/.u/desired', q(transport)) });
    expect(codeText(ok.code)).toBe('2.05');
    expect(server.metrics().reportsRejected).toBe(3);
  });

  it('a duplicated confirmable request gets the same response, and a GET without Observe deregisters', async () => {
    const { server } = await setup();
    const c = await client(server, transport);
    const req = c.send({ code: code('0.01'), mid: 0x4242, options: pathOptions('/.u/c/main@1.0.0+0', q(transport)).concat({ num: OPT.block2, value: uint(3 * 16 + 0) }) });
    const first = await c.waitFor((m) => m.mid === 0x4242);
    const from = c.inbox.length;
    c.sendRawBytes(Buffer.from(encodeRequestAgain(req)));
    const second = await c.waitFor((m) => m.mid === 0x4242, from);
    expect(second.payload.equals(first.payload)).toBe(true);
    expect(second.code).toBe(first.code);

    const reg = await c.request({ code: code('0.01'), options: [{ num: OPT.observe, value: uint(0) }, ...pathOptions('/.u/desired', q(transport))] });
    expect(server.metrics().observers).toBe(1);
    const plain = await c.request({ code: code('0.01'), token: reg.token, options: pathOptions('/.u/desired', q(transport)) });
    expect(codeText(plain.code)).toBe('2.05');
    expect(server.metrics().observers).toBe(0);
    await server.model.addArtifact({ package: 'main', bytes: image('2.0.0') });
    await server.model.createRelease({ artifacts: ['main@2.0.0+0'] });
    expect(server.metrics().notifications).toBe(0);
  });
});

function encodeRequestAgain(m: CoapMsg): Buffer {
  return Buffer.from(encodeMsg(m));
}
import { encode as encodeMsg } from './coap-wire.js';
