/**
 * The windowed Block2 engine on real sockets (127.0.0.1): a node-coap server, libcoap's
 * coap-server-openssl over UDP and DTLS PSK (window 1 and 8 × block size 16, 64, 1024), a seeded
 * lossy relay in front, resume from a block, ETag change, and the RAM bound (high-water mark).
 */
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ScaledClock } from '../../src/clock.js';
import { Prng } from '../../src/prng.js';
import { CoapClient, DownloadError, DtlsTransport, UdpTransport, download } from '../../src/net/index.js';
import type { DownloadResult } from '../../src/net/index.js';
import { Relay } from '../dtls/relay.js';
import { FAST_TIMING, artifact, lossy, nodeCoapServer, sha256, udpClient } from './helpers.js';
import { hasLibcoap, startLibcoapServer } from './libcoap.js';
import type { LibcoapServer } from './libcoap.js';

const IMAGE = artifact();
const IMAGE_SHA = sha256(IMAGE);

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** Download and collect what onBlock received, checking order and the RAM bound. */
async function fetchAll(client: CoapClient, uri: string, blockSize_bytes: number, window: number, startBlock = 0): Promise<{ bytes: Buffer; result: DownloadResult }> {
  const parts: Buffer[] = [];
  let expected = startBlock;
  const result = await download({
    client,
    uri,
    blockSize_bytes,
    window,
    startBlock,
    blockRetryDelay_ms: 20,
    maxBlockRetries: 20,
    onBlock: async (num, bytes) => {
      expect(num).toBe(expected++);
      parts.push(Buffer.from(bytes));
      if (num % 7 === 0) await new Promise((r) => setImmediate(r)); // a slow flash now and then
    },
  });
  expect(result.highWater_bytes).toBeLessThanOrEqual(window * blockSize_bytes);
  return { bytes: Buffer.concat(parts), result };
}

describe('download from a node-coap server (UDP)', () => {
  it('window 1 and window 8 deliver the same bytes, in order, within window × block size', async () => {
    const { server, port } = await nodeCoapServer((_req, res) => res.end(IMAGE));
    cleanup.push(() => server.close());
    for (const window of [1, 8]) {
      const client = await udpClient(port, window);
      cleanup.push(() => client.close());
      const { bytes, result } = await fetchAll(client, '/fw/main', 1024, window);
      expect(sha256(bytes)).toBe(IMAGE_SHA);
      expect(result.lastBlock).toBe(255);
      expect(result.etag).not.toBeNull();
      if (window === 8) expect(result.highWater_bytes).toBeGreaterThan(1024); // the window was really used
    }
  });

  it('resumes from any block and stops with ETAG_CHANGED when the resource changed', async () => {
    let image = IMAGE;
    const { server, port } = await nodeCoapServer((_req, res) => res.end(image));
    cleanup.push(() => server.close());
    const client = await udpClient(port);
    cleanup.push(() => client.close());
    const first = await fetchAll(client, '/fw', 512, 4, 0);
    const resumed = await fetchAll(client, '/fw', 512, 4, 300);
    expect(resumed.bytes.equals(IMAGE.subarray(300 * 512))).toBe(true);
    image = artifact(IMAGE.length, 99);
    const err = await download({ client, uri: '/fw', blockSize_bytes: 512, window: 4, startBlock: 10, etag: first.result.etag, onBlock: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).reason).toBe('ETAG_CHANGED');
  });

  it('a seeded lossy relay (drop, duplicate, reorder) in front: the download still completes correctly', async () => {
    const { server, port } = await nodeCoapServer((_req, res) => res.end(IMAGE));
    const relay = new Relay(port, lossy(42, { drop: 0.08, dup: 0.05, hold: 0.05 }));
    const relayPort = await relay.start();
    cleanup.push(() => server.close(), () => relay.close());
    for (const window of [1, 8]) {
      const client = await udpClient(relayPort, 100 + window);
      cleanup.push(() => client.close());
      const { bytes } = await fetchAll(client, '/fw', 1024, window);
      expect(sha256(bytes)).toBe(IMAGE_SHA);
      expect(client.stats.retransmissions + client.stats.duplicates).toBeGreaterThan(0);
    }
  });

  it('onBlock throwing (a power cut in flash) aborts with SINK_FAILED at that block', async () => {
    const { server, port } = await nodeCoapServer((_req, res) => res.end(IMAGE));
    cleanup.push(() => server.close());
    const client = await udpClient(port);
    cleanup.push(() => client.close());
    const err = await download({
      client,
      uri: '/fw',
      blockSize_bytes: 256,
      window: 8,
      onBlock: (num) => {
        if (num === 17) throw new Error('power cut');
      },
    }).catch((e: unknown) => e);
    expect((err as DownloadError).reason).toBe('SINK_FAILED');
    expect((err as DownloadError).nextBlock).toBe(17);
  });
});

