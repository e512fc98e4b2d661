/**
 * The chaos proxy in front of the embedded update server's CoAP/DTLS-PSK port: a windowed Block2
 * download of a 64 KiB artifact through 20 % loss both ways (handshake included) still ends
 * byte-exact, and so does one through a mix of every datagram fault. One ScaledClock(0.01) drives
 * the server, the proxy and the device side, as in a scenario.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ScaledClock } from '../../src/clock.js';
import { CoapClient, DtlsTransport, download } from '../../src/net/index.js';
import { ChaosProxy } from '../../src/net/proxy/index.js';
import type { ChaosSchedule } from '../../src/net/proxy/index.js';
import { Prng } from '../../src/prng.js';
import { UpdateServer } from '../../src/server/index.js';
import { image } from '../server/helpers.js';
import { onCleanup } from './helpers.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function downloadThrough(schedule: ChaosSchedule, seed: number): Promise<{ got: Buffer; want: Uint8Array; proxy: ChaosProxy }> {
  const clock = new ScaledClock(0.01);
  const server = await UpdateServer.start({
    port: null,
    dtlsPort: 0,
    adminPort: null,
    clock,
    devices: [{ identity: 'dev-1', key: 'secret-1', board: 'nrf52840', tags: [] }],
    offerNewest: false,
  });
  onCleanup(() => server.close());
  const art = image('2.0.0', 64 * 1024);
  const info = await server.model.addArtifact({ package: 'main', bytes: art });
  const proxy = await ChaosProxy.start({ seed, clock, label: 'dev-1', schedule, target: { host: '127.0.0.1', port: server.addresses().dtls!.port } });
  onCleanup(() => proxy.close());

  const transport = await DtlsTransport.open({
    host: '127.0.0.1',
    port: proxy.address.port,
    identity: 'dev-1',
    psk: 'secret-1',
    clock,
    handshakeTimeout_ms: 1000,
    handshakeAttempts: 12,
  });
  const client = new CoapClient({ transport, clock, prng: new Prng(seed), timing: { maxRetransmit: 8 } });
  onCleanup(() => client.close());
  const parts: Buffer[] = [];
  let expected = 0;
  await download({
    client,
    uri: info.uri,
    blockSize_bytes: 512,
    window: 4,
    maxBlockRetries: 30,
    blockRetryDelay_ms: 500,
    onBlock: (num, bytes) => {
      expect(num).toBe(expected++);
      parts.push(Buffer.from(bytes));
    },
  });
  return { got: Buffer.concat(parts), want: art, proxy };
}

describe('a CoAP/DTLS download through the chaos proxy', () => {
  it('20 % loss both ways: the artifact arrives byte-exact', async () => {
    const { got, want, proxy } = await downloadThrough({ loss: 0.2 }, 20);
    expect(got.length).toBe(want.length);
    expect(sha256(got)).toBe(sha256(want));
    const s = proxy.stats();
    expect(s.faults.loss).toBeGreaterThan(20); // the loss was really applied
    expect(s.faults.loss! / (s.datagrams.up + s.datagrams.down)).toBeGreaterThan(0.1);
    expect(proxy.faults.every((f) => f.flow === 'dev-1')).toBe(true);
  });

  it('loss, a burst, jitter, duplicates, reordering and corruption together: still byte-exact', async () => {
    const schedule: ChaosSchedule = { loss: 0.05, burst: { enter: 0.02, exit: 0.5 }, delay_ms: 20, jitter_ms: 15, duplicate: 0.05, reorder: 0.05, corrupt: 0.03 };
    const { got, want, proxy } = await downloadThrough(schedule, 21);
    expect(sha256(got)).toBe(sha256(want));
    const kinds = Object.keys(proxy.stats().faults).sort();
    expect(kinds).toEqual(['burst-loss', 'corrupt', 'delay', 'duplicate', 'loss', 'reorder']);
  });
});
