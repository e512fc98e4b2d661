/** Shared helpers for the net tests: a node-coap server on 127.0.0.1:0, clients, a seeded lossy relay. */
import { createHash } from 'node:crypto';
import coap from 'coap';
import type { Server } from 'coap';
import { ScaledClock } from '../../src/clock.js';
import { Prng, mixSeed } from '../../src/prng.js';
import { CoapClient, UdpTransport } from '../../src/net/index.js';
import type { CoapTiming } from '../../src/net/index.js';
import type { Decide } from '../dtls/relay.js';

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** 256 KiB of deterministic bytes. */
export function artifact(size_bytes = 256 * 1024, seed = 7): Buffer {
  const p = new Prng(seed);
  const b = Buffer.alloc(size_bytes);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(p.nextU32(), i);
  return b;
}

export async function nodeCoapServer(handler: Parameters<typeof coap.createServer>[0]): Promise<{ server: Server; port: number }> {
  const server = coap.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = (server as unknown as { _sock: { address(): { port: number } } })._sock.address();
  return { server, port: address.port };
}

/** Short CoAP timing so losses recover quickly (the clock is real time). */
export const FAST_TIMING: Partial<CoapTiming> = { ackTimeout_ms: 40, ackRandomFactor: 1.5, maxRetransmit: 8, maxLatency_ms: 100, processingDelay_ms: 50 };

export async function udpClient(port: number, seed = 1, timing: Partial<CoapTiming> = FAST_TIMING): Promise<CoapClient> {
  const transport = await UdpTransport.open({ host: '127.0.0.1', port });
  return new CoapClient({ transport, clock: new ScaledClock(1), prng: new Prng(seed), timing, maxOutstanding: 32 });
}

/** Seeded loss, duplication and reordering by datagram index (and direction). */
export function lossy(seed: number, p: { drop: number; dup: number; hold: number }): Decide {
  return (direction, index) => {
    const r = new Prng(mixSeed(seed, direction === 'to-server' ? 1 : 2, index)).next();
    if (r < p.drop) return 'drop';
    if (r < p.drop + p.dup) return 'dup';
    if (r < p.drop + p.dup + p.hold) return 'hold';
    return 'pass';
  };
}
