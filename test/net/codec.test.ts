/**
 * The CoAP codec (src/net/message.ts) against node-coap's `coap-packet`, which it replaced on the
 * hot path: arbitrary messages encode to the same bytes and decode to the same fields; malformed
 * datagrams decode to null. And the client's shared retransmission timer: several exchanges keep
 * their own RFC 7252 schedules, and one AbortSignal shared by many requests cancels them all.
 */
import fc from 'fast-check';
import { generate, parse } from 'coap-packet';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { Prng } from '../../src/prng.js';
import { CoapClient, NetError, decodeMessage, encodeMessage } from '../../src/net/index.js';
import type { CoapMessage, Transport, TransportCloseReason } from '../../src/net/index.js';

const TYPES = ['CON', 'NON', 'ACK', 'RST'] as const;

const arbMessage: fc.Arbitrary<CoapMessage> = fc.record({
  type: fc.constantFrom(...TYPES),
  code: fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 31 })).map(([c, d]) => `${c}.${String(d).padStart(2, '0')}`),
  messageId: fc.integer({ min: 0, max: 0xffff }),
  token: fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)),
  options: fc
    .array(fc.record({ number: fc.oneof(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 61, max: 2100 })), value: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) }), { maxLength: 6 })
    .map((os) => [...os].sort((a, b) => a.number - b.number)),
  payload: fc.uint8Array({ maxLength: 1100 }).map((a) => Buffer.from(a)),
})
  // an empty message (0.00) carries nothing else (RFC 7252 §4.1); coap-packet drops the rest
  .map((m) => (m.code === '0.00' ? { ...m, token: Buffer.alloc(0), options: [], payload: Buffer.alloc(0) } : m));

function viaCoapPacket(m: CoapMessage): Buffer {
  return generate(
    {
      code: m.code,
      messageId: m.messageId,
      token: m.token,
      options: m.options.map((o) => ({ name: String(o.number), value: o.value })) as never,
      payload: m.payload,
      confirmable: m.type === 'CON',
      ack: m.type === 'ACK',
      reset: m.type === 'RST',
    },
    65_507,
  );
}

