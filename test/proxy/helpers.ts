/**
 * Shared set-up for the chaos proxy tests: plain UDP peers on 127.0.0.1:0, a proxy between them,
 * datagrams sent one at a time (each waits until the proxy has seen it, so indices are the send
 * order), and a barrier: with the schedule cleared, one last datagram passes untouched, and since
 * the proxy forwards in order over loopback, everything forwarded before it has arrived when it does.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { afterEach } from 'vitest';
import { ChaosDecider, ChaosProxy } from '../../src/net/proxy/index.js';
import type { ChaosProxyOptions, ChaosSchedule, DatagramDecision, ProxyDirection } from '../../src/net/proxy/index.js';

export interface Peer {
  socket: Socket;
  port: number;
  inbox: { data: Buffer; port: number }[];
  close(): Promise<void>;
}

export async function peer(onMessage?: (p: Peer, data: Buffer, port: number) => void): Promise<Peer> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const p: Peer = {
    socket,
    port: socket.address().port,
    inbox: [],
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
  socket.on('message', (data, rinfo) => {
    p.inbox.push({ data, port: rinfo.port });
    onMessage?.(p, data, rinfo.port);
  });
  return p;
}

export function send(p: Peer, port: number, data: Buffer | string): void {
  p.socket.send(typeof data === 'string' ? Buffer.from(data) : data, port, '127.0.0.1');
}

/** Wait (real time, polling) until `pred` holds; throws naming `what` after `timeout_ms`. */
export async function waitFor(pred: () => boolean, what: string, timeout_ms = 30_000): Promise<void> {
  const start = performance.now();
  while (!pred()) {
    if (performance.now() - start > timeout_ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

let cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

/** A proxy in front of a plain UDP server, and a client; both closed after the test. */
export async function setup(options: Omit<ChaosProxyOptions, 'target'>): Promise<{ proxy: ChaosProxy; server: Peer; client: Peer }> {
  const server = await peer();
  const client = await peer();
  const proxy = await ChaosProxy.start({ ...options, target: { host: '127.0.0.1', port: server.port } });
  onCleanup(() => client.close());
  onCleanup(() => server.close());
  onCleanup(() => proxy.close());
  return { proxy, server, client };
}

export function payload(direction: ProxyDirection, i: number): Buffer {
  return Buffer.from(`${direction}:${String(i).padStart(4, '0')}:the quick brown fox`);
}

/** Send `n` datagrams in `direction`, each after the proxy has seen the one before it. */
export async function sendSequence(
  ctx: { proxy: ChaosProxy; server: Peer; client: Peer },
  direction: ProxyDirection,
  n: number,
  upstreamPort?: number,
  first = 0,
): Promise<void> {
  const serverSide = direction === 'down' ? (upstreamPort ?? (await learnUpstreamPort(ctx))) : 0;
  for (let i = first; i < first + n; i++) {
    const seen = ctx.proxy.stats().datagrams[direction];
    if (direction === 'up') send(ctx.client, ctx.proxy.address.port, payload('up', i));
    else send(ctx.server, serverSide, payload('down', i));
    await waitFor(() => ctx.proxy.stats().datagrams[direction] > seen, `the proxy to see datagram ${i}`);
  }
}

/** The flow's upstream port as the server sees it (the client must have sent something). */
export async function learnUpstreamPort(ctx: { server: Peer }): Promise<number> {
  await waitFor(() => ctx.server.inbox.length > 0, 'a first datagram at the server');
  return ctx.server.inbox[ctx.server.inbox.length - 1]!.port;
}

/**
 * Clear the probabilistic faults and send one marker in `direction`; returns once it arrived, so
 * every datagram forwarded before it has arrived too. The marker is removed from the inbox.
 */
export async function barrier(ctx: { proxy: ChaosProxy; server: Peer; client: Peer }, direction: ProxyDirection, upstreamPort?: number): Promise<void> {
  ctx.proxy.setSchedule({ loss: 0, burst: null, delay_ms: 0, jitter_ms: 0, duplicate: 0, reorder: 0, corrupt: 0 });
  const marker = Buffer.from(`barrier-${direction}-${ctx.proxy.stats().datagrams[direction]}`);
  const inbox = direction === 'up' ? ctx.server.inbox : ctx.client.inbox;
  if (direction === 'up') send(ctx.client, ctx.proxy.address.port, marker);
  else send(ctx.server, upstreamPort ?? (await learnUpstreamPort(ctx)), marker);
  await waitFor(() => inbox.some((m) => m.data.equals(marker)), `the barrier datagram (${direction})`);
  const at = inbox.findIndex((m) => m.data.equals(marker));
  inbox.splice(at, 1);
}

/** The decisions the proxy must have made for the first `n` datagrams of a flow and direction. */
export function expectedDecisions(seed: number, label: string, direction: ProxyDirection, n: number, schedule: ChaosSchedule): DatagramDecision[] {
  const decider = new ChaosDecider(seed, label);
  return Array.from({ length: n }, () => decider.decide(direction, schedule));
}
