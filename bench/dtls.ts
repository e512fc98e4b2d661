/**
 * DTLS server benchmark: handshakes per second, encrypted 1 KiB datagrams per second both ways,
 * and memory per idle session. The server runs on the main thread; the clients run in a worker
 * thread (this same file), so the server's figures are its own: "per server core" divides by the
 * main thread's busy time (event-loop utilisation), not by wall time. The reference is plain UDP
 * echo of the same datagrams between the same two threads.
 * The device's handshake (DtlsTransport.open, both backends) is measured the same way from the
 * client side, in a child process: its CPU time per handshake, 'ota-sim' beside node-dtls-client.
 */
import { fork } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { DtlsPskClient } from '../src/dtls/client.js';
import { ScaledClock } from '../src/clock.js';
import { DtlsServer } from '../src/dtls/index.js';
import { DtlsTransport } from '../src/net/dtls-transport.js';
import type { DtlsHandshakeBackend } from '../src/net/dtls-transport.js';
import type { BenchResult } from './harness.js';

const PSK = Buffer.from('bench-psk-0123456789');
const PAYLOAD_BYTES = 1024;

type Task =
  | { kind: 'handshakes'; port: number; count: number; concurrency: number }
  | { kind: 'echo'; port: number; clients: number; window: number; duration_ms: number; dtls: boolean }
  | { kind: 'idle'; port: number; count: number }
  | { kind: 'client-handshakes'; port: number; count: number; concurrency: number; backend: DtlsHandshakeBackend };

async function connect(port: number, i: number): Promise<DtlsPskClient> {
  return DtlsPskClient.connect({ host: '127.0.0.1', port, identity: `bench-${i}`, psk: PSK, retransmit: { initial_ms: 1000, max_ms: 4000, maxRetransmissions: 10 } });
}

/** Worker side: play the clients. */
async function runTask(task: Task): Promise<number> {
  if (task.kind === 'client-handshakes') {
    // device side: DtlsTransport.open + close; the result is this thread's busy ms per handshake
    const clock = new ScaledClock(1);
    const one = async (i: number): Promise<void> => {
      const t = await DtlsTransport.open({ host: '127.0.0.1', port: task.port, identity: `bench-${i}`, psk: PSK, clock, handshake: task.backend, handshakeTimeout_ms: 4000 });
      t.close();
    };
    for (let i = 0; i < 20; i++) await one(i); // warm-up
    const cpu0 = process.cpuUsage(); // this runs in a child process: its CPU time is the client's alone
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < task.count) await one(next++);
    };
    await Promise.all(Array.from({ length: task.concurrency }, lane));
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / 1000 / task.count;
  }
  if (task.kind === 'handshakes') {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < task.count) {
        const c = await connect(task.port, next++);
        c.close();
      }
    };
    await Promise.all(Array.from({ length: task.concurrency }, lane));
    return task.count;
  }
  if (task.kind === 'idle') {
    const clients = await Promise.all(Array.from({ length: task.count }, (_, i) => connect(task.port, i)));
    parentPort?.postMessage({ ready: true });
    await new Promise<void>((r) => parentPort?.once('message', () => r()));
    for (const c of clients) c.close();
    return clients.length;
  }
  // echo: keep `window` datagrams in flight per client for duration_ms; count echoes
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x5a);
  let echoes = 0;
  let stop = false;
  const senders: { send: () => void; close: () => void }[] = [];
  for (let i = 0; i < task.clients; i++) {
    if (task.dtls) {
      const c = await connect(task.port, i);
      c.on('message', () => {
        echoes++;
        if (!stop) c.send(payload);
      });
      senders.push({ send: () => c.send(payload), close: () => c.close() });
    } else {
      const s = createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      s.on('message', () => {
        echoes++;
        if (!stop) s.send(payload, task.port, '127.0.0.1');
      });
      senders.push({ send: () => s.send(payload, task.port, '127.0.0.1'), close: () => s.close() });
    }
  }
  const start = performance.now();
  for (const s of senders) for (let w = 0; w < task.window; w++) s.send();
  await new Promise((r) => setTimeout(r, task.duration_ms));
  stop = true;
  const elapsed_s = (performance.now() - start) / 1000;
  for (const s of senders) s.close();
  return echoes / elapsed_s;
}

if (!isMainThread && (workerData as { dtlsBench?: Task } | null)?.dtlsBench) {
  const task = (workerData as { dtlsBench: Task }).dtlsBench;
  runTask(task).then(
    (value) => parentPort?.postMessage({ value }),
    (e: unknown) => parentPort?.postMessage({ error: String(e) }),
  );
}

// the device-handshake figure runs its clients in a child process, whose CPU time is theirs alone
// (a worker's event-loop busy time also counts the time a loaded machine does not schedule it)
const CHILD_TASK_ENV = 'OTA_SIM_DTLS_BENCH_TASK';
const childTask = process.env[CHILD_TASK_ENV];
if (isMainThread && childTask !== undefined && process.send) {
  runTask(JSON.parse(childTask) as Task).then(
    (value) => process.send?.({ value }, () => process.exit(0)),
    (e: unknown) => process.send?.({ error: String(e) }, () => process.exit(1)),
  );
}