describe('CoAP codec', () => {
  it('encodes byte for byte like coap-packet and decodes what coap-packet encodes', () => {
    fc.assert(
      fc.property(arbMessage, (m) => {
        const ours = encodeMessage(m, 65_507);
        expect(ours.equals(viaCoapPacket(m))).toBe(true);
        const back = decodeMessage(ours);
        expect(back).not.toBeNull();
        expect(back?.type).toBe(m.type);
        expect(back?.code).toBe(m.code);
        expect(back?.messageId).toBe(m.messageId);
        expect(back?.token.equals(m.token)).toBe(true);
        expect(back?.options.map((o) => [o.number, o.value.toString('hex')])).toEqual(m.options.map((o) => [o.number, o.value.toString('hex')]));
        expect(back?.payload.equals(m.payload)).toBe(true);
        const p = parse(ours);
        expect(p.code).toBe(m.code);
        expect(p.payload.equals(back?.payload ?? Buffer.alloc(0))).toBe(true);
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('sorts options by number, keeping repeated options in order', () => {
    const d = encodeMessage({
      type: 'CON',
      code: '0.01',
      messageId: 1,
      token: Buffer.alloc(0),
      options: [
        { number: 23, value: Buffer.of(0x16) },
        { number: 11, value: Buffer.from('a') },
        { number: 11, value: Buffer.from('b') },
      ],
      payload: Buffer.alloc(0),
    });
    expect(decodeMessage(d)?.options.map((o) => `${o.number}:${o.value.toString()}`)).toEqual(['11:a', '11:b', '23:\x16']);
  });

  it('refuses a message over the size limit and codes that are not c.dd', () => {
    const m: CoapMessage = { type: 'CON', code: '0.01', messageId: 1, token: Buffer.alloc(0), options: [], payload: Buffer.alloc(2000) };
    expect(() => encodeMessage(m, 1280)).toThrow(NetError);
    expect(() => encodeMessage({ ...m, payload: Buffer.alloc(0), code: 'GET!' })).toThrow(NetError);
  });

  it('decodes malformed datagrams to null', () => {
    const ok = encodeMessage({ type: 'ACK', code: '2.05', messageId: 9, token: Buffer.of(1, 2), options: [{ number: 23, value: Buffer.of(0x0e) }], payload: Buffer.from('hi') });
    expect(decodeMessage(ok)).not.toBeNull();
    expect(decodeMessage(ok.subarray(0, 3))).toBeNull(); // short header
    expect(decodeMessage(Buffer.concat([Buffer.of((ok[0] ?? 0) & 0x3f), ok.subarray(1)]))).toBeNull(); // version 0
    expect(decodeMessage(Buffer.of(0x49, 0x45, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9))).toBeNull(); // token length 9
    expect(decodeMessage(Buffer.of(0x40, 0x45, 0, 1, 0xff))).toBeNull(); // payload marker, no payload
    expect(decodeMessage(Buffer.of(0x40, 0x45, 0, 1, 0xf1, 0))).toBeNull(); // reserved delta nibble
    expect(decodeMessage(Buffer.of(0x40, 0x45, 0, 1, 0x1f, 0))).toBeNull(); // reserved length nibble
    expect(decodeMessage(Buffer.of(0x40, 0x45, 0, 1, 0x13, 0))).toBeNull(); // option value past the end
    expect(decodeMessage(Buffer.of(0x40, 0x45, 0, 1, 0xd0))).toBeNull(); // extended delta missing
  });
});

class FakeTransport implements Transport {
  readonly kind = 'udp' as const;
  readonly localPort = 1;
  readonly closed = false;
  sent: Buffer[] = [];
  handler: (d: Buffer) => void = () => {};
  send(d: Buffer): void {
    this.sent.push(d);
  }
  onMessage(h: (d: Buffer) => void): void {
    this.handler = h;
  }
  onClose(_h: (r: TransportCloseReason) => void): void {}
  close(): void {}
  abort(): void {}
}

describe('CoapClient shared retransmission timer', () => {
  it('each outstanding request keeps its own doubling schedule; an ACK stops only its own', async () => {
    const t = new FakeTransport();
    const clock = new ManualClock();
    const client = new CoapClient({ transport: t, clock, prng: new Prng(5), timing: { ackTimeout_ms: 1000, ackRandomFactor: 1.5, maxRetransmit: 3 } });
    const results = [0, 1, 2].map((i) => client.request({ method: 'GET', path: `/r/${i}` }).catch((e: unknown) => e));
    clock.advance(300);
    const third = client.request({ method: 'GET', path: '/r/3' }).catch((e: unknown) => e);
    const mids = t.sent.map((d) => decodeMessage(d)?.messageId);
    const sendTimes = new Map<number, number[]>();
    const seen = t.sent.length;
    for (let step = 0; step < 40_000; step++) {
      const before = t.sent.length;
      clock.advance(1);
      for (const d of t.sent.slice(before)) {
        const mid = decodeMessage(d)?.messageId ?? -1;
        sendTimes.set(mid, [...(sendTimes.get(mid) ?? []), clock.now()]);
        // ACK request 1 (with a response) after its first retransmission
        if (mid === mids[1]) {
          const m = decodeMessage(d);
          if (m) t.handler(encodeMessage({ type: 'ACK', code: '2.05', messageId: m.messageId, token: m.token, options: [], payload: Buffer.from('x') }));
        }
      }
    }
    expect(seen).toBe(4);
    // request 1: one retransmission, then answered; the others: 3 retransmissions each, then TIMEOUT
    expect(sendTimes.get(mids[1] ?? -1)?.length).toBe(1);
    for (const i of [0, 2, 3]) {
      const times = sendTimes.get(mids[i] ?? -1) ?? [];
      expect(times.length).toBe(3);
      const start = i === 3 ? 300 : 0;
      const first = (times[0] ?? 0) - start;
      expect(first).toBeGreaterThanOrEqual(1000);
      expect(first).toBeLessThanOrEqual(1501);
      // doubling: gaps of 2× and 4× the first timeout (1 ms steps of the manual clock)
      expect(Math.abs((times[1] ?? 0) - (times[0] ?? 0) - 2 * first)).toBeLessThanOrEqual(3);
      expect(Math.abs((times[2] ?? 0) - (times[1] ?? 0) - 4 * first)).toBeLessThanOrEqual(6);
    }
    const outcomes = await Promise.all([...results, third]);
    expect(outcomes.map((o) => (o instanceof NetError ? o.code : 'ok'))).toEqual(['TIMEOUT', 'ok', 'TIMEOUT', 'TIMEOUT']);
    expect(client.stats.retransmissions).toBe(1 + 3 * 3);
    expect(client.outstanding).toBe(0);
  });

  it('one AbortSignal shared by several requests cancels them all, and later requests on a fresh signal still work', async () => {
    const t = new FakeTransport();
    const clock = new ManualClock();
    const client = new CoapClient({ transport: t, clock, prng: new Prng(6), timing: { ackTimeout_ms: 1000, maxRetransmit: 2 } });
    const ac = new AbortController();
    const ps = [0, 1, 2, 3].map((i) => client.request({ method: 'GET', path: `/b/${i}`, signal: ac.signal }).catch((e: unknown) => e));
    ac.abort();
    const errs = await Promise.all(ps);
    expect(errs.every((e) => e instanceof NetError && e.code === 'CANCELLED')).toBe(true);
    expect(client.outstanding).toBe(0);
    const before = t.sent.length;
    clock.advance(60_000);
    expect(t.sent.length).toBe(before); // cancelled requests are not retransmitted
    const ac2 = new AbortController();
    const p = client.request({ method: 'GET', path: '/b/9', signal: ac2.signal });
    const m = decodeMessage(t.sent[t.sent.length - 1] ?? Buffer.alloc(0));
    if (!m) throw new Error('nothing sent');
    t.handler(encodeMessage({ type: 'ACK', code: '2.05', messageId: m.messageId, token: m.token, options: [], payload: Buffer.alloc(0) }));
    expect((await p).code).toBe('2.05');
  });
});
