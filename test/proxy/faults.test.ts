/**
 * Each fault kind of the chaos proxy, end to end on real UDP through 127.0.0.1: what arrives at
 * the other side is exactly what the seeded schedule dictates, recomputed here with the same
 * decision function (ChaosDecider) — not a statistical check. Both directions are exercised.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { applyCorruption } from '../../src/net/proxy/index.js';
import type { ChaosSchedule, ProxyDirection } from '../../src/net/proxy/index.js';
import { barrier, expectedDecisions, learnUpstreamPort, payload, send, sendSequence, setup } from './helpers.js';

const N = 120;

/** What the receiving side must see, in order, for the first N datagrams (no delay in play). */
function expectedArrivals(seed: number, direction: ProxyDirection, schedule: ChaosSchedule): Buffer[] {
  const out: Buffer[] = [];
  let held: Buffer[] = [];
  for (const d of expectedDecisions(seed, 'flow-0', direction, N, schedule)) {
    if (d.drop) continue;
    const bytes = d.corruptSeed === null ? payload(direction, d.index) : applyCorruption(payload(direction, d.index), d.corruptSeed).bytes;
    const copies = d.duplicate ? [bytes, bytes] : [bytes];
    if (d.reorder) {
      held.push(...copies);
      continue;
    }
    out.push(...copies, ...held);
    held = [];
  }
  return [...out, ...held]; // the last held ones go out on their timeout
}

async function run(direction: ProxyDirection, schedule: ChaosSchedule, seed: number): Promise<{ got: Buffer[]; ctx: Awaited<ReturnType<typeof setup>>; clock: ManualClock }> {
  const clock = new ManualClock();
  const ctx = await setup({ seed, clock, schedule: { ...schedule, directions: [direction] } });
  let upstream: number | undefined;
  if (direction === 'down') {
    send(ctx.client, ctx.proxy.address.port, 'hello'); // opens the flow; up is not faulted here
    upstream = await learnUpstreamPort(ctx);
    ctx.server.inbox.length = 0;
  }
  await sendSequence(ctx, direction, N, upstream);
  clock.advance(10_000); // reorder timeouts: the last held datagrams go out
  await barrier(ctx, direction, upstream);
  const inbox = direction === 'up' ? ctx.server.inbox : ctx.client.inbox;
  return { got: inbox.map((m) => m.data), ctx, clock };
}

function hex(list: Buffer[]): string[] {
  return list.map((b) => b.toString('hex'));
}