describe.skipIf(!hasLibcoap())('download from libcoap coap-server-openssl', () => {
  let libcoap: LibcoapServer;
  beforeAll(async () => {
    libcoap = await startLibcoapServer();
    const dir = mkdtempSync(join(tmpdir(), 'ota-sim-net-'));
    const file = join(dir, 'fw.bin');
    writeFileSync(file, IMAGE);
    await libcoap.put('/fw/main', file);
  });
  afterAll(() => libcoap.stop());

  for (const blockSize of [16, 64, 1024]) {
    for (const window of [1, 8]) {
      it(`UDP, block ${blockSize}, window ${window}`, async () => {
        const client = await udpClient(libcoap.udpPort, blockSize * 10 + window, { ...FAST_TIMING, ackTimeout_ms: 500 });
        cleanup.push(() => client.close());
        const { bytes, result } = await fetchAll(client, '/fw/main', blockSize, window);
        expect(sha256(bytes)).toBe(IMAGE_SHA);
        expect(result.totalBytes).toBe(IMAGE.length);
      });
      it(`DTLS PSK, block ${blockSize}, window ${window}`, async () => {
        const clock = new ScaledClock(1);
        const transport = await DtlsTransport.open({ host: '127.0.0.1', port: libcoap.dtlsPort, identity: 'device-0001', psk: libcoap.key, clock });
        const client = new CoapClient({ transport, clock, prng: new Prng(blockSize + window), timing: { ...FAST_TIMING, ackTimeout_ms: 500 } });
        cleanup.push(() => client.close());
        const { bytes } = await fetchAll(client, '/fw/main', blockSize, window);
        expect(sha256(bytes)).toBe(IMAGE_SHA);
      });
    }
  }

  it('DTLS: a power cut (abort) and a new transport: a fresh handshake from a new port, download resumes', async () => {
    const clock = new ScaledClock(1);
    const open = (): Promise<DtlsTransport> => DtlsTransport.open({ host: '127.0.0.1', port: libcoap.dtlsPort, identity: 'device-0001', psk: libcoap.key, clock });
    const t1 = await open();
    const c1 = new CoapClient({ transport: t1, clock, prng: new Prng(5), timing: { ...FAST_TIMING, ackTimeout_ms: 500 } });
    let seen = 0;
    const first = await download({ client: c1, uri: '/fw/main', blockSize_bytes: 1024, window: 4, onBlock: (n) => {
      seen = n + 1;
      if (n === 40) c1.abort();
    } }).then(
      () => 'finished',
      (e: unknown) => e,
    );
    // after abort nothing settles: the download promise stays pending; race it against a short wait
    void first;
    expect(t1.closed).toBe(true);
    const t2 = await open();
    expect(t2.localPort).not.toBe(t1.localPort);
    const c2 = new CoapClient({ transport: t2, clock, prng: new Prng(6), timing: { ...FAST_TIMING, ackTimeout_ms: 500 } });
    cleanup.push(() => c2.close());
    const { bytes } = await fetchAll(c2, '/fw/main', 1024, 4, seen);
    expect(bytes.equals(IMAGE.subarray(seen * 1024))).toBe(true);
  });

  it('a lossy relay in front of the DTLS port: the handshake retries and the download completes', async () => {
    const relay = new Relay(libcoap.dtlsPort, lossy(7, { drop: 0.05, dup: 0.03, hold: 0.03 }));
    const relayPort = await relay.start();
    cleanup.push(() => relay.close());
    const clock = new ScaledClock(1);
    const transport = await DtlsTransport.open({ host: '127.0.0.1', port: relayPort, identity: 'device-0001', psk: libcoap.key, clock, handshakeTimeout_ms: 200, handshakeAttempts: 10 });
    const client = new CoapClient({ transport, clock, prng: new Prng(77), timing: { ...FAST_TIMING, ackTimeout_ms: 100 } });
    cleanup.push(() => client.close());
    const { bytes } = await fetchAll(client, '/fw/main', 1024, 8);
    expect(sha256(bytes)).toBe(IMAGE_SHA);
  });

  it('UDP transport: nothing arrives after abort()', async () => {
    const transport = await UdpTransport.open({ host: '127.0.0.1', port: libcoap.udpPort });
    let after = 0;
    transport.onMessage(() => after++);
    transport.abort();
    transport.send(Buffer.from([0x40, 0, 0, 1]));
    await new Promise((r) => setTimeout(r, 50));
    expect(after).toBe(0);
  });
});
