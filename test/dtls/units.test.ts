/** Unit tests of the DTLS building blocks: PRF, replay window, records, fragments, cookies, timers, tables, AEAD. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { CIPHER_SUITES, open, seal } from '../../src/dtls/cipher-suites.js';
import { CookieJar } from '../../src/dtls/cookie.js';
import { FlightTimer } from '../../src/dtls/flight-timer.js';
import { encodeHandshake, fragmentHandshake, parseHandshakeFragments } from '../../src/dtls/handshake.js';
import { encodeHelloVerifyRequest } from '../../src/dtls/messages.js';
import { extendedMasterSecret, masterSecret, prf, pskPremasterSecret } from '../../src/dtls/prf.js';
import { Reassembler } from '../../src/dtls/reassembly.js';
import { encodeRecord, packDatagrams, parseRecords } from '../../src/dtls/record.js';
import { ReplayWindow } from '../../src/dtls/replay-window.js';
import { BoundedTable } from '../../src/dtls/session-table.js';

describe('TLS 1.2 PRF (SHA-256)', () => {
  it('matches the published P_SHA256 test vector', () => {
    const out = prf(Buffer.from('9bbe436ba940f017b17652849a71db35', 'hex'), 'test label', Buffer.from('a0ba9f936cda311827a6f796ffd5198c', 'hex'), 100);
    expect(out.toString('hex')).toBe(
      'e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66',
    );
  });

  it('builds the PSK premaster secret as N, N zeros, N, psk (RFC 4279)', () => {
    expect(pskPremasterSecret(Buffer.from([0xaa, 0xbb])).toString('hex')).toBe('000200000002aabb');
  });

  it('extended master secret differs from the classic one and depends on the session hash', () => {
    const pms = pskPremasterSecret(Buffer.alloc(16, 1));
    const r = Buffer.alloc(32, 2);
    const a = extendedMasterSecret(pms, Buffer.alloc(32, 3));
    expect(a).toHaveLength(48);
    expect(a.equals(extendedMasterSecret(pms, Buffer.alloc(32, 4)))).toBe(false);
    expect(a.equals(masterSecret(pms, r, r))).toBe(false);
  });
});

describe('anti-replay window', () => {
  it('accepts each sequence number once, out of order within 64, and rejects older ones', () => {
    const w = new ReplayWindow();
    for (const s of [5, 3, 4, 100, 70, 99]) {
      expect(w.check(s)).toBe(true);
      w.accept(s);
    }
    for (const s of [5, 3, 100, 70, 99]) expect(w.check(s)).toBe(false);
    expect(w.check(36)).toBe(false); // 100 - 36 = 64: outside the window
    expect(w.check(37)).toBe(true);
    expect(w.check(2 ** 48 - 1)).toBe(true);
  });

  it('never accepts a number twice (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 200 }), (seqs) => {
        const w = new ReplayWindow();
        const accepted = new Set<number>();
        for (const s of seqs) {
          if (w.check(s)) {
            expect(accepted.has(s)).toBe(false);
            accepted.add(s);
            w.accept(s);
          }
        }
      }),
    );
  });

  it('answers exactly as a set of accepted numbers limited to 64 behind the highest (property, jumps of any size)', () => {
    const step = fc.oneof(
      { arbitrary: fc.constant({ kind: 'next' as const, n: 1 }), weight: 6 },
      { arbitrary: fc.record({ kind: fc.constant('ahead' as const), n: fc.integer({ min: 2, max: 70 }) }), weight: 2 },
      { arbitrary: fc.record({ kind: fc.constant('back' as const), n: fc.integer({ min: 0, max: 70 }) }), weight: 3 },
      { arbitrary: fc.record({ kind: fc.constant('jump' as const), n: fc.integer({ min: 1, max: 3 }) }), weight: 1 },
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 400 }), (steps) => {
        const w = new ReplayWindow();
        const accepted = new Set<number>();
        let top = -1;
        for (const { kind, n } of steps) {
          // in order, a gap, reordered or replayed, or far ahead (past 2^32)
          const s = kind === 'next' ? top + 1 : kind === 'ahead' ? top + n : kind === 'back' ? Math.max(0, top - n) : top + n * 2 ** 32;
          const fresh = s > top || (top - s < 64 && !accepted.has(s));
          expect(w.check(s)).toBe(fresh);
          if (fresh) {
            w.accept(s);
            accepted.add(s);
            top = Math.max(top, s);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('records', () => {
  it('parses several records from one datagram and stops at a truncated one', () => {
    const a = encodeRecord(22, 0xfefd, 0, 1, Buffer.from('abc'));
    const b = encodeRecord(23, 0xfefd, 1, 2 ** 40, Buffer.from('de'));
    const recs = parseRecords(Buffer.concat([a, b, b.subarray(0, 10)]));
    expect(recs.map((r) => [r.type, r.epoch, r.seq, r.fragment.toString()])).toEqual([
      [22, 0, 1, 'abc'],
      [23, 1, 2 ** 40, 'de'],
    ]);
  });

  it('packs records into datagrams no larger than the MTU', () => {
    const recs = [40, 40, 40, 100].map((n) => Buffer.alloc(n));
    expect(packDatagrams(recs, 90).map((d) => d.length)).toEqual([80, 40, 100]);
  });

  it('HelloVerifyRequest always carries DTLS 1.0 (0xfeff)', () => {
    expect(encodeHelloVerifyRequest(Buffer.alloc(16)).readUInt16BE(0)).toBe(0xfeff);
  });
});

describe('handshake fragmentation and reassembly', () => {
  it('reassembles fragments in any order, with duplicates and overlaps (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), fc.integer({ min: 13, max: 200 }), fc.array(fc.nat(), { maxLength: 40 }), (bodyBytes, maxFrag, order) => {
        const body = Buffer.from(bodyBytes);
        const frags = fragmentHandshake(16, 3, body, maxFrag).flatMap((b) => parseHandshakeFragments(b));
        // shuffle and duplicate deterministically from `order`
        const delivered = [...frags];
        for (const o of order) {
          const f = frags[o % frags.length];
          if (f) delivered.splice(o % (delivered.length + 1), 0, f);
        }
        const r = new Reassembler(3, 4096);
        let got: Buffer | null = null;
        for (const f of delivered) {
          r.add(f);
          const m = r.next();
          if (m) got = m.body;
        }
        expect(got?.equals(body)).toBe(true);
        expect(encodeHandshake(16, 3, body).subarray(12).equals(body)).toBe(true);
      }),
    );
  });

  it('drops messages beyond its byte budget and earlier message_seq values', () => {
    const r = new Reassembler(1, 100);
    const big = parseHandshakeFragments(fragmentHandshake(16, 1, Buffer.alloc(200), 50)[0] ?? Buffer.alloc(0))[0];
    if (!big) throw new Error('no fragment');
    expect(r.add(big)).toBe(true);
    expect(r.next()).toBeNull();
    const old = parseHandshakeFragments(encodeHandshake(1, 0, Buffer.alloc(4)))[0];
    if (!old) throw new Error('no fragment');
    expect(r.add(old)).toBe(false);
  });
});

describe('cookies', () => {
  it('verify for the same peer and hello, survive one rotation, not two', () => {
    const clock = new ManualClock();
    const jar = new CookieJar(clock, 1000);
    const fields = Buffer.from('hello-fields');
    const c = jar.make('127.0.0.1', 5000, fields);
    expect(jar.verify('127.0.0.1', 5000, fields, c)).toBe(true);
    expect(jar.verify('127.0.0.1', 5001, fields, c)).toBe(false);
    expect(jar.verify('127.0.0.2', 5000, fields, c)).toBe(false);
    expect(jar.verify('127.0.0.1', 5000, Buffer.from('other'), c)).toBe(false);
    clock.advance(1000);
    expect(jar.verify('127.0.0.1', 5000, fields, c)).toBe(true);
    clock.advance(1000);
    expect(jar.verify('127.0.0.1', 5000, fields, c)).toBe(false);
    jar.close();
  });
});

describe('flight retransmission timer', () => {
  it('doubles the wait up to the ceiling, then gives up after the bound', () => {
    const clock = new ManualClock();
    const resent: number[] = [];
    let gaveUp = -1;
    const t = new FlightTimer(clock, { initial_ms: 1000, max_ms: 4000, maxRetransmissions: 4 }, () => resent.push(clock.now()), () => (gaveUp = clock.now()));
    t.start();
    clock.advance(100_000);
    expect(resent).toEqual([1000, 3000, 7000, 11000]);
    expect(gaveUp).toBe(15000);
  });
});

describe('bounded table', () => {
  it('evicts the least recently used entry beyond its bound', () => {
    const evicted: string[] = [];
    const t = new BoundedTable<number>(2, (k) => evicted.push(k));
    t.set('a', 1);
    t.set('b', 2);
    t.touch('a');
    t.set('c', 3);
    expect(evicted).toEqual(['b']);
    expect(t.values()).toEqual([1, 3]);
  });
});

describe('AEAD record protection', () => {
  for (const suite of CIPHER_SUITES) {
    it(`${suite.name}: round-trips and rejects any tampering`, () => {
      const keys = { key: Buffer.alloc(16, 7), salt: Buffer.from([1, 2, 3, 4]) };
      const sealed = seal(suite, keys, 1, 42, 23, 0xfefd, Buffer.from('payload'));
      expect(sealed).toHaveLength(8 + 7 + suite.tag_bytes);
      expect(sealed.subarray(0, 8).toString('hex')).toBe('000100000000002a'); // explicit nonce = epoch + seq
      expect(open(suite, keys, 1, 42, 23, 0xfefd, sealed)?.toString()).toBe('payload');
      expect(open(suite, keys, 1, 43, 23, 0xfefd, sealed)).toBeNull(); // seq is in the additional data
      expect(open(suite, keys, 2, 42, 23, 0xfefd, sealed)).toBeNull(); // so is the epoch
      expect(open(suite, keys, 1, 42, 22, 0xfefd, sealed)).toBeNull(); // and the type
      for (let i = 0; i < sealed.length; i++) {
        const t = Buffer.from(sealed);
        t[i] = (t[i] ?? 0) ^ 0x01;
        expect(open(suite, keys, 1, 42, 23, 0xfefd, t)).toBeNull();
      }
    });
  }
});
