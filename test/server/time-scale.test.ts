/** The embedded server starts at any time scale (node-coap turns scaled lifetimes into cache TTLs that must be whole milliseconds). */
import { describe, expect, it } from 'vitest';
import { ScaledClock } from '../../src/clock.js';
import { UpdateServer } from '../../src/server/index.js';

describe('time scale', () => {
  it.each([0.01, 0.013, 0.025, 0.04, 0.05, 0.1, 0.37])('starts and serves with ScaledClock(%s)', async (scale) => {
    const server = await UpdateServer.start({ port: 0, dtlsPort: 0, clock: new ScaledClock(scale) });
    try {
      const a = server.addresses();
      expect(a.udp?.port).toBeGreaterThan(0);
      expect(a.dtls?.port).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  });
});
