/**
 * Network benchmark: time to download a 256 KiB artifact from libcoap's coap-server-openssl over
 * DTLS PSK with block size 1024, by ota-sim's request layer (handshake included) at window 1 and
 * window 8, against `coap-client-openssl -b 1024` (the whole process, stop-and-wait) on the same
 * file and server. Median of several runs; printed as ratios (below 1 = faster than libcoap).
 * Window 8 runs once more on node-dtls-client's record layer (DtlsTransport ownRecordLayer: false)
 * to show what our own record layer after the handshake buys.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ScaledClock } from '../src/clock.js';
import { Prng } from '../src/prng.js';
import { CoapClient, DtlsTransport, download } from '../src/net/index.js';
import { hasLibcoap, startLibcoapServer } from '../test/net/libcoap.js';
import type { BenchResult } from './harness.js';

const SIZE_BYTES = 256 * 1024;
const RUNS = 9;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

export async function benchNet(): Promise<BenchResult[]> {
  if (!hasLibcoap()) return [{ name: 'libcoap not installed (apt-get install libcoap3-bin): skipped', value: 0, unit: '' }];
  const prng = new Prng(1);
  const image = Buffer.alloc(SIZE_BYTES);
  for (let i = 0; i < image.length; i += 4) image.writeUInt32LE(prng.nextU32(), i);
  const sha = createHash('sha256').update(image).digest('hex');
  const dir = mkdtempSync(join(tmpdir(), 'ota-sim-bench-net-'));
  const file = join(dir, 'fw.bin');
  writeFileSync(file, image);
  const server = await startLibcoapServer();
  try {
    await server.put('/fw/main', file);
    const clock = new ScaledClock(1);
    const ours = async (window: number, seed: number, ownRecordLayer = true): Promise<number> => {
      const start = performance.now();
      const transport = await DtlsTransport.open({ host: '127.0.0.1', port: server.dtlsPort, identity: 'bench', psk: server.key, clock, ownRecordLayer });
      const client = new CoapClient({ transport, clock, prng: new Prng(seed), timing: { ackTimeout_ms: 1000 } });
      const hash = createHash('sha256');
      await download({ client, uri: '/fw/main', blockSize_bytes: 1024, window, onBlock: (_n, b) => void hash.update(b) });
      const elapsed = performance.now() - start;
      client.close();
      if (hash.digest('hex') !== sha) throw new Error('benchNet: wrong bytes downloaded');
      return elapsed;
    };
    const libcoap = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const start = performance.now();
        const out = join(dir, 'out.bin');
        const c = spawn('coap-client-openssl', ['-b', '1024', '-u', 'bench', '-k', server.key, '-o', out, `coaps://127.0.0.1:${server.dtlsPort}/fw/main`], { stdio: 'ignore' });
        c.on('close', (code) => (code === 0 ? resolve(performance.now() - start) : reject(new Error(`coap-client-openssl exit ${code}`))));
      });
    const times: Record<string, number[]> = { w1: [], w8: [], w8lib: [], libcoap: [] };
    await ours(1, 0); // warm-up
    await libcoap();
    for (let r = 0; r < RUNS; r++) {
      times.libcoap?.push(await libcoap());
      times.w1?.push(await ours(1, r + 1));
      times.w8?.push(await ours(8, r + 100));
      times.w8lib?.push(await ours(8, r + 200, false));
    }
    const ref = median(times.libcoap ?? []);
    const w1 = median(times.w1 ?? []);
    const w8 = median(times.w8 ?? []);
    const w8lib = median(times.w8lib ?? []);
    return [
      { name: 'coap-client-openssl -b 1024, 256 KiB over DTLS (whole process)', value: ref, unit: 'ms' },
      { name: 'ota-sim download, block 1024, window 1 (incl. handshake)', value: w1, unit: 'ms', ratio: `${(w1 / ref).toFixed(2)} × libcoap's time` },
      { name: 'ota-sim download, block 1024, window 8 (incl. handshake)', value: w8, unit: 'ms', ratio: `${(w8 / ref).toFixed(2)} × libcoap's time` },
      { name: "  the same on node-dtls-client's record layer", value: w8lib, unit: 'ms', ratio: `${(w8lib / ref).toFixed(2)} × libcoap's time` },
    ];
  } finally {
    server.stop();
  }
}
