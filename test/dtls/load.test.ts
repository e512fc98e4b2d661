/** Load: 1,000 clients handshake concurrently over real UDP and each round-trips data. */
import { describe, expect, it } from 'vitest';
import { DtlsPskClient } from '../../src/dtls/client.js';
import { DtlsServer } from '../../src/dtls/index.js';
import { waitFor } from './helpers.js';

const CLIENTS = 1000;

describe('load', () => {
  it(`${CLIENTS} concurrent handshakes, each with an echo`, async () => {
    const keyOf = (identity: Buffer): Buffer => Buffer.from(`key-of-${identity.toString()}`);
    const server = new DtlsServer({ psk: keyOf, maxHandshakes: CLIENTS });
    server.on('message', (d, _r, s) => s.send(d));
    const { port } = await server.listen();
    try {
      // Generous: on a loaded 2-core machine a burst of 1,000 ClientHellos overflows the socket buffer
      // and the handshakes finish over several retransmission rounds; this test is about correctness.
      const retransmit = { initial_ms: 1000, max_ms: 8000, maxRetransmissions: 20 };
      const clients = await Promise.all(
        Array.from({ length: CLIENTS }, (_, i) => DtlsPskClient.connect({ host: '127.0.0.1', port, identity: `dev-${i}`, psk: keyOf(Buffer.from(`dev-${i}`)), retransmit })),
      );
      const echoes = await Promise.all(
        clients.map(
          (c, i) =>
            new Promise<string>((resolve) => {
              const timer = setInterval(() => c.send(Buffer.from(`ping ${i}`)), 2000);
              c.once('message', (m) => {
                clearInterval(timer);
                resolve(m.toString());
              });
              c.send(Buffer.from(`ping ${i}`));
            }),
        ),
      );
      expect(echoes.every((e, i) => e === `ping ${i}`)).toBe(true);
      expect(server.stats()).toMatchObject({ sessions: CLIENTS, handshakesCompleted: CLIENTS, handshakes: 0 });
      for (const c of clients) c.close();
      await waitFor(() => server.stats().sessions === 0);
    } finally {
      await server.close();
    }
  }, 240_000);
});
