/**
 * DtlsTransport's two handshake backends against our DtlsServer over real UDP on 127.0.0.1:
 * 'ota-sim' (src/dtls/client-handshake.ts, the default) and 'node-dtls-client'. Both connect,
 * carry CoAP and close; both fail at once, with the same error kind, on a wrong key or an unknown
 * identity; a lost ClientHello costs the lean client a retransmission on the injected clock (and
 * node-dtls-client a second attempt); an abort during the handshake leaves nothing behind; the
 * server's choice among the offered suites is taken.
 */
import coap from 'coap';
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, ScaledClock } from '../../src/clock.js';
import { ClientHandshake } from '../../src/dtls/client-handshake.js';
import type { ClientHandshakeResult } from '../../src/dtls/client-handshake.js';
import { DtlsCoapSocket, DtlsPskClient, DtlsServer } from '../../src/dtls/index.js';
import type { CipherSuiteName, DtlsServerOptions, DtlsSession, SessionCloseReason } from '../../src/dtls/index.js';
import { parseRecords } from '../../src/dtls/record.js';
import { CoapClient, DtlsTransport, NetError } from '../../src/net/index.js';
import type { DtlsHandshakeBackend } from '../../src/net/dtls-transport.js';
import type { TransportCloseReason } from '../../src/net/transport.js';
import { Prng } from '../../src/prng.js';
import { Relay } from '../dtls/relay.js';
import { waitUntil } from '../helpers/wait.js';

const IDENTITY = 'device-0001';
const KEY = Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex');
const BACKENDS: DtlsHandshakeBackend[] = ['ota-sim', 'node-dtls-client'];

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** Our DTLS server with node-coap behind it: GET /hello answers "hello <identity>". */
async function coapsServer(options: Partial<DtlsServerOptions> = {}): Promise<{ server: DtlsServer; port: number; sessions: DtlsSession[]; closed: SessionCloseReason[] }> {
  const server = new DtlsServer({ psk: { [IDENTITY]: KEY }, ...options });
  const { port } = await server.listen();
  const sessions: DtlsSession[] = [];
  const closed: SessionCloseReason[] = [];
  server.on('session', (s) => sessions.push(s));
  server.on('session-closed', (_s, reason) => closed.push(reason));
  const coapServer = coap.createServer((req, res) => res.end(`hello ${req.url}`));
  coapServer.listen(new DtlsCoapSocket(server));
  cleanup.push(() => server.close());
  return { server, port, sessions, closed };
}


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One CoapClient per transport (a second one with the same PRNG would repeat message IDs). */
const clients = new WeakMap<DtlsTransport, CoapClient>();

async function get(t: DtlsTransport, path: string): Promise<{ code: string; text: string }> {
  let client = clients.get(t);
  if (!client) {
    client = new CoapClient({ transport: t, clock: new ScaledClock(1), prng: new Prng(t.localPort), timing: { ackTimeout_ms: 2000 } });
    clients.set(t, client);
  }
  const r = await client.request({ method: 'GET', path });
  return { code: r.code, text: r.payload.toString() };
}

/** Can this local UDP port be bound again (its socket is closed)? */
async function portIsFree(port: number): Promise<boolean> {
  const s = createSocket('udp4');
  const ok = await new Promise<boolean>((resolve) => {
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => resolve(true));
  });
  s.close();
  return ok;
}

