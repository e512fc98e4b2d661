/**
 * Negative tests: wrong key, unknown identity, replayed records, records from a wrong epoch,
 * truncated and garbage datagrams, renegotiation, a client that vanishes mid-handshake, floods of
 * half-open handshakes, a device that comes back on the same port, idle timeout, close_notify.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { dtls } from 'node-dtls-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { DtlsPskClient } from '../../src/dtls/client.js';
import { parseRecords } from '../../src/dtls/record.js';
import type { DtlsServer, HandshakeFailure, SessionCloseReason } from '../../src/dtls/index.js';
import { IDENTITY, KEY, echoServer, waitFor } from './helpers.js';
import { Relay } from './relay.js';

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function started(options: Parameters<typeof echoServer>[0] = {}): Promise<{ server: DtlsServer; port: number; failures: HandshakeFailure[] }> {
  const s = await echoServer(options);
  cleanup.push(() => s.server.close());
  const failures: HandshakeFailure[] = [];
  s.server.on('handshake-failed', (f) => failures.push(f));
  return { ...s, failures };
}

async function lean(port: number, extra: Partial<Parameters<typeof DtlsPskClient.connect>[0]> = {}): Promise<DtlsPskClient> {
  const c = await DtlsPskClient.connect({ host: '127.0.0.1', port, identity: IDENTITY, psk: KEY, retransmit: { initial_ms: 200, max_ms: 1000, maxRetransmissions: 10 }, ...extra });
  cleanup.push(() => c.close());
  return c;
}

function roundTrip(c: DtlsPskClient, text: string): Promise<string> {
  return new Promise((resolve) => {
    c.once('message', (m) => resolve(m.toString()));
    c.send(Buffer.from(text));
  });
}

function nodeDtlsAttempt(port: number, identity: string, key: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const sock = dtls.createSocket({ type: 'udp4', address: '127.0.0.1', port, psk: { [identity]: key }, timeout: 3000, ciphers: ['TLS_PSK_WITH_AES_128_CCM_8'] });
    sock.on('connected', () => resolve('connected'));
    sock.on('error', (e: Error) => resolve(`error: ${e.message}`));
  });
}

describe('authentication failures', () => {
  it('wrong key and unknown identity fail identically (no hint which), with bad_record_mac', async () => {
    const { port, failures, server } = await started();
    const wrongKey = await nodeDtlsAttempt(port, IDENTITY, Buffer.alloc(16, 0x55));
    const unknownId = await nodeDtlsAttempt(port, 'no-such-device', KEY);
    expect(wrongKey).toMatch(/^error/);
    expect(unknownId).toMatch(/^error/);
    expect(failures.map((f) => [f.alert, f.reason])).toEqual([
      [20, 'client Finished does not authenticate (wrong key or unknown identity)'],
      [20, 'client Finished does not authenticate (wrong key or unknown identity)'],
    ]);
    expect(server.stats()).toMatchObject({ sessions: 0, handshakes: 0, handshakesCompleted: 0 });
  });

  it('the lean client sees the fatal alert too', async () => {
    const { port } = await started();
    await expect(DtlsPskClient.connect({ host: '127.0.0.1', port, identity: IDENTITY, psk: Buffer.alloc(16, 1) })).rejects.toThrow(/alert 20/);
  });
});

describe('record layer defences', () => {
  it('drops replayed records, records from a wrong epoch, truncated and garbage datagrams; the session carries on', async () => {
    const { server, port } = await started();
    const relay = new Relay(port);
    const relayPort = await relay.start();
    cleanup.push(() => relay.close());
    const got: string[] = [];
    server.on('message', (d) => got.push(d.toString()));
    const c = await lean(relayPort);
    expect(await roundTrip(c, 'one')).toBe('echo:one');
    const sent = relay.log.filter((l) => l.direction === 'to-server');
    const appData = sent[sent.length - 1];
    if (!appData) throw new Error('nothing captured');
    const client = appData.client;
    // 1. the very same record again
    relay.inject(client, appData.datagram);
    // 2. same record claiming epoch 2, and epoch 0
    for (const epoch of [0, 2]) {
      const d = Buffer.from(appData.datagram);
      d.writeUInt16BE(epoch, 3);
      relay.inject(client, d);
    }
    // 3. every captured datagram truncated at every few bytes, and garbage
    for (const { datagram } of sent) for (let n = 0; n < datagram.length; n += 3) relay.inject(client, datagram.subarray(0, n));
    for (let i = 0; i < 50; i++) relay.inject(client, Buffer.from(Array.from({ length: 1 + ((i * 37) % 90) }, (_, j) => (i * 131 + j * 17) & 0xff)));
    // 4. a forged record with a valid header
    const forged = Buffer.from(appData.datagram);
    forged.writeUIntBE(1000, 5, 6);
    relay.inject(client, forged);
    expect(await roundTrip(c, 'two')).toBe('echo:two');
    expect(got).toEqual(['one', 'two']);
    expect(server.stats()).toMatchObject({ sessions: 1, handshakes: 0, handshakesCompleted: 1 });
  });

  it('refuses renegotiation with a no_renegotiation warning and keeps the session', async () => {
    const { port } = await started();
    const c = await lean(port);
    const alerts: number[] = [];
    c.on('alert', (_level, description) => alerts.push(description));
    // An encrypted ClientHello header (body irrelevant: it is refused on sight).
    c.sendRecord(22, Buffer.from('010000000000000000000000', 'hex'));
    await waitFor(() => alerts.length > 0);
    expect(alerts).toEqual([100]);
    expect(await roundTrip(c, 'still here')).toBe('echo:still here');
  });

  it('garbage from strangers leaves no state', async () => {
    const { server, port } = await started();
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    cleanup.push(() => s.close());
    for (let i = 0; i < 200; i++) s.send(Buffer.from(Array.from({ length: (i * 7) % 300 }, (_, j) => (i + j * 29) & 0xff)), port, '127.0.0.1');
    // a well-formed ClientHello header with a broken body, and a record-only prefix
    s.send(Buffer.from('16fefd00000000000000000005010000ff', 'hex'), port, '127.0.0.1');
    await waitFor(() => server.stats().datagramsIn >= 201);
    expect(server.stats()).toMatchObject({ sessions: 0, handshakes: 0, helloVerifyRequests: 0 });
  });
});

/** A hand-built ClientHello record: what a client that vanishes mid-handshake sends. */
function clientHello(recordSeq: number, messageSeq: number, cookie: Buffer, random: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([0xfe, 0xfd]), random, Buffer.of(0), Buffer.of(cookie.length), cookie, Buffer.from([0, 2, 0xc0, 0xa8, 1, 0])]);
  const hs = Buffer.alloc(12);
  hs.writeUInt8(1, 0);
  hs.writeUIntBE(body.length, 1, 3);
  hs.writeUInt16BE(messageSeq, 4);
  hs.writeUIntBE(body.length, 9, 3);
  const rec = Buffer.alloc(13);
  rec.writeUInt8(22, 0);
  rec.writeUInt16BE(0xfefd, 1);
  rec.writeUIntBE(recordSeq, 5, 6);
  rec.writeUInt16BE(12 + body.length, 11);
  return Buffer.concat([rec, hs, body]);
}

