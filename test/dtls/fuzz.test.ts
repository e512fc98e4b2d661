/**
 * Property-based fuzzing (fast-check): the record and handshake parsers only ever fail with a
 * DecodeError, and the server fed arbitrary or mutated datagrams never throws and never ends up
 * with a session it did not complete a real handshake for.
 */
import fc from 'fast-check';
import type { RemoteInfo } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DtlsPskClient } from '../../src/dtls/client.js';
import { DecodeError } from '../../src/dtls/errors.js';
import { parseHandshakeFragments } from '../../src/dtls/handshake.js';
import type { DtlsServer } from '../../src/dtls/index.js';
import { parseClientHello, parseClientKeyExchangePsk } from '../../src/dtls/messages.js';
import { parseRecords } from '../../src/dtls/record.js';
import { IDENTITY, KEY, echoServer } from './helpers.js';
import { Relay } from './relay.js';

function onlyDecodeErrors(parse: (b: Buffer) => unknown): (bytes: Uint8Array) => void {
  return (bytes) => {
    try {
      parse(Buffer.from(bytes));
    } catch (e) {
      expect(e).toBeInstanceOf(DecodeError);
    }
  };
}

describe('parsers', () => {
  it('parseRecords never throws', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => void parseRecords(Buffer.from(b))), { numRuns: 2000 });
  });
  it('handshake fragments, ClientHello and ClientKeyExchange fail only with DecodeError', () => {
    for (const parse of [parseHandshakeFragments, parseClientHello, parseClientKeyExchangePsk]) {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), onlyDecodeErrors(parse)), { numRuns: 1000 });
    }
  });
});

describe('server under fuzzed datagrams', () => {
  let server: DtlsServer;
  let relay: Relay;
  let client: DtlsPskClient;
  let captured: Buffer[] = [];
  let peer: RemoteInfo;

  beforeAll(async () => {
    const s = await echoServer();
    server = s.server;
    relay = new Relay(s.port);
    const relayPort = await relay.start();
    client = await DtlsPskClient.connect({ host: '127.0.0.1', port: relayPort, identity: IDENTITY, psk: KEY });
    await new Promise<void>((resolve) => {
      client.once('message', () => resolve());
      client.send(Buffer.from('captured'));
    });
    const toServer = relay.log.filter((l) => l.direction === 'to-server');
    captured = toServer.map((l) => l.datagram);
    // The relay's back socket is the address the server knows this client by.
    const sess = server.sessions()[0];
    if (!sess) throw new Error('no session');
    peer = { address: sess.remoteAddress, port: sess.remotePort, family: 'IPv4', size: 0 };
  });

  afterAll(async () => {
    client.close();
    relay.close();
    await server.close();
  });

  it('arbitrary datagrams from strangers: no throw, no state', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 65535 }), (bytes, port) => {
        server.receive(Buffer.from(bytes), { address: '127.0.0.2', port, family: 'IPv4', size: bytes.length });
      }),
      { numRuns: 2000 },
    );
    expect(server.stats()).toMatchObject({ sessions: 1, handshakes: 0, handshakesCompleted: 1 });
  });

  it('mutated copies of a real handshake and data from the real peer: no throw, no new session', () => {
    const mutation = fc.record({
      which: fc.nat(),
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
      cut: fc.option(fc.nat()),
      valid: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), (muts) => {
        for (const m of muts) {
          const base = captured[m.which % captured.length];
          if (!base) continue;
          let d = Buffer.from(base);
          for (const [pos, x] of m.flips) d[pos % d.length] = (d[pos % d.length] ?? 0) ^ x;
          if (m.cut !== null) d = d.subarray(0, m.cut % (d.length + 1));
          // Also from a stranger's address, where the cookie does not verify.
          server.receive(d, m.valid ? peer : { ...peer, port: peer.port === 1 ? 2 : peer.port - 1 });
        }
      }),
      { numRuns: 1500 },
    );
    const stats = server.stats();
    expect(stats.handshakesCompleted).toBe(1);
    expect(stats.sessions).toBeLessThanOrEqual(1);
    expect(stats.handshakes).toBeLessThanOrEqual(2);
  });
});
