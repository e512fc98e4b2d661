/**
 * The request layer against a scripted peer (a fake transport and the manual clock: exact and
 * timing-free) — determinism of tokens/MIDs, retransmission backoff and its bound, separate
 * responses, RST, duplicates, Observe freshness — and Observe against a node-coap server.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, ScaledClock } from '../../src/clock.js';
import { Prng } from '../../src/prng.js';
import { CoapClient, NetError, OptionNumber, decodeMessage, encodeMessage, encodeUint, isFresh } from '../../src/net/index.js';
import type { CoapMessage, CoapResponse, Transport, TransportCloseReason } from '../../src/net/index.js';
import { nodeCoapServer, udpClient } from './helpers.js';

class FakeTransport implements Transport {
  readonly kind = 'udp' as const;
  readonly localPort = 1;
  closed = false;
  sent: Buffer[] = [];
  private handler: (d: Buffer) => void = () => {};
  send(d: Buffer): void {
    if (!this.closed) this.sent.push(d);
  }
  onMessage(h: (d: Buffer) => void): void {
    this.handler = h;
  }
  onClose(_h: (r: TransportCloseReason) => void): void {}
  close(): void {
    this.closed = true;
  }
  abort(): void {
    this.closed = true;
  }
  receive(m: Partial<CoapMessage> & Pick<CoapMessage, 'type' | 'code' | 'messageId'>): void {
    this.handler(encodeMessage({ token: Buffer.alloc(0), options: [], payload: Buffer.alloc(0), ...m }));
  }
  last(): CoapMessage {
    const m = decodeMessage(this.sent[this.sent.length - 1] ?? Buffer.alloc(0));
    if (!m) throw new Error('nothing sent');
    return m;
  }
}

function setup(seed = 1): { t: FakeTransport; clock: ManualClock; client: CoapClient } {
  const t = new FakeTransport();
  const clock = new ManualClock();
  const client = new CoapClient({ transport: t, clock, prng: new Prng(seed), timing: { ackTimeout_ms: 1000, ackRandomFactor: 1.5, maxRetransmit: 4 } });
  return { t, clock, client };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('CoapClient against a scripted peer', () => {
  it('same seed → same tokens and message IDs; another seed → others', () => {
    const run = (seed: number): string[] => {
      const { t, client } = setup(seed);
      for (let i = 0; i < 5; i++) void client.request({ method: 'GET', path: `/r/${i}` }).catch(() => {});
      return t.sent.map((d) => d.toString('hex'));
    };
    expect(run(3)).toEqual(run(3));
    expect(run(3)).not.toEqual(run(4));
  });

  it('retransmits MAX_RETRANSMIT times with doubling timeouts, then fails with TIMEOUT', async () => {
    const { t, clock, client } = setup();
    const p = client.request({ method: 'GET', path: '/x' }).catch((e: unknown) => e);
    const times: number[] = [];
    for (let i = 0; i < 5000 && t.sent.length < 5; i++) {
      const before = t.sent.length;
      clock.advance(10);
      if (t.sent.length > before) times.push(clock.now());
    }
    expect(t.sent.length).toBe(5);
    expect(new Set(t.sent.map((d) => d.toString('hex'))).size).toBe(1); // same MID, same token
    const gaps = times.map((x, i) => x - (times[i - 1] ?? 0));
    for (let i = 1; i < gaps.length; i++) expect(Math.abs((gaps[i] ?? 0) - 2 * (gaps[i - 1] ?? 0))).toBeLessThanOrEqual(20);
    expect(gaps[0]).toBeGreaterThanOrEqual(1000);
    expect(gaps[0]).toBeLessThan(1510);
    clock.advance(100_000);
    const err = await p;
    expect((err as NetError).code).toBe('TIMEOUT');
    expect(client.outstanding).toBe(0);
  });

  it('empty ACK then a CON separate response (sent twice): ACKed twice, delivered once', async () => {
    const { t, clock, client } = setup();
    const p = client.request({ method: 'GET', path: '/slow' });
    const req = t.last();
    t.receive({ type: 'ACK', code: '0.00', messageId: req.messageId });
    clock.advance(60_000); // no retransmission after the ACK
    expect(t.sent.length).toBe(1);
    t.receive({ type: 'CON', code: '2.05', messageId: 0x7777, token: req.token, payload: Buffer.from('hi') });
    t.receive({ type: 'CON', code: '2.05', messageId: 0x7777, token: req.token, payload: Buffer.from('hi') });
    const res: CoapResponse = await p;
    expect(res.payload.toString()).toBe('hi');
    const acks = t.sent.slice(1).map((d) => decodeMessage(d));
    expect(acks.map((a) => [a?.type, a?.messageId])).toEqual([['ACK', 0x7777], ['ACK', 0x7777]]);
    expect(client.stats.duplicates).toBe(1);
  });

  it('RST fails the request; a duplicate piggybacked ACK is ignored; an unknown CON response gets RST', async () => {
    const { t, client } = setup();
    const p1 = client.request({ method: 'GET', path: '/a' }).catch((e: unknown) => e);
    t.receive({ type: 'RST', code: '0.00', messageId: t.last().messageId });
    expect(((await p1) as NetError).code).toBe('RESET');
    const p2 = client.request({ method: 'GET', path: '/b' });
    const r2 = t.last();
    t.receive({ type: 'ACK', code: '2.05', messageId: r2.messageId, token: r2.token, payload: Buffer.from('1') });
    t.receive({ type: 'ACK', code: '2.05', messageId: r2.messageId, token: r2.token, payload: Buffer.from('1') });
    expect((await p2).payload.toString()).toBe('1');
    expect(client.stats.duplicates).toBe(1);
    t.receive({ type: 'CON', code: '2.05', messageId: 9, token: Buffer.from('zz') });
    expect(t.last().type).toBe('RST');
  });

  it('bounds outstanding requests', async () => {
    const t = new FakeTransport();
    const client = new CoapClient({ transport: t, clock: new ManualClock(), prng: new Prng(1), maxOutstanding: 2 });
    void client.request({ method: 'GET', path: '/1' }).catch(() => {});
    void client.request({ method: 'GET', path: '/2' }).catch(() => {});
    const err = await client.request({ method: 'GET', path: '/3' }).catch((e: unknown) => e);
    expect((err as NetError).code).toBe('TOO_MANY_OUTSTANDING');
    client.close();
  });

  it('Observe: CON notifications are ACKed, stale sequence numbers dropped, deregistration sends Observe=1', async () => {
    const { t, clock, client } = setup();
    const seen: string[] = [];
    const op = client.observe({ path: '/.u/desired' }, (r) => seen.push(r.payload.toString()));
    const reg = t.last();
    expect(reg.options.find((o) => o.number === OptionNumber.Observe)?.value.length).toBe(0);
    t.receive({ type: 'ACK', code: '2.05', messageId: reg.messageId, token: reg.token, options: [{ number: OptionNumber.Observe, value: encodeUint(10) }], payload: Buffer.from('v1') });
    const obs = await op;
    expect(obs.registered).toBe(true);
    const notify = (mid: number, seq: number, body: string): void =>
      t.receive({ type: 'CON', code: '2.05', messageId: mid, token: reg.token, options: [{ number: OptionNumber.Observe, value: encodeUint(seq) }], payload: Buffer.from(body) });
    notify(100, 12, 'v2');
    notify(101, 11, 'stale');
    clock.advance(129_000);
    notify(102, 5, 'fresh after 128 s');
    expect(seen).toEqual(['v2', 'fresh after 128 s']);
    expect(client.stats.staleNotifications).toBe(1);
    expect(t.sent.filter((d) => decodeMessage(d)?.type === 'ACK').length).toBe(3);
    const cancelled = obs.cancel();
    const dereg = t.last();
    expect(dereg.token.equals(reg.token)).toBe(true);
    expect(dereg.options.find((o) => o.number === OptionNumber.Observe)?.value).toEqual(encodeUint(1));
    t.receive({ type: 'ACK', code: '2.05', messageId: dereg.messageId, token: reg.token });
    await cancelled;
    expect(await obs.ended).toEqual({ kind: 'cancelled' });
    await flush();
  });

  it('RFC 7641 §3.4 freshness with wrap-around', () => {
    expect(isFresh({ sequence: 2 ** 24 - 1, at_ms: 0 }, 3, 1)).toBe(true);
    expect(isFresh({ sequence: 3, at_ms: 0 }, 2 ** 24 - 1, 1)).toBe(false);
  });
});

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe('Observe against a node-coap server (UDP)', () => {
  it('registers, receives notifications in order, deregisters', async () => {
    let streams = 0;
    let finished = false;
    const { server, port } = await nodeCoapServer((req, res) => {
      if (req.headers.Observe !== 0) {
        res.end('plain');
        return;
      }
      streams++;
      let n = 0;
      res.write(`n${n++}`);
      const timer = setInterval(() => res.write(`n${n++}`), 20);
      res.on('finish', () => {
        finished = true;
        clearInterval(timer);
      });
    });
    cleanup.push(() => server.close());
    const client = await udpClient(port);
    cleanup.push(() => client.close());
    const got: string[] = [];
    const obs = await client.observe({ path: '/.u/desired' }, (r) => got.push(r.payload.toString()));
    expect(obs.registered).toBe(true);
    expect(obs.first.payload.toString()).toBe('n0');
    while (got.length < 3) await new Promise((r) => setTimeout(r, 10));
    expect(got.slice(0, 3)).toEqual(['n1', 'n2', 'n3']);
    await obs.cancel();
    expect(obs.active).toBe(false);
    for (let i = 0; i < 100 && !finished; i++) await new Promise((r) => setTimeout(r, 10));
    expect(finished).toBe(true);
    expect(streams).toBe(1);
    void ScaledClock;
  });
});