describe.each(BACKENDS)('handshake backend %s against our DtlsServer', (backend) => {
  const clock = new ScaledClock(1);
  const open = (port: number, extra: Partial<Parameters<typeof DtlsTransport.open>[0]> = {}): Promise<DtlsTransport> =>
    DtlsTransport.open({ host: '127.0.0.1', port, identity: IDENTITY, psk: KEY, clock, handshake: backend, handshakeTimeout_ms: 4000, ...extra }).then((t) => {
      cleanup.push(() => t.abort());
      return t;
    });

  it('connects, carries CoAP both ways on our record layer, and close() sends a close_notify the server sees', async () => {
    const { port, sessions, closed } = await coapsServer();
    const t = await open(port);
    expect(t.handshakeBackend).toBe(backend);
    expect(t.recordLayer).toBe('own');
    expect(t.handshakeAttempts).toBe(1);
    expect(await get(t, '/a')).toEqual({ code: '2.05', text: 'hello /a' });
    expect(await get(t, '/b')).toEqual({ code: '2.05', text: 'hello /b' });
    expect(sessions).toHaveLength(1);
    expect(sessions[0]?.identity.toString()).toBe(IDENTITY);
    expect(sessions[0]?.remotePort).toBe(t.localPort);
    const reasons: TransportCloseReason[] = [];
    t.onClose((r) => reasons.push(r));
    t.close();
    await waitUntil(() => closed.length === 1, 'the server to see close_notify');
    expect(closed).toEqual(['close-notify']);
    expect(reasons).toEqual([{ kind: 'closed' }]);
    let free = false;
    for (let i = 0; i < 100 && !free; i++) {
      await sleep(20); // the socket closes once the close_notify is out
      free = await portIsFree(t.localPort);
    }
    expect(free).toBe(true);
  });

  it('a fixed local port is used (a device that rebooted comes back from the same port)', async () => {
    const { port, sessions } = await coapsServer();
    const probe = createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
    const localPort = probe.address().port;
    probe.close();
    const t = await open(port, { localPort });
    expect(t.localPort).toBe(localPort);
    expect(await get(t, '/p')).toEqual({ code: '2.05', text: 'hello /p' });
    expect(sessions[0]?.remotePort).toBe(localPort);
  });

  for (const [what, identity, psk] of [
    ['a wrong key', IDENTITY, Buffer.alloc(16, 1)],
    ['an unknown identity', 'nobody', KEY],
  ] as const) {
    it(`${what} fails at once (one attempt) with HANDSHAKE_FAILED naming the server's fatal alert`, async () => {
      const { port, sessions } = await coapsServer();
      const err = await DtlsTransport.open({ host: '127.0.0.1', port, identity, psk, clock, handshake: backend, handshakeTimeout_ms: 4000, handshakeAttempts: 4 }).then(
        (t) => {
          t.abort();
          return null;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NetError);
      expect((err as NetError).code).toBe('HANDSHAKE_FAILED');
      const message = (err as NetError).message;
      expect(message).toMatch(/attempt 1: .*alert/);
      expect(message).not.toMatch(/attempt 2/);
      expect(sessions).toHaveLength(0);
    });
  }

  for (const only of ['TLS_PSK_WITH_AES_128_CCM', 'TLS_PSK_WITH_AES_128_GCM_SHA256'] as const) {
    it(`takes the server's choice when the server allows ${only} only`, async () => {
      const { port, sessions } = await coapsServer({ cipherSuites: [only] });
      const t = await open(port);
      expect(await get(t, '/s')).toEqual({ code: '2.05', text: 'hello /s' });
      expect(sessions[0]?.cipherSuite).toBe(only);
      if (backend === 'ota-sim') expect(t.cipherSuite).toBe(only);
    });
  }

  it('the server picks its preference among the offered suites; a client offering GCM only gets GCM', async () => {
    const { port, sessions } = await coapsServer({ cipherSuites: ['TLS_PSK_WITH_AES_128_GCM_SHA256', 'TLS_PSK_WITH_AES_128_CCM_8'] });
    const first = await open(port);
    expect(await get(first, '/1')).toEqual({ code: '2.05', text: 'hello /1' });
    expect(sessions[0]?.cipherSuite).toBe('TLS_PSK_WITH_AES_128_GCM_SHA256');
    const ccm8Only = await open(port, { ciphers: ['TLS_PSK_WITH_AES_128_CCM_8'] });
    expect(await get(ccm8Only, '/2')).toEqual({ code: '2.05', text: 'hello /2' });
    expect(sessions[1]?.cipherSuite).toBe('TLS_PSK_WITH_AES_128_CCM_8');
  });

  it('an identity hint and a fragmented server flight (server MTU 64)', async () => {
    const { port, sessions } = await coapsServer({ mtu_bytes: 64, identityHint: 'a-rather-long-identity-hint-that-needs-fragmenting-too' });
    const t = await open(port);
    expect(await get(t, '/frag')).toEqual({ code: '2.05', text: 'hello /frag' });
    expect(sessions).toHaveLength(1);
  });

  it('abort() during the handshake (signal) leaves nothing behind: open() rejects CANCELLED, no datagram after, the socket is closed', async () => {
    const { port } = await coapsServer();
    // the relay forwards the ClientHello but never answers: the handshake hangs
    const relay = new Relay(port, (direction) => (direction === 'to-client' ? 'drop' : 'pass'));
    const relayPort = await relay.start();
    cleanup.push(() => relay.close());
    const manual = new ManualClock();
    const ac = new AbortController();
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const opening = DtlsTransport.open({ host: '127.0.0.1', port: relayPort, identity: IDENTITY, psk: KEY, clock: manual, handshake: backend, handshakeTimeout_ms: 1000, handshakeAttempts: 4, signal: ac.signal });
    const outcome = opening.then(
      () => 'connected',
      (e: unknown) => (e instanceof NetError ? e.code : String(e)),
    );
    await waitUntil(() => relay.counts['to-server'] >= 1, 'the ClientHello');
    const clientPort = relay.log[0]?.client.port ?? 0;
    expect(clientPort).toBeGreaterThan(0);
    ac.abort();
    expect(await outcome).toBe('CANCELLED');
    const sent = relay.counts['to-server'];
    manual.advance(60_000); // retransmission and attempt timers would fire now: none must be left
    await sleep(100);
    expect(relay.counts['to-server']).toBe(sent);
    expect(await portIsFree(clientPort)).toBe(true);
    // no process timer left behind either (node-dtls-client's own day-long handshake timer kept a
    // whole fleet process alive after a power cut mid-handshake)
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(timersBefore);
  });
});

describe('a lost first ClientHello', () => {
  async function throughLossyRelay(backend: DtlsHandshakeBackend): Promise<{ transport: DtlsTransport; relay: Relay; clock: ManualClock; sentBeforeClockMoved: number }> {
    const { port } = await coapsServer();
    // the very first datagram only (the relay counts per client port; a new attempt has a new one)
    let dropped = false;
    const relay = new Relay(port, (direction) => {
      if (direction !== 'to-server' || dropped) return 'pass';
      dropped = true;
      return 'drop';
    });
    const relayPort = await relay.start();
    cleanup.push(() => relay.close());
    const clock = new ManualClock();
    const opening = DtlsTransport.open({ host: '127.0.0.1', port: relayPort, identity: IDENTITY, psk: KEY, clock, handshake: backend, handshakeTimeout_ms: 1000, handshakeAttempts: 4 });
    await waitUntil(() => relay.counts['to-server'] >= 1, 'the first ClientHello');
    await sleep(200); // real time passes, simulated time does not: nothing is resent
    const sentBeforeClockMoved = relay.counts['to-server'];
    // move the injected clock in small steps until something is sent again (bounded), then stop
    // moving it: the rest of the handshake needs no timer, so a slow machine cannot time it out
    for (let i = 0; i < 100 && relay.counts['to-server'] < 2; i++) {
      clock.advance(100);
      await sleep(20);
    }
    const transport = await opening;
    cleanup.push(() => transport.abort());
    return { transport, relay, clock, sentBeforeClockMoved };
  }

  it("'ota-sim' retransmits it on the injected clock, within the first attempt, from the same port", async () => {
    const { transport, relay, sentBeforeClockMoved } = await throughLossyRelay('ota-sim');
    expect(sentBeforeClockMoved).toBe(1);
    expect(transport.handshakeAttempts).toBe(1);
    const hellos = relay.log.filter((l) => l.direction === 'to-server' && parseRecords(l.datagram)[0]?.type === 22 && l.datagram[13] === 1);
    expect(hellos.length).toBeGreaterThanOrEqual(3); // the lost one, its retransmission, the one with the cookie
    expect(new Set(hellos.map((h) => h.client.port)).size).toBe(1);
    expect(await get(transport, '/after-loss')).toEqual({ code: '2.05', text: 'hello /after-loss' });
  });

  it("'node-dtls-client' (no retransmission) gets there with a second attempt on the injected clock", async () => {
    const { transport, sentBeforeClockMoved } = await throughLossyRelay('node-dtls-client');
    expect(sentBeforeClockMoved).toBe(1);
    expect(transport.handshakeAttempts).toBe(2);
    expect(await get(transport, '/after-loss')).toEqual({ code: '2.05', text: 'hello /after-loss' });
  });
});

describe('the lean client on its own', () => {
  it('ClientHandshake.abort() mid-handshake: the callback never fires and the socket is closed', async () => {
    const { port, server } = await coapsServer();
    const relay = new Relay(port, (direction, index) => (direction === 'to-client' && index > 0 ? 'drop' : 'pass'));
    const relayPort = await relay.start();
    cleanup.push(() => relay.close());
    const results: ClientHandshakeResult[] = [];
    const clock = new ManualClock();
    const hs = new ClientHandshake({ host: '127.0.0.1', port: relayPort, identity: IDENTITY, psk: KEY, clock, retransmit: { initial_ms: 100, max_ms: 400, maxRetransmissions: 3 } }, (r) => results.push(r));
    await waitUntil(() => relay.counts['to-server'] >= 2, 'the ClientHello with the cookie');
    const clientPort = relay.log[0]?.client.port ?? 0;
    hs.abort();
    const sent = relay.counts['to-server'];
    clock.advance(10_000);
    await sleep(100);
    expect(results).toEqual([]);
    expect(relay.counts['to-server']).toBe(sent);
    expect(await portIsFree(clientPort)).toBe(true);
    expect(server.stats().sessions).toBe(0);
  });

  it('DtlsPskClient offers CCM_8, CCM and GCM and reports the suite the server chose; abort() emits nothing', async () => {
    const suites: CipherSuiteName[] = ['TLS_PSK_WITH_AES_128_GCM_SHA256', 'TLS_PSK_WITH_AES_128_CCM'];
    const { port } = await coapsServer({ cipherSuites: suites });
    const c = await DtlsPskClient.connect({ host: '127.0.0.1', port, identity: IDENTITY, psk: KEY });
    expect(c.cipherSuite).toBe('TLS_PSK_WITH_AES_128_GCM_SHA256');
    const events: string[] = [];
    c.on('close', () => events.push('close'));
    c.on('message', () => events.push('message'));
    const localPort = c.localPort;
    c.abort();
    await sleep(50);
    expect(events).toEqual([]);
    expect(await portIsFree(localPort)).toBe(true);
  });
});
