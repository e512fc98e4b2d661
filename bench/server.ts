/**
 * Update server benchmark: blocks served per second (1 KiB blocks over DTLS) with N concurrent
 * downloaders (default 1 000, OTA_SIM_BENCH_DEVICES overrides), each with its own DTLS session
 * and one CON request in flight, and the server's heap per connected device (session + Observe
 * registration), measured in this process.
 */
import { performance } from 'node:perf_hooks';
import { DtlsPskClient } from '../src/dtls/index.js';
import { boardTlv, signImage } from '../src/image/index.js';
import { UpdateServer } from '../src/server/index.js';
import type { BenchResult } from './harness.js';

function req(mid: number, token: number, path: string[], block: number | null, observe: boolean): Buffer {
  const out: number[] = [0x42, 0x01, mid >> 8, mid & 0xff, token >> 8, token & 0xff];
  let prev = 0;
  const opts: [number, Buffer][] = [];
  if (observe) opts.push([6, Buffer.alloc(0)]);
  for (const p of path) opts.push([11, Buffer.from(p)]);
  if (block !== null) {
    const v = block * 16 + 6;
    opts.push([23, v < 256 ? Buffer.of(v) : Buffer.of(v >> 8, v & 0xff)]);
  }
  for (const [num, value] of opts) {
    const d = num - prev;
    out.push((d << 4) | value.length, ...value);
    prev = num;
  }
  return Buffer.from(out);
}

export async function benchServer(): Promise<BenchResult[]> {
  const devices = Number(process.env.OTA_SIM_BENCH_DEVICES ?? 1000);
  const duration_ms = 3000;
  const list = Array.from({ length: devices }, (_, i) => ({ identity: `bench-${i}`, key: `key-${i}`, board: 'nrf52840', tags: [] }));
  const server = await UpdateServer.start({ devices: list, port: null, dtls: { maxSessions: devices + 10 } });
  const fw = signImage(new Uint8Array(64 * 1024).fill(7), { headerSize_bytes: 0x200, padHeader: true, version: '1.0.0', customTlvs: [boardTlv('nrf52840')] });
  const art = await server.model.addArtifact({ package: 'main', bytes: fw });
  await server.model.createRelease({ artifacts: [art.id] });
  const blocks = Math.ceil(fw.length / 1024);
  const path = art.uri.split('/').filter((s) => s !== '');
  const port = server.addresses().dtls?.port ?? 0;
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const clients: DtlsPskClient[] = [];
  for (let i = 0; i < devices; i += 50) {
    const batch = await Promise.all(list.slice(i, i + 50).map((d) => DtlsPskClient.connect({ host: '127.0.0.1', port, identity: d.identity, psk: Buffer.from(d.key) })));
    clients.push(...batch);
  }
  // every device observes its manifest
  await Promise.all(
    clients.map(
      (c, i) =>
        new Promise<void>((resolve) => {
          c.once('message', () => resolve());
          c.send(req(1, i & 0xffff, ['.u', 'desired'], null, true));
        }),
    ),
  );
  global.gc?.();
  const heapConnected = process.memoryUsage().heapUsed;
  // downloads: each client keeps one request in flight
  let served = 0;
  let running = true;
  const start = performance.now();
  await Promise.all(
    clients.map(
      (c, i) =>
        new Promise<void>((resolve) => {
          let mid = 2;
          let block = i % blocks;
          const next = (): void => {
            if (!running) return resolve();
            mid = (mid + 1) & 0xffff;
            block = (block + 1) % blocks;
            c.send(req(mid, i & 0xffff, path, block, false));
          };
          c.on('message', () => {
            served++;
            next();
          });
          next();
          setTimeout(() => {
            running = false;
          }, duration_ms);
        }),
    ),
  );
  const elapsed_s = (performance.now() - start) / 1000;
  for (const c of clients) c.close();
  await server.close();
  return [
    { name: `server: 1 KiB blocks/s over DTLS, ${devices} concurrent downloaders`, value: served / elapsed_s, unit: 'blocks/s' },
    { name: `server: heap per connected device (DTLS session + Observe), ${devices} devices`, value: (heapConnected - heapBefore) / devices, unit: 'bytes' },
  ];
}
