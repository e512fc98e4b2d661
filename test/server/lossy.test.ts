/**
 * The server under datagram loss, duplication and reordering, over plain UDP and over DTLS: a
 * seeded relay (test/dtls/relay.ts; every decision a pure function of seed, direction and
 * datagram index) drops 20 %, duplicates 10 % and holds back 10 % (released after the next
 * datagram: a reorder) of the datagrams both ways, handshake included. A small client resends
 * each confirmable request with the same Message ID until it gets the response. Shown: a 64 KiB
 * artifact downloads blockwise with the right SHA-256, in order and in random block order with
 * several requests in flight; every duplicate of a request gets the very same response bytes;
 * each request is handled once (reports recorded once, even with a state dir whose writes are
 * slower than the duplicate).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Prng, mixSeed } from '../../src/prng.js';
import { encodeCbor } from '../../src/server/cbor.js';
import type { UpdateServer } from '../../src/server/index.js';
import { Relay } from '../dtls/relay.js';
import type { Decide } from '../dtls/relay.js';
import { OPT, TestClient, code, codeText, optUint, pathOptions, uint } from './coap-wire.js';
import type { CoapMsg } from './coap-wire.js';
import { image, parseManifest, sha256, startServer } from './helpers.js';

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

type Transport = 'udp' | 'dtls';
const FAST = { initial_ms: 50, max_ms: 400, maxRetransmissions: 20 };

/** 20 % dropped, 10 % duplicated, 10 % held back (reordered), the rest passed. */
function chaos(seed: number): Decide {
  return (direction, index) => {
    const u = new Prng(mixSeed(seed, direction === 'to-server' ? 1 : 2, index)).next();
    if (u < 0.2) return 'drop';
    if (u < 0.3) return 'dup';
    if (u < 0.4) return 'hold';
    return 'pass';
  };
}

interface Rig {
  server: UpdateServer;
  relay: Relay;
  c: TestClient;
  q: string[];
  art: Uint8Array;
}

async function rig(transport: Transport, seed: number, stateDir: string | null = null): Promise<Rig> {
  const server = await startServer({ stateDir, dtls: { retransmit: FAST } });
  cleanup.push(() => server.close());
  const art = image('3.0.0', 64 * 1024);
  await server.model.addArtifact({ package: 'main', bytes: art });
  await server.model.createRelease({ id: 'big', artifacts: ['main@3.0.0+0'] });
  const a = server.addresses();
  const relay = new Relay((transport === 'udp' ? a.udp?.port : a.dtls?.port) ?? 0, chaos(seed));
  const port = await relay.start();
  cleanup.push(() => relay.close());
  const c = transport === 'udp' ? await TestClient.udp(port) : await TestClient.dtls(port, 'dev-1', 'secret-1', { retransmit: FAST });
  cleanup.push(() => c.close());
  return { server, relay, c, q: transport === 'udp' ? ['id=dev-1'] : [], art };
}

/** Every Message ID answered more than once got byte-identical answers; returns how many were. */
function sameAnswers(c: TestClient): number {
  const byMid = new Map<number, Set<string>>();
  c.inbox.forEach((m, i) => {
    if (m.type !== 2 || m.code === 0) return; // piggybacked responses only
    const set = byMid.get(m.mid) ?? new Set<string>();
    set.add(c.raw[i]?.toString('hex') ?? '');
    byMid.set(m.mid, set);
  });
  for (const [mid, set] of byMid) expect([mid, set.size]).toEqual([mid, 1]);
  const counts = new Map<number, number>();
  for (const m of c.inbox) if (m.type === 2 && m.code !== 0) counts.set(m.mid, (counts.get(m.mid) ?? 0) + 1);
  return [...counts.values()].filter((n) => n > 1).length;
}

async function getBlock(c: TestClient, uri: string, num: number, szx: number): Promise<CoapMsg> {
  const r = await c.reliable({ code: code('0.01'), options: [...pathOptions(uri), { num: OPT.block2, value: uint(num * 16 + szx) }] });
  expect(codeText(r.code)).toBe('2.05');
  expect((optUint(r, OPT.block2) ?? 0) >> 4).toBe(num);
  return r;
}

describe.each(['udp', 'dtls'] as const)('under 20%% loss, 10%% duplication, 10%% reordering over %s', (transport) => {
  it('a 64 KiB artifact downloads blockwise, in order and in random order, with the right SHA-256; duplicates get the same response', async () => {
    const { server, relay, c, q, art } = await rig(transport, transport === 'udp' ? 11 : 12);
    const reg = await c.reliable({ code: code('0.01'), options: pathOptions('/.u/desired', q) });
    expect(codeText(reg.code)).toBe('2.05');
    const m = parseManifest(reg.payload);
    const comp = m.components[0];
    expect(comp?.size).toBe(art.length);
    const uri = comp?.uri ?? '';

    // in order, 1 KiB blocks, stop-and-wait
    const parts: Buffer[] = [];
    for (let num = 0; ; num++) {
      const r = await getBlock(c, uri, num, 6);
      parts.push(r.payload);
      if (((optUint(r, OPT.block2) ?? 0) & 8) === 0) break;
    }
    expect(sha256(Buffer.concat(parts))).toBe(comp?.hash);

    // random block order, 512-byte blocks, four requests in flight
    const blocks = Math.ceil(art.length / 512);
    const order = [...Array(blocks).keys()];
    const prng = new Prng(7);
    for (let i = order.length - 1; i > 0; i--) {
      const j = prng.below(i + 1);
      [order[i], order[j]] = [order[j] ?? 0, order[i] ?? 0];
    }
    const got = new Map<number, Buffer>();
    const worker = async (): Promise<void> => {
      for (let num = order.shift(); num !== undefined; num = order.shift()) got.set(num, (await getBlock(c, uri, num, 5)).payload);
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    const whole = Buffer.concat([...Array(blocks).keys()].map((n) => got.get(n) ?? Buffer.alloc(0)));
    expect(sha256(whole)).toBe(comp?.hash);

    // the relay did its job both ways, and the server answered every repeat identically
    expect(relay.counts['to-server']).toBeGreaterThan(blocks);
    expect(sameAnswers(c)).toBeGreaterThan(0);
    // each request handled once: node-coap's reply cache (UDP) and DtlsCoapSocket (DTLS) deduplicate
    const distinct = new Set(c.inbox.filter((x) => x.type === 2 && x.code !== 0).map((x) => x.mid)).size;
    expect(server.metrics().requests[transport]).toBe(distinct);
  });

  it('reports posted through the same chaos are each recorded once (state dir: slow writes)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ota-sim-lossy-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const { server, c, q } = await rig(transport, transport === 'udp' ? 21 : 22, dir);
    const n = 12;
    for (let i = 0; i < n; i++) {
      const body = encodeCbor(new Map<string, unknown>([['s', i % 4], ['r', 0], ['pkg', 'main'], ['v', `1.0.${i}`]]));
      const r = await c.reliable({ code: code('0.02'), options: [...pathOptions('/.u/c/main', q), { num: OPT.contentFormat, value: uint(60) }], payload: body });
      expect(codeText(r.code)).toBe('2.04');
    }
    const h = server.model.reports('dev-1').history;
    expect(h.map((r) => r.report?.v)).toEqual([...Array(n).keys()].map((i) => `1.0.${i}`));
    sameAnswers(c);
  });
});
