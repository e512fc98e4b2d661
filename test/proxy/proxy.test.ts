/**
 * The chaos proxy's time-placed faults and its bounds, on real UDP through 127.0.0.1: blackhole
 * windows (scheduled and manual), NAT rebinding (new source port at the server, replies to the old
 * one dropped), replay (same seed → the same fault log, another seed → another), labels, limits
 * (held datagrams, flows, idle expiry) and the refusal of non-loopback addresses and taken ports.
 */
import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { EnvironmentError, InputError } from '../../src/errors.js';
import { ChaosProxy } from '../../src/net/proxy/index.js';
import type { ChaosSchedule, ProxyFault } from '../../src/net/proxy/index.js';
import { barrier, expectedDecisions, learnUpstreamPort, payload, peer, send, sendSequence, setup, waitFor } from './helpers.js';

describe('blackhole windows', () => {
  it('drop everything inside the window, both ways, and nothing outside it', async () => {
    const clock = new ManualClock();
    const ctx = await setup({ seed: 1, clock, schedule: { blackholes: [{ at_ms: 1000, for_ms: 500 }] } });
    send(ctx.client, ctx.proxy.address.port, 'hello');
    const upstream = await learnUpstreamPort(ctx);
    ctx.server.inbox.length = 0;
    const batch = async (first: number): Promise<void> => {
      await sendSequence(ctx, 'up', 5, undefined, first);
      await sendSequence(ctx, 'down', 5, upstream, first);
    };
    await batch(0); // t = 0
    clock.advance(1000);
    await batch(5); // t = 1000: window opens
    clock.advance(499);
    await batch(10); // t = 1499: still inside
    clock.advance(1);
    await batch(15); // t = 1500: closed again
    await barrier(ctx, 'up');
    await barrier(ctx, 'down', upstream);
    const passed = [0, 1, 2, 3, 4, 15, 16, 17, 18, 19];
    expect(ctx.server.inbox.map((m) => m.data.toString())).toEqual(passed.map((i) => payload('up', i).toString()));
    expect(ctx.client.inbox.map((m) => m.data.toString())).toEqual(passed.map((i) => payload('down', i).toString()));
    const holes = ctx.proxy.faults.filter((f) => f.kind === 'blackhole');
    expect(holes.length).toBe(20);
    expect(holes.every((f) => f.at_ms >= 1000 && f.at_ms < 1500)).toBe(true);
    expect(ctx.proxy.faults.filter((f) => f.kind !== 'blackhole')).toEqual([]);
  });

  it('blackhole(for_ms) takes the link down from now for that long', async () => {
    const clock = new ManualClock();
    const ctx = await setup({ seed: 1, clock });
    clock.advance(5000);
    ctx.proxy.blackhole(60_000);
    await sendSequence(ctx, 'up', 3);
    clock.advance(59_999);
    await sendSequence(ctx, 'up', 3, undefined, 3);
    clock.advance(1);
    await sendSequence(ctx, 'up', 3, undefined, 6);
    await barrier(ctx, 'up');
    expect(ctx.server.inbox.map((m) => m.data.toString())).toEqual([6, 7, 8].map((i) => payload('up', i).toString()));
    expect(ctx.proxy.stats().faults.blackhole).toBe(6);
  });
});

describe('blackhole and delay', () => {
  it('a datagram held for its delay is lost if its time comes while the link is down', async () => {
    const clock = new ManualClock();
    const ctx = await setup({ seed: 1, clock, schedule: { delay_ms: 100 } });
    await sendSequence(ctx, 'up', 2); // due at t = 100
    clock.advance(50);
    ctx.proxy.blackhole(100); // down 50..150
    clock.advance(50); // t = 100: both due, inside the window
    clock.advance(50);
    await sendSequence(ctx, 'up', 1, undefined, 2); // t = 150: due at 250
    clock.advance(100);
    await barrier(ctx, 'up');
    expect(ctx.server.inbox.map((m) => m.data.toString())).toEqual([payload('up', 2).toString()]);
    expect(ctx.proxy.faults.map((f) => [f.kind, f.index, f.at_ms])).toEqual([
      ['delay', 0, 0],
      ['delay', 1, 0],
      ['blackhole', 0, 100],
      ['blackhole', 1, 100],
      ['delay', 2, 150],
    ]);
  });
});

