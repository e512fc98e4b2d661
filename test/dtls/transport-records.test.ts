/**
 * DtlsTransport's own record layer (src/dtls/record-channel.ts) after node-dtls-client's
 * handshake: it is what runs with the AEAD suites (our server's CCM_8, libcoap's GCM), it seals
 * with epoch‖seq nonces, drops duplicated and forged records, honours close_notify both ways,
 * and falls back to node-dtls-client's record layer for other suites or when told to.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ScaledClock } from '../../src/clock.js';
import type { DtlsSession } from '../../src/dtls/index.js';
import { parseRecords } from '../../src/dtls/record.js';
import { CoapClient, DtlsTransport } from '../../src/net/index.js';
import type { TransportCloseReason } from '../../src/net/transport.js';
import { Prng } from '../../src/prng.js';
import { hasLibcoap, startLibcoapServer } from '../net/libcoap.js';
import { IDENTITY, KEY, echoServer } from './helpers.js';
import { Relay } from './relay.js';
import type { Decide } from './relay.js';
import { waitUntil } from '../helpers/wait.js';

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const clock = new ScaledClock(1);

async function open(port: number, extra: Partial<Parameters<typeof DtlsTransport.open>[0]> = {}): Promise<DtlsTransport> {
  const t = await DtlsTransport.open({ host: '127.0.0.1', port, identity: IDENTITY, psk: KEY, clock, handshakeTimeout_ms: 2000, ...extra });
  cleanup.push(() => t.abort());
  return t;
}

/** Collect what the transport delivers; `next()` waits (bounded) for the next datagram. */
function inbox(t: DtlsTransport): { got: string[]; next(timeout_ms?: number): Promise<string> } {
  const got: string[] = [];
  const waiters: ((s: string) => void)[] = [];
  t.onMessage((d) => {
    const s = d.toString();
    got.push(s);
    waiters.shift()?.(s);
  });
  return {
    got,
    next: (timeout_ms = 5000) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`nothing delivered within ${timeout_ms} ms`)), timeout_ms);
        waiters.push((s) => {
          clearTimeout(timer);
          resolve(s);
        });
      }),
  };
}


describe('DtlsTransport record layer against our DTLS server (CCM_8)', () => {
  it('takes over after the handshake: data both ways, and our records carry epoch‖seq as the explicit nonce', async () => {
    const { server, port } = await echoServer();
    cleanup.push(() => server.close());
    const relay = new Relay(port);
    const relayPort = await relay.start();
    cleanup.push(() => relay.close());
    const t = await open(relayPort);
    expect(t.recordLayer).toBe('own');
    const box = inbox(t);
    for (let i = 0; i < 20; i++) {
      t.send(Buffer.from(`m${i}`));
      expect(await box.next()).toBe(`echo:m${i}`);
    }
    expect(t.recordStats).toMatchObject({ sealed: 20, opened: 20, dropped: 0 });
    // node-dtls-client draws explicit nonces at random; ours are the record's own epoch and sequence number
    const appRecords = relay.log.filter((l) => l.direction === 'to-server').flatMap((l) => parseRecords(l.datagram)).filter((r) => r.type === 23);
    expect(appRecords).toHaveLength(20);
    for (const r of appRecords) {
      expect(r.fragment.readUInt16BE(0)).toBe(r.epoch);
      expect(r.fragment.readUIntBE(2, 6)).toBe(r.seq);
    }
    const seqs = appRecords.map((r) => r.seq);
    expect(new Set(seqs).size).toBe(20);
    expect(seqs[0]).toBeGreaterThan(0); // after the Finished record of the handshake (epoch 1, seq 0)
  });

  it('delivers a duplicated record once and drops forged ones; the association goes on', async () => {
    const { server, port } = await echoServer();
    cleanup.push(() => server.close());
    let appIndex = 0;
    const forge = (d: Buffer): Buffer => {
      const f = Buffer.from(d);
      f[f.length - 1] = (f[f.length - 1] ?? 0) ^ 0x01; // last tag byte
      return f;
    };
    const decide: Decide = (direction, _index, d) => {
      if (direction !== 'to-client' || d[0] !== 23) return 'pass';
      const k = appIndex++;
      if (k === 0) return 'dup';
      if (k === 1) return [forge(d), d]; // a forgery first, then the real one
      if (k === 2) return [forge(d)]; // only a forgery: nothing to deliver
      return 'pass';
    };
    const relay = new Relay(port, decide);
    const relayPort = await relay.start();
    cleanup.push(() => relay.close());
    const t = await open(relayPort);
    const box = inbox(t);
    t.send(Buffer.from('a'));
    expect(await box.next()).toBe('echo:a');
    t.send(Buffer.from('b'));
    expect(await box.next()).toBe('echo:b');
    t.send(Buffer.from('c')); // its echo arrives forged only
    t.send(Buffer.from('d'));
    expect(await box.next()).toBe('echo:d');
    await new Promise((r) => setTimeout(r, 50));
    expect(box.got).toEqual(['echo:a', 'echo:b', 'echo:d']);
    expect(t.recordStats?.dropped).toBe(3); // the duplicate and two forgeries
    expect(t.closed).toBe(false);
  });

  it("the server's close_notify ends the transport (and is answered); our close() sends one the server sees", async () => {
    const { server, port } = await echoServer();
    cleanup.push(() => server.close());
    const closed: string[] = [];
    server.on('session-closed', (_s, reason) => closed.push(reason));
    const sessions: DtlsSession[] = [];
    server.on('session', (s) => sessions.push(s));
    const a = await open(port);
    const reasons: TransportCloseReason[] = [];
    a.onClose((r) => reasons.push(r));
    await waitUntil(() => sessions.length === 1, 'the server session');
    sessions[0]?.close();
    await waitUntil(() => reasons.length === 1, 'the transport to end');
    expect(reasons[0]).toMatchObject({ kind: 'failed', message: expect.stringContaining('close_notify') });
    expect(a.closed).toBe(true);

    const b = await open(port);
    await waitUntil(() => sessions.length === 2, 'the second session');
    b.close();
    await waitUntil(() => closed.length === 2, 'the server to see close_notify');
    expect(closed).toEqual(['closed-locally', 'close-notify']);
  });

  it('abort() sends nothing more and reports nothing', async () => {
    const { server, port } = await echoServer();
    cleanup.push(() => server.close());
    const got: string[] = [];
    server.on('message', (d) => got.push(d.toString()));
    const t = await open(port);
    const reasons: TransportCloseReason[] = [];
    t.onClose((r) => reasons.push(r));
    const box = inbox(t);
    t.send(Buffer.from('x'));
    expect(await box.next()).toBe('echo:x');
    t.abort();
    t.send(Buffer.from('y'));
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual(['x']);
    expect(reasons).toEqual([]);
    expect(server.sessions()).toHaveLength(1); // no close_notify reached it
  });

  it('ownRecordLayer: false keeps node-dtls-client’s record layer, which still works', async () => {
    const { server, port } = await echoServer();
    cleanup.push(() => server.close());
    const t = await open(port, { ownRecordLayer: false });
    expect(t.recordLayer).toBe('library');
    expect(t.recordStats).toBeNull();
    const box = inbox(t);
    t.send(Buffer.from('lib'));
    expect(await box.next()).toBe('echo:lib');
  });
});

