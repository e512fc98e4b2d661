/**
 * Loss, duplication, reordering and fragmentation through a deterministic relay: whole flights
 * dropped or duplicated, records of a flight reversed, client handshake records cut into small
 * fragments, and seeded chaos keyed by datagram index.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DtlsPskClient } from '../../src/dtls/client.js';
import { encodeRecord, parseRecords } from '../../src/dtls/record.js';
import { fragmentHandshake, parseHandshakeFragments } from '../../src/dtls/handshake.js';
import { Prng, mixSeed } from '../../src/prng.js';
import { IDENTITY, KEY, KEY_HEX, echoServer, hasTool, nodeDtlsRoundTrip, runTool } from './helpers.js';
import { Relay } from './relay.js';
import type { Decide } from './relay.js';

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const FAST = { initial_ms: 100, max_ms: 800, maxRetransmissions: 12 };

async function through(decide: Decide): Promise<{ relayPort: number; got: string[]; relay: Relay; stats: () => ReturnType<import('../../src/dtls/index.js').DtlsServer['stats']> }> {
  const { server, port } = await echoServer({ retransmit: FAST });
  cleanup.push(() => server.close());
  const got: string[] = [];
  server.on('message', (d) => got.push(d.toString()));
  const relay = new Relay(port, decide);
  const relayPort = await relay.start();
  cleanup.push(() => relay.close());
  return { relayPort, got, relay, stats: () => server.stats() };
}

/** Send until the echo comes back (application data has no retransmission of its own). */
async function echoWithRetry(c: DtlsPskClient, text: string): Promise<string> {
  return new Promise((resolve) => {
    const timer = setInterval(() => c.send(Buffer.from(text)), 200);
    c.once('message', (m) => {
      clearInterval(timer);
      resolve(m.toString());
    });
    c.send(Buffer.from(text));
  });
}

async function leanThrough(relayPort: number): Promise<DtlsPskClient> {
  const c = await DtlsPskClient.connect({ host: '127.0.0.1', port: relayPort, identity: IDENTITY, psk: KEY, retransmit: FAST });
  cleanup.push(() => c.close());
  return c;
}

describe('lost and duplicated flights', () => {
  it("server's flight 4 lost: the server retransmits it on its timer", async () => {
    // to-client #0 is the HelloVerifyRequest, #1 the first flight 4
    const { relayPort, relay } = await through((dir, i) => (dir === 'to-client' && i === 1 ? 'drop' : 'pass'));
    const c = await leanThrough(relayPort);
    expect(await echoWithRetry(c, 'a')).toBe('echo:a');
    expect(relay.counts['to-client']).toBeGreaterThan(3);
  });

  it("client's flight 5 lost, then the server's flight 6 lost: both recovered", async () => {
    const { relayPort } = await through((dir, i) => ((dir === 'to-server' && i === 2) || (dir === 'to-client' && i === 2) ? 'drop' : 'pass'));
    const c = await leanThrough(relayPort);
    expect(await echoWithRetry(c, 'b')).toBe('echo:b');
  });

  it('every datagram duplicated both ways: one handshake, each message delivered once', async () => {
    const { relayPort, got, stats } = await through(() => 'dup');
    const c = await leanThrough(relayPort);
    expect(await echoWithRetry(c, 'once')).toBe('echo:once');
    expect(got).toEqual(['once']);
    expect(stats()).toMatchObject({ handshakesCompleted: 1, sessions: 1 });
  });

  it.skipIf(!hasTool('openssl'))('openssl s_client recovers from a lost HelloVerifyRequest and a lost flight 4', async () => {
    const { relayPort } = await through((dir, i) => (dir === 'to-client' && (i === 0 || i === 2) ? 'drop' : 'pass'));
    const args = ['s_client', '-dtls1_2', '-connect', `127.0.0.1:${relayPort}`, '-psk', KEY_HEX, '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8'];
    const run = await runTool('openssl', args, 'through loss\n', /echo:through loss/, 30_000);
    expect(run.stdout).toContain('echo:through loss');
  });
});

describe('reordering and fragmentation', () => {
  it('records of each client datagram reversed (Finished before ChangeCipherSpec before ClientKeyExchange)', async () => {
    const { relayPort } = await through((dir, _i, d) => {
      if (dir !== 'to-server') return 'pass';
      const recs = parseRecords(d);
      if (recs.length < 2) return 'pass';
      return recs.reverse().map((r) => encodeRecord(r.type, r.version, r.epoch, r.seq, r.fragment));
    });
    const c = await leanThrough(relayPort);
    expect(await echoWithRetry(c, 'reordered')).toBe('echo:reordered');
  });

  it('consecutive datagrams swapped in both directions', async () => {
    const { relayPort } = await through((_dir, i) => (i % 2 === 0 ? 'hold' : 'pass'));
    const c = await leanThrough(relayPort);
    expect(await echoWithRetry(c, 'swapped')).toBe('echo:swapped');
  });

  it('node-dtls-client with its ClientHellos and ClientKeyExchange cut into 20-byte fragments, sent in reverse', async () => {
    const { relayPort, stats } = await through((dir, _i, d) => {
      if (dir !== 'to-server') return 'pass';
      const out: Buffer[] = [];
      for (const r of parseRecords(d)) {
        if (r.epoch !== 0 || r.type !== 22) {
          out.push(encodeRecord(r.type, r.version, r.epoch, r.seq, r.fragment));
          continue;
        }
        for (const f of parseHandshakeFragments(r.fragment)) {
          const pieces = fragmentHandshake(f.msgType, f.messageSeq, f.body, 12 + 20).reverse();
          for (const p of pieces) out.push(encodeRecord(r.type, r.version, 0, r.seq, p));
        }
      }
      return out;
    });
    const reply = await nodeDtlsRoundTrip(relayPort, 'fragmented');
    expect(reply).toBe('echo:fragmented');
    expect(stats().helloReassemblies).toBe(0);
  });
});

describe('seeded chaos', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`seed ${seed}: 20% loss, 10% duplication, 10% reordering both ways`, async () => {
      const { relayPort } = await through((dir, i) => {
        const r = new Prng(mixSeed(seed, dir === 'to-server' ? 1 : 2, i)).next();
        return r < 0.2 ? 'drop' : r < 0.3 ? 'dup' : r < 0.4 ? 'hold' : 'pass';
      });
      const c = await leanThrough(relayPort);
      expect(await echoWithRetry(c, `seed ${seed}`)).toBe(`echo:seed ${seed}`);
    });
  }
});