describe('NAT rebinding', () => {
  it('rebind(): the server sees a new source port, and replies to the old one are dropped', async () => {
    const ctx = await setup({ seed: 1, staleLinger_ms: 600_000 });
    send(ctx.client, ctx.proxy.address.port, 'a');
    const oldPort = await learnUpstreamPort(ctx);
    ctx.proxy.rebind();
    send(ctx.client, ctx.proxy.address.port, 'b');
    await waitFor(() => ctx.server.inbox.length === 2, 'b at the server');
    const newPort = ctx.server.inbox[1]!.port;
    expect(newPort).not.toBe(oldPort);
    expect(ctx.server.inbox.map((m) => m.data.toString())).toEqual(['a', 'b']);

    send(ctx.server, oldPort, 'to-old');
    await waitFor(() => ctx.proxy.stats().dropped?.stale === 1, 'the reply to the old port to be dropped');
    send(ctx.server, newPort, 'to-new');
    await waitFor(() => ctx.client.inbox.length > 0, 'the reply to the new port');
    await barrier(ctx, 'down', newPort);
    expect(ctx.client.inbox.map((m) => m.data.toString())).toEqual(['to-new']);
    expect(ctx.proxy.stats().rebinds).toBe(1);
    expect(ctx.proxy.faults).toEqual([expect.objectContaining({ kind: 'rebind', flow: 'flow-0', direction: null, index: null })]);
  });

  it('rebindEvery_ms and rebindAt_ms rebind on the simulated clock', async () => {
    const clock = new ManualClock();
    const ctx = await setup({ seed: 1, clock, schedule: { rebindEvery_ms: 10_000, rebindAt_ms: [2500] } });
    const ports: number[] = [];
    const probe = async (text: string): Promise<void> => {
      const n = ctx.server.inbox.length;
      send(ctx.client, ctx.proxy.address.port, text);
      await waitFor(() => ctx.server.inbox.length > n, `${text} at the server`);
      ports.push(ctx.server.inbox[n]!.port);
    };
    await probe('t0');
    clock.advance(2499);
    await probe('t2499');
    clock.advance(1); // the rebindAt
    await probe('t2500');
    clock.advance(7499);
    await probe('t9999');
    clock.advance(1); // the first rebindEvery
    await probe('t10000');
    clock.advance(10_000);
    await probe('t20000');
    expect(ports[0]).toBe(ports[1]);
    expect(ports[2]).not.toBe(ports[1]);
    expect(ports[3]).toBe(ports[2]);
    expect(ports[4]).not.toBe(ports[3]);
    expect(ports[5]).not.toBe(ports[4]);
    expect(ctx.proxy.stats().rebinds).toBe(3);
    expect(ctx.proxy.faults.map((f) => [f.kind, f.at_ms])).toEqual([
      ['rebind', 2500],
      ['rebind', 10_000],
      ['rebind', 20_000],
    ]);
  });
});

describe('replay', () => {
  const schedule: ChaosSchedule = { loss: 0.1, burst: { enter: 0.05, exit: 0.5 }, duplicate: 0.1, reorder: 0.1, corrupt: 0.1, delay_ms: 0 };

  async function faultLog(seed: number): Promise<{ faults: ProxyFault[]; received: string[] }> {
    const clock = new ManualClock();
    const seen: ProxyFault[] = [];
    const ctx = await setup({ seed, clock, schedule, onFault: (f) => seen.push(f) });
    await sendSequence(ctx, 'up', 80);
    const upstream = await learnUpstreamPort(ctx).catch(() => null);
    if (upstream !== null) await sendSequence(ctx, 'down', 80, upstream);
    clock.advance(10_000);
    expect(seen).toEqual(ctx.proxy.faults); // onFault saw exactly the log
    return { faults: ctx.proxy.faults, received: ctx.server.inbox.map((m) => m.data.toString('hex')) };
  }

  it('the same seed gives the same fault log for the same datagrams; another seed another', async () => {
    const a = await faultLog(42);
    const b = await faultLog(42);
    const c = await faultLog(43);
    expect(a.faults.length).toBeGreaterThan(20);
    expect(b.faults).toEqual(a.faults);
    expect(c.faults).not.toEqual(a.faults);
    // the log is the schedule function's: up-direction faults are where the decisions put them
    const d = expectedDecisions(42, 'flow-0', 'up', 80, schedule);
    const lost = d.filter((x) => x.drop !== null).map((x) => [x.index, x.drop]);
    expect(a.faults.filter((f) => f.direction === 'up' && (f.kind === 'loss' || f.kind === 'burst-loss')).map((f) => [f.index, f.kind])).toEqual(lost);
  });

  it('a label names the flow and keys its decisions; every client address of it shares one index sequence', async () => {
    const clock = new ManualClock();
    const schedule2: ChaosSchedule = { loss: 0.4 };
    const ctx = await setup({ seed: 9, clock, label: 'dev-7', schedule: schedule2 });
    await sendSequence(ctx, 'up', 20);
    const second = await peer();
    try {
      for (let i = 20; i < 40; i++) {
        const seen = ctx.proxy.stats().datagrams.up;
        send(second, ctx.proxy.address.port, payload('up', i));
        await waitFor(() => ctx.proxy.stats().datagrams.up > seen, `datagram ${i}`);
      }
    } finally {
      await second.close();
    }
    const lost = expectedDecisions(9, 'dev-7', 'up', 40, schedule2).filter((x) => x.drop).map((x) => x.index);
    expect(ctx.proxy.faults.map((f) => [f.flow, f.index])).toEqual(lost.map((i) => ['dev-7', i]));
    expect(lost.some((i) => i >= 20)).toBe(true);
    expect(ctx.proxy.stats().flows).toBe(2);
  });
});