describe.each(['up', 'down'] as const)('each fault kind, %s', (direction) => {
  it('loss: exactly the datagrams the seed drops are missing', async () => {
    const schedule = { loss: 0.3 };
    const { got, ctx } = await run(direction, schedule, 11);
    const expected = expectedArrivals(11, direction, schedule);
    expect(hex(got)).toEqual(hex(expected));
    const lost = N - expected.length;
    expect(lost).toBeGreaterThan(10);
    expect(ctx.proxy.stats().faults.loss).toBe(lost);
    expect(ctx.proxy.faults.filter((f) => f.kind === 'loss').every((f) => f.direction === direction && f.flow === 'flow-0')).toBe(true);
  });

  it('burst loss (Gilbert–Elliott): losses come in the runs the seed dictates', async () => {
    const schedule = { burst: { enter: 0.08, exit: 0.35 } };
    const { got, ctx } = await run(direction, schedule, 12);
    const decisions = expectedDecisions(12, 'flow-0', direction, N, schedule);
    expect(hex(got)).toEqual(hex(expectedArrivals(12, direction, schedule)));
    const lost = decisions.filter((d) => d.drop === 'burst-loss').map((d) => d.index);
    expect(lost.length).toBeGreaterThan(3);
    // bursty: at least one run of two or more consecutive losses
    expect(lost.some((i, k) => lost[k + 1] === i + 1)).toBe(true);
    expect(ctx.proxy.faults.filter((f) => f.kind === 'burst-loss').map((f) => f.index)).toEqual(lost);
  });

  it('duplicate: the chosen datagrams arrive twice, the others once', async () => {
    const schedule = { duplicate: 0.25 };
    const { got, ctx } = await run(direction, schedule, 13);
    const expected = expectedArrivals(13, direction, schedule);
    expect(hex(got)).toEqual(hex(expected));
    expect(expected.length - N).toBeGreaterThan(10);
    expect(ctx.proxy.stats().faults.duplicate).toBe(expected.length - N);
    expect(ctx.proxy.stats().forwarded[direction]).toBe(expected.length + 1); // + the barrier
  });

  it('reorder: a chosen datagram arrives right after the next one', async () => {
    const schedule = { reorder: 0.2 };
    const { got, ctx } = await run(direction, schedule, 14);
    const expected = expectedArrivals(14, direction, schedule);
    expect(got.length).toBe(N);
    expect(hex(got)).toEqual(hex(expected));
    const inOrder = [...Array(N).keys()].map((i) => payload(direction, i));
    expect(hex(got)).not.toEqual(hex(inOrder));
    expect(ctx.proxy.stats().faults.reorder).toBeGreaterThan(10);
  });

  it('corrupt: 1..3 bytes flipped in exactly the chosen datagrams, length unchanged', async () => {
    const schedule = { corrupt: 0.3 };
    const { got, ctx } = await run(direction, schedule, 15);
    expect(hex(got)).toEqual(hex(expectedArrivals(15, direction, schedule)));
    let corrupted = 0;
    got.forEach((b, i) => {
      const original = payload(direction, i);
      expect(b.length).toBe(original.length);
      const diff = [...b].filter((x, k) => x !== original[k]).length;
      expect(diff).toBeLessThanOrEqual(3);
      if (diff > 0) corrupted++;
    });
    expect(corrupted).toBeGreaterThan(10);
    expect(ctx.proxy.stats().faults.corrupt).toBe(corrupted);
  });

  it('delay and jitter: nothing arrives before its simulated time, then all in delay order', async () => {
    const schedule: ChaosSchedule = { delay_ms: 400, jitter_ms: 300, directions: [direction] };
    const clock = new ManualClock();
    const ctx = await setup({ seed: 16, clock, schedule });
    let upstream: number | undefined;
    if (direction === 'down') {
      send(ctx.client, ctx.proxy.address.port, 'hello');
      upstream = await learnUpstreamPort(ctx);
      ctx.server.inbox.length = 0;
    }
    await sendSequence(ctx, direction, 40, upstream);
    const inbox = direction === 'up' ? ctx.server.inbox : ctx.client.inbox;
    await barrier(ctx, direction, upstream); // undelayed: overtakes every delayed datagram
    expect(inbox).toEqual([]);
    expect(ctx.proxy.stats().held).toBe(40);
    const decisions = expectedDecisions(16, 'flow-0', direction, 40, schedule);
    expect(Math.min(...decisions.map((d) => d.delay_ms))).toBeGreaterThanOrEqual(100);
    expect(Math.max(...decisions.map((d) => d.delay_ms))).toBeLessThanOrEqual(700);
    clock.advance(99); // below the shortest possible delay (400 - 300)
    await barrier(ctx, direction, upstream);
    expect(inbox).toEqual([]);
    clock.advance(700);
    await barrier(ctx, direction, upstream);
    const order = [...decisions].sort((a, b) => a.delay_ms - b.delay_ms || a.index - b.index).map((d) => payload(direction, d.index));
    expect(hex(inbox.map((m) => m.data))).toEqual(hex(order));
    expect(ctx.proxy.stats().faults.delay).toBe(40);
    expect(ctx.proxy.stats().held).toBe(0);
  });
});

describe('the schedule is applied only to the directions asked for', () => {
  it('loss on "up" only: every downstream datagram arrives', async () => {
    const clock = new ManualClock();
    const ctx = await setup({ seed: 3, clock, schedule: { loss: 0.5, directions: ['up'] } });
    send(ctx.client, ctx.proxy.address.port, 'hello');
    // "hello" may be lost: resend distinct greetings until one arrives (bounded by the seed, well under 40)
    for (let i = 0; i < 40 && ctx.server.inbox.length === 0; i++) {
      send(ctx.client, ctx.proxy.address.port, `hello-${i}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const upstream = await learnUpstreamPort(ctx);
    await sendSequence(ctx, 'down', 50, upstream);
    await barrier(ctx, 'down', upstream);
    expect(ctx.client.inbox.map((m) => m.data.toString())).toEqual([...Array(50).keys()].map((i) => payload('down', i).toString()));
    expect(ctx.proxy.faults.every((f) => f.direction === 'up')).toBe(true);
  });
});