describe.skipIf(!hasLibcoap())('DtlsTransport record layer against libcoap coap-server-openssl', () => {
  it('GCM (what libcoap picks) and CCM_8 run on our record layer; AES-256 falls back to node-dtls-client’s', async () => {
    const libcoap = await startLibcoapServer();
    cleanup.push(() => libcoap.stop());
    const get = async (t: DtlsTransport): Promise<string> => {
      const client = new CoapClient({ transport: t, clock, prng: new Prng(5), timing: { ackTimeout_ms: 2000 } });
      try {
        // libcoap's -d server answers an unknown path with 4.04
        const r = await client.request({ method: 'GET', path: '/nothing-here' });
        return r.code;
      } finally {
        client.close();
      }
    };
    const gcm = await DtlsTransport.open({ host: '127.0.0.1', port: libcoap.dtlsPort, identity: 'ota-sim-test', psk: libcoap.key, clock, handshakeTimeout_ms: 2000 });
    cleanup.push(() => gcm.abort());
    expect(gcm.recordLayer).toBe('own');
    expect(await get(gcm)).toBe('4.04');
    expect(gcm.recordStats).toMatchObject({ sealed: 2, opened: 1, dropped: 0 }); // the GET and close()'s close_notify

    // CoAP's mandatory CCM_8 on our record layer too (interop with OpenSSL's CCM)
    const ccm8 = await DtlsTransport.open({ host: '127.0.0.1', port: libcoap.dtlsPort, identity: 'ota-sim-test', psk: libcoap.key, clock, handshakeTimeout_ms: 2000, ciphers: ['TLS_PSK_WITH_AES_128_CCM_8'] });
    cleanup.push(() => ccm8.abort());
    expect(ccm8.recordLayer).toBe('own');
    expect(await get(ccm8)).toBe('4.04');
    expect(ccm8.recordStats).toMatchObject({ opened: 1, dropped: 0 });
    // AES-256 is not among src/dtls's suites: node-dtls-client keeps the record layer
    const aes256 = await DtlsTransport.open({ host: '127.0.0.1', port: libcoap.dtlsPort, identity: 'ota-sim-test', psk: libcoap.key, clock, handshakeTimeout_ms: 2000, ciphers: ['TLS_PSK_WITH_AES_256_GCM_SHA384'] });
    cleanup.push(() => aes256.abort());
    expect(aes256.recordLayer).toBe('library');
    expect(await get(aes256)).toBe('4.04');
  });
});