describe('bounds', () => {
  it('maxHeld: datagrams beyond it are dropped and counted, not queued', async () => {
    const clock = new ManualClock();
    const ctx = await setup({ seed: 1, clock, maxHeld: 3, schedule: { delay_ms: 100 } });
    await sendSequence(ctx, 'up', 5);
    expect(ctx.proxy.stats().held).toBe(3);
    expect(ctx.proxy.stats().dropped?.overflow).toBe(2);
    clock.advance(100);
    await barrier(ctx, 'up');
    expect(ctx.server.inbox.map((m) => m.data.toString())).toEqual([0, 1, 2].map((i) => payload('up', i).toString()));
  });

  it('maxFlows: a client beyond it is refused; an idle flow expires and its client comes back as a new flow', async () => {
    const clock = new ManualClock();
    const ctx = await setup({ seed: 1, clock, maxFlows: 1, idleTimeout_ms: 1000 });
    send(ctx.client, ctx.proxy.address.port, 'one');
    const firstPort = await learnUpstreamPort(ctx);
    const other = await peer();
    try {
      send(other, ctx.proxy.address.port, 'two');
      await waitFor(() => ctx.proxy.stats().dropped?.flowLimit === 1, 'the second client to be refused');
      clock.advance(1000); // the first flow idles out (the sweep runs every idleTimeout/2)
      expect(ctx.proxy.stats().activeFlows).toBe(0);
      send(ctx.client, ctx.proxy.address.port, 'again');
      await waitFor(() => ctx.server.inbox.length === 2, 'again at the server');
    } finally {
      await other.close();
    }
    expect(ctx.server.inbox.map((m) => m.data.toString())).toEqual(['one', 'again']);
    expect(ctx.server.inbox[1]!.port).not.toBe(firstPort);
    expect(ctx.proxy.stats().flows).toBe(2);
  });
});

describe('refusals', () => {
  it('a non-loopback listen or target address is an InputError naming the field', async () => {
    await expect(ChaosProxy.start({ seed: 1, target: { host: '10.0.0.1', port: 5683 } })).rejects.toThrow(/target\.host: "10\.0\.0\.1" is not a loopback/);
    await expect(ChaosProxy.start({ seed: 1, listen: { host: '0.0.0.0', port: 0 }, target: { host: '127.0.0.1', port: 5683 } })).rejects.toThrow(InputError);
    await expect(ChaosProxy.start({ seed: 1, target: { host: '127.0.0.1', port: 5683 }, schedule: { loss: 1.5 } })).rejects.toThrow(/schedule\.loss: expected a probability/);
  });

  it('a taken listen port is an EnvironmentError saying so', async () => {
    const taken = createSocket('udp4');
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', () => r()));
    try {
      const err = await ChaosProxy.start({ seed: 1, listen: { host: '127.0.0.1', port: taken.address().port }, target: { host: '127.0.0.1', port: 5683 } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EnvironmentError);
      expect((err as Error).message).toMatch(/already in use/);
    } finally {
      taken.close();
    }
  });
});