/** Do the cookie exchange from a raw socket and stop after the server's flight 4. */
async function halfOpen(s: Socket, port: number, received: Buffer[], random: Buffer): Promise<void> {
  const before = received.length;
  s.send(clientHello(0, 0, Buffer.alloc(0), random), port, '127.0.0.1');
  await waitFor(() => received.length > before);
  const hvr = received[received.length - 1];
  const rec = hvr ? parseRecords(hvr)[0] : undefined;
  if (!rec) throw new Error('no HelloVerifyRequest');
  expect(rec.version).toBe(0xfeff);
  expect(rec.fragment.readUInt16BE(12)).toBe(0xfeff);
  const cookie = rec.fragment.subarray(15, 15 + (rec.fragment[14] ?? 0));
  s.send(clientHello(1, 1, cookie, random), port, '127.0.0.1');
  await waitFor(() => received.length > before + 1);
}

async function rawSocket(): Promise<{ s: Socket; received: Buffer[] }> {
  const s = createSocket('udp4');
  const received: Buffer[] = [];
  s.on('message', (m) => received.push(m));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  cleanup.push(() => s.close());
  return { s, received };
}

describe('bounded state', () => {
  it('a client that vanishes after flight 4 gets bounded retransmissions, then its handshake is dropped', async () => {
    const clock = new ManualClock();
    const { server, port, failures } = await started({ clock, retransmit: { initial_ms: 1000, max_ms: 8000, maxRetransmissions: 3 } });
    const { s, received } = await rawSocket();
    await halfOpen(s, port, received, Buffer.alloc(32, 9));
    expect(server.stats().handshakes).toBe(1);
    const afterFlight4 = received.length;
    for (let i = 1; i <= 3; i++) {
      clock.advance(8000);
      await waitFor(() => received.length >= afterFlight4 + i);
    }
    clock.advance(60_000);
    expect(received.length).toBe(afterFlight4 + 3);
    expect(server.stats().handshakes).toBe(0);
    expect(failures.map((f) => f.reason)).toEqual(['no answer to ServerHelloDone']);
  });

  it('a duplicated ClientHello makes the server resend flight 4 at once', async () => {
    const { port } = await started({ retransmit: { initial_ms: 60_000, max_ms: 60_000, maxRetransmissions: 1 } });
    const { s, received } = await rawSocket();
    const random = Buffer.alloc(32, 3);
    await halfOpen(s, port, received, random);
    const n = received.length;
    const hvr = received[0];
    const cookie = hvr ? (parseRecords(hvr)[0]?.fragment.subarray(15) ?? Buffer.alloc(0)) : Buffer.alloc(0);
    s.send(clientHello(2, 1, cookie, random), port, '127.0.0.1');
    await waitFor(() => received.length > n);
    const first = parseRecords(received[n - 1] ?? Buffer.alloc(0));
    const again = parseRecords(received[n] ?? Buffer.alloc(0));
    // Same messages, fresh record sequence numbers (so the client's replay window accepts them).
    expect(again.map((r) => r.fragment.toString('hex'))).toEqual(first.map((r) => r.fragment.toString('hex')));
    expect(Math.min(...again.map((r) => r.seq))).toBeGreaterThan(Math.max(...first.map((r) => r.seq)));
  });

  it('a flood of ClientHellos without cookies creates no state; cookie-verified half-open ones are capped', async () => {
    const { server, port, failures } = await started({ maxHandshakes: 3 });
    const sockets = await Promise.all(Array.from({ length: 6 }, () => rawSocket()));
    for (const { s } of sockets) for (let i = 0; i < 20; i++) s.send(clientHello(i, 0, Buffer.alloc(0), Buffer.alloc(32, i)), port, '127.0.0.1');
    await waitFor(() => server.stats().helloVerifyRequests >= 120);
    expect(server.stats()).toMatchObject({ handshakes: 0, sessions: 0 });
    for (const [i, { s, received }] of sockets.entries()) {
      received.length = 0;
      await halfOpen(s, port, received, Buffer.alloc(32, 100 + i));
    }
    expect(server.stats().handshakes).toBe(3);
    expect(failures.filter((f) => f.reason.startsWith('evicted')).length).toBe(3);
  });

  it('a device that comes back on the same port replaces its old session once the new handshake completes', async () => {
    const { server, port } = await started();
    const closed: SessionCloseReason[] = [];
    server.on('session-closed', (_s, reason) => closed.push(reason));
    const first = await lean(port);
    expect(await roundTrip(first, 'before')).toBe('echo:before');
    const localPort = first.localPort;
    first.abandon(); // power cut: no close_notify
    const second = await lean(port, { localPort });
    expect(closed).toEqual(['replaced']);
    expect(server.stats().sessions).toBe(1);
    expect(await roundTrip(second, 'after')).toBe('echo:after');
  });

  it('idle sessions are closed on the injected clock, with close_notify to the peer', async () => {
    const clock = new ManualClock();
    const { server, port } = await started({ clock, idleTimeout_ms: 30_000 });
    const c = await lean(port);
    expect(await roundTrip(c, 'x')).toBe('echo:x');
    const closedByServer = new Promise<void>((r) => c.once('close', () => r()));
    clock.advance(31_000);
    await closedByServer;
    expect(server.stats().sessions).toBe(0);
  });

  it('close_notify from the client ends the session', async () => {
    const { server, port } = await started();
    const closed: SessionCloseReason[] = [];
    server.on('session-closed', (_s, reason) => closed.push(reason));
    const c = await lean(port);
    c.close();
    await waitFor(() => closed.length > 0);
    expect(closed).toEqual(['close-notify']);
  });
});
