/**
 * Observe lifecycle over real sockets (RFC 7641): a client that answers a notification with RST
 * is deregistered; a client that never acknowledges is dropped once node-coap gives up; an
 * observer goes with its DTLS session and nothing (not even a retransmission) reaches a gone
 * session, although the device comes back from the same port; the per-device and total caps
 * drop the oldest; a device that re-registers after reconnecting is notified again.
 *
 * Absence is shown with a barrier: notifications are sent synchronously when the model changes,
 * so a later request's response on the same socket arrives after any notification would have.
 * Retransmissions run on node-coap's timers, scaled by the server's clock (ScaledClock), and the
 * tests wait out the scaled MAX_TRANSMIT_SPAN before looking.
 */
import coap from 'coap';
import { afterEach, describe, expect, it } from 'vitest';
import { ScaledClock } from '../../src/clock.js';
import type { UpdateServer, UpdateServerOptions } from '../../src/server/index.js';
import { OPT, TestClient, code, codeText, optUint, pathOptions, uint } from './coap-wire.js';
import type { CoapMsg } from './coap-wire.js';
import { image, parseManifest, startServer } from './helpers.js';

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

type Transport = 'udp' | 'dtls';
const SCALE = 0.02;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** node-coap's MAX_TRANSMIT_SPAN on the server's scale, plus slack: every retransmission is over. */
const transmitSpan_ms = (scale: number): number => coap.parameters.maxTransmitSpan * 1000 * scale + 100;

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await sleep(5);
}

let version = 1;
/** A new artifact and a release of it for every device: the manifest changes for everyone. */
async function release(server: UpdateServer): Promise<void> {
  const v = `2.0.${version++}`;
  await server.model.addArtifact({ package: 'main', bytes: image(v, 600) });
  await server.model.createRelease({ artifacts: [`main@${v}+0`] });
}

async function setup(options: UpdateServerOptions = {}): Promise<UpdateServer> {
  const server = await startServer({ clock: new ScaledClock(SCALE), ...options });
  cleanup.push(() => server.close());
  await server.model.addArtifact({ package: 'main', bytes: image('1.0.0', 600) });
  await server.model.createRelease({ id: 'base', artifacts: ['main@1.0.0+0'] });
  return server;
}

async function client(server: UpdateServer, transport: Transport, identity = 'dev-1', localPort = 0): Promise<TestClient> {
  const a = server.addresses();
  const c =
    transport === 'udp'
      ? await TestClient.udp(a.udp?.port ?? 0)
      : await TestClient.dtls(a.dtls?.port ?? 0, identity, `secret-${identity.slice(4)}`, { localPort });
  cleanup.push(() => c.close());
  return c;
}

const q = (transport: Transport, id: string): string[] => (transport === 'udp' ? [`id=${id}`] : []);

async function register(c: TestClient, transport: Transport, id = 'dev-1'): Promise<CoapMsg> {
  const reg = await c.request({ code: code('0.01'), options: [{ num: OPT.observe, value: uint(0) }, ...pathOptions('/.u/desired', q(transport, id))] });
  expect(codeText(reg.code)).toBe('2.05');
  expect(optUint(reg, OPT.observe)).not.toBeNull();
  return reg;
}

/** A plain GET round trip: anything the server sent this client before it has arrived. */
async function barrier(c: TestClient, transport: Transport, id = 'dev-1'): Promise<void> {
  const r = await c.request({ code: code('0.01'), options: pathOptions('/.u/desired', q(transport, id)) });
  expect(codeText(r.code)).toBe('2.05');
}

const withToken = (c: TestClient, token: Buffer): CoapMsg[] => c.inbox.filter((m) => m.token.equals(token) && m.code !== 0);

describe.each(['udp', 'dtls'] as const)('Observe over %s', (transport) => {
  it('a client that answers a confirmable notification with RST gets no further notification', async () => {
    const server = await setup();
    const c = await client(server, transport);
    const reg = await register(c, transport);
    c.answer = (m) => (m.token.equals(reg.token) ? 'rst' : 'ack');
    expect(server.metrics().observers).toBe(1);
    await release(server);
    const n1 = await c.waitFor((m) => m.token.equals(reg.token) && m.type === 0);
    expect(optUint(n1, OPT.observe)).not.toBeNull();
    await until(() => server.metrics().observers === 0);
    // node-coap would retransmit an unanswered notification within MAX_TRANSMIT_SPAN: the RST
    // answered it, so nothing comes, and a later release notifies nobody.
    await sleep(transmitSpan_ms(SCALE));
    await release(server);
    await barrier(c, transport);
    expect(withToken(c, reg.token).map((m) => m.mid)).toEqual([reg.mid, n1.mid]);
    expect(server.metrics().notifications).toBe(1);
  });

  it('a client that never acknowledges is retransmitted to, then dropped', async () => {
    const scale = 0.004; // EXCHANGE_LIFETIME 247 s -> ~1 s
    const server = await setup({ clock: new ScaledClock(scale) });
    const c = await client(server, transport);
    const reg = await register(c, transport);
    c.answer = (m) => (m.token.equals(reg.token) ? 'ignore' : 'ack');
    await release(server);
    const n1 = await c.waitFor((m) => m.token.equals(reg.token) && m.type === 0);
    // the same notification (same Message ID) again: node-coap's retransmission, on the scaled clock
    await c.waitFor((m) => m.mid === n1.mid && m !== n1);
    await until(() => server.metrics().observers === 0);
    await release(server);
    await barrier(c, transport);
    expect(new Set(withToken(c, reg.token).map((m) => m.mid))).toEqual(new Set([reg.mid, n1.mid]));
  });
});