function runInChild(task: Task): Promise<number> {
  const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, [CHILD_TASK_ENV]: JSON.stringify(task) }, stdio: 'inherit' });
  return new Promise<number>((resolve, reject) => {
    child.on('message', (m: { value?: number; error?: string }) => {
      if (m.error !== undefined) reject(new Error(m.error));
      else if (m.value !== undefined) resolve(m.value);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`handshake bench child exited with ${String(code)}`));
    });
  });
}

function startWorker(task: Task, onReady?: () => void): { worker: Worker; result: Promise<number> } {
  const worker = new Worker(new URL(import.meta.url), { workerData: { dtlsBench: task } });
  const result = new Promise<number>((resolve, reject) => {
    worker.on('message', (m: { value?: number; error?: string; ready?: boolean }) => {
      if (m.ready) onReady?.();
      else if (m.error !== undefined) reject(new Error(m.error));
      else if (m.value !== undefined) resolve(m.value);
    });
    worker.on('error', reject);
  });
  return { worker, result };
}

async function withServer<T>(fn: (server: DtlsServer, port: number) => Promise<T>): Promise<T> {
  const server = new DtlsServer({ psk: () => PSK, maxHandshakes: 5000, maxSessions: 20_000 });
  server.on('message', (d, _r, s) => s.send(d));
  const { port } = await server.listen();
  try {
    return await fn(server, port);
  } finally {
    await server.close();
  }
}

/** JS heap plus ArrayBuffer memory (keys and identities are Buffers, which live outside the heap). */
function memory_bytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function gc(): void {
  setFlagsFromString('--expose-gc');
  const collect = runInNewContext('gc') as (() => void) | undefined;
  collect?.();
  collect?.();
}

export async function benchDtls(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];

  // Handshakes: 2,000 with 32 in flight, cookie exchange included.
  const HANDSHAKES = 2000;
  await withServer(async (_server, port) => {
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    const { worker, result } = startWorker({ kind: 'handshakes', port, count: HANDSHAKES, concurrency: 32 });
    await result;
    const wall_s = (performance.now() - t0) / 1000;
    const elu = performance.eventLoopUtilization(elu0);
    await worker.terminate();
    const busy_s = elu.active / 1000;
    results.push(
      { name: 'DTLS handshakes/s (wall, clients in a second thread)', value: HANDSHAKES / wall_s, unit: 'hs/s' },
      { name: 'DTLS handshakes/s per server core (busy time)', value: HANDSHAKES / busy_s, unit: 'hs/s', ratio: `server thread ${(elu.utilization * 100).toFixed(0)}% busy` },
    );
  });

  // The device's handshake, client side: DtlsTransport.open with each backend (cookie exchange included).
  const perBackend = new Map<DtlsHandshakeBackend, number>();
  for (const backend of ['node-dtls-client', 'ota-sim'] as const) {
    await withServer(async (_server, port) => {
      perBackend.set(backend, await runInChild({ kind: 'client-handshakes', port, count: 500, concurrency: 8, backend }));
    });
  }
  const libraryHs = perBackend.get('node-dtls-client') ?? Number.NaN;
  const leanHs = perBackend.get('ota-sim') ?? Number.NaN;
  results.push(
    { name: 'device handshake, node-dtls-client: client CPU time', value: libraryHs, unit: 'ms/hs' },
    { name: "device handshake, 'ota-sim' (default): client CPU time", value: leanHs, unit: 'ms/hs', ratio: `${(libraryHs / leanHs).toFixed(1)}x less than node-dtls-client` },
  );

  // Encrypted 1 KiB datagrams both ways, against plain UDP echo between the same threads.
  const echo = { clients: 8, window: 8, duration_ms: 2000 };
  let udpRate = 0;
  {
    const s = createSocket('udp4');
    s.on('message', (m, r) => s.send(m, r.port, r.address));
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const { worker, result } = startWorker({ kind: 'echo', port: s.address().port, dtls: false, ...echo });
    udpRate = (await result) * 2;
    await worker.terminate();
    s.close();
  }
  await withServer(async (_server, port) => {
    const { worker, result } = startWorker({ kind: 'echo', port, dtls: true, ...echo });
    const rate = (await result) * 2;
    await worker.terminate();
    results.push(
      { name: 'plain UDP datagrams/s, 1 KiB, both ways (reference)', value: udpRate, unit: 'dgram/s' },
      { name: 'DTLS datagrams/s, 1 KiB CCM_8, both ways', value: rate, unit: 'dgram/s', ratio: `${(rate / udpRate).toFixed(2)}x plain UDP` },
    );
  });

  // Heap per idle session: the clients live in the worker, so the main heap holds only the server.
  const IDLE = 2000;
  await withServer(async (server, port) => {
    gc();
    const before = memory_bytes();
    let ready = (): void => {};
    const readyP = new Promise<void>((r) => (ready = r));
    const { worker, result } = startWorker({ kind: 'idle', port, count: IDLE }, () => ready());
    await readyP;
    while (server.stats().sessions < IDLE) await new Promise((r) => setTimeout(r, 10));
    gc();
    const after = memory_bytes();
    worker.postMessage('stop');
    await result;
    await worker.terminate();
    const perSession = (after - before) / IDLE;
    results.push({ name: 'memory per idle DTLS session (heap + buffers)', value: perSession, unit: 'bytes', ratio: `${((perSession / 4096) * 100).toFixed(0)}% of the 4 KiB target` });
  });

  return results;
}