describe('Observe and DTLS sessions', () => {
  it('observers go with their session; nothing reaches a gone session, not even from the same port; re-registering works', async () => {
    const server = await setup();
    const c1 = await client(server, 'dtls');
    const port = c1.dtlsClient?.localPort ?? 0;
    const reg = await register(c1, 'dtls');
    // never acknowledge: node-coap keeps retransmitting this notification on its timer
    c1.answer = () => 'ignore';
    await release(server);
    const n1 = await c1.waitFor((m) => m.token.equals(reg.token) && m.type === 0);
    c1.close();
    await until(() => server.metrics().observers === 0 && server.metrics().activeSessions === 0);

    // the device comes back from the same address and port: a new session
    const c2 = await client(server, 'dtls', 'dev-1', port);
    await until(() => server.metrics().activeSessions === 1);
    await sleep(transmitSpan_ms(SCALE));
    await release(server); // no observer left: notifies nobody
    await barrier(c2, 'dtls');
    expect(withToken(c2, reg.token)).toEqual([]);
    expect(c2.inbox.filter((m) => m.mid === n1.mid && m.type === 0)).toEqual([]);
    // the retransmissions node-coap still had scheduled were held back at the socket
    expect(server.metrics().notificationsDropped).toBeGreaterThan(0);
    expect(server.metrics().notifications).toBe(1);

    // re-registering in the new session: notified again
    const reg2 = await register(c2, 'dtls');
    const before = parseManifest(reg2.payload);
    await release(server);
    const n2 = await c2.waitFor((m) => m.token.equals(reg2.token) && m.type === 0);
    expect(parseManifest(n2.payload).seq).toBeGreaterThan(before.seq);

    // and from a new port (a reconnect that got another port)
    const c3 = await client(server, 'dtls');
    const reg3 = await register(c3, 'dtls');
    await release(server);
    await c3.waitFor((m) => m.token.equals(reg3.token) && m.type === 0);
    await c2.waitFor((m) => m.token.equals(reg2.token) && m.type === 0 && m !== n2);
    expect(server.metrics().observers).toBe(2);
  });

  it('a session the server closes (idle timeout) takes its observer with it', async () => {
    const server = await setup({ dtls: { idleTimeout_ms: 60_000 } });
    const c = await client(server, 'dtls');
    const reg = await register(c, 'dtls');
    expect(server.metrics().observers).toBe(1);
    // idle for 60 s of simulated time: the server closes the session (close_notify)
    await until(() => server.metrics().activeSessions === 0);
    expect(server.metrics().observers).toBe(0);
    await release(server);
    expect(server.metrics().notifications).toBe(0);
    expect(withToken(c, reg.token)).toHaveLength(1);
  });
});

describe('Observe caps', () => {
  it('per device and in total, a new observation ends the oldest; the others keep being notified', async () => {
    const server = await setup({ maxObserversPerDevice: 2, maxObservers: 3 });
    const c1 = await client(server, 'udp');
    const c2 = await client(server, 'udp');
    const c3 = await client(server, 'udp');
    const a = await register(c1, 'udp', 'dev-1');
    const b = await register(c1, 'udp', 'dev-1');
    expect(server.metrics().observers).toBe(2);
    const c = await register(c1, 'udp', 'dev-1'); // dev-1's third: A (its oldest) goes
    expect(server.metrics().observers).toBe(2);
    const d = await register(c2, 'udp', 'dev-2');
    expect(server.metrics().observers).toBe(3);
    const e = await register(c3, 'udp', 'dev-3'); // the fourth overall: B (oldest of all) goes
    expect(server.metrics().observers).toBe(3);
    await release(server);
    for (const [cl, tok, id] of [[c1, c.token, 'dev-1'], [c2, d.token, 'dev-2'], [c3, e.token, 'dev-3']] as const) {
      await cl.waitFor((m) => m.token.equals(tok) && m.type === 0);
      await barrier(cl, 'udp', id);
    }
    expect(withToken(c1, a.token)).toHaveLength(1);
    expect(withToken(c1, b.token)).toHaveLength(1);
    expect(server.metrics().notifications).toBe(3);
  });
});
