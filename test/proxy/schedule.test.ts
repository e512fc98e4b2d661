/**
 * The chaos proxy's decision function on its own: a pure function of (seed, label, direction,
 * index) and the schedule; each fault's draws independent of the other rates; corruption flips
 * 1..3 distinct bytes and never the length; the Gilbert–Elliott state gives bursts; schedule
 * validation names the field.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChaosDecider, applyCorruption, decideDatagram, validateSchedule } from '../../src/net/proxy/index.js';
import type { ChaosSchedule } from '../../src/net/proxy/index.js';

const ALL: ChaosSchedule = { loss: 0.2, duplicate: 0.2, reorder: 0.2, corrupt: 0.2, delay_ms: 50, jitter_ms: 40 };

function run(seed: number, label: string, schedule: ChaosSchedule, n = 200): ReturnType<ChaosDecider['decide']>[] {
  const d = new ChaosDecider(seed, label);
  return Array.from({ length: n }, (_, i) => d.decide(i % 3 === 0 ? 'down' : 'up', schedule));
}

describe('decisions', () => {
  it('are a pure function of seed, label, direction and index', () => {
    expect(run(1, 'dev-1', ALL)).toEqual(run(1, 'dev-1', ALL));
    expect(run(2, 'dev-1', ALL)).not.toEqual(run(1, 'dev-1', ALL));
    expect(run(1, 'dev-2', ALL)).not.toEqual(run(1, 'dev-1', ALL));
    // direction matters, and so does the index
    const up = decideDatagram(1, 'a', 'up', 5, { corrupt: 1 }, false).decision;
    const down = decideDatagram(1, 'a', 'down', 5, { corrupt: 1 }, false).decision;
    const next = decideDatagram(1, 'a', 'up', 6, { corrupt: 1 }, false).decision;
    expect(new Set([up.corruptSeed, down.corruptSeed, next.corruptSeed]).size).toBe(3);
  });

  it('one fault rate does not move another fault’s decisions', () => {
    const a = run(3, 'x', { duplicate: 0.3, corrupt: 0.3 });
    const b = run(3, 'x', { duplicate: 0.3, corrupt: 0.3, reorder: 0.5, delay_ms: 10, jitter_ms: 5 });
    expect(b.map((d) => d.duplicate)).toEqual(a.map((d) => d.duplicate));
    expect(b.map((d) => d.corruptSeed)).toEqual(a.map((d) => d.corruptSeed));
  });

  it('probabilities land near their rates over many datagrams, and 0 / 1 are exact', () => {
    const d = run(4, 'x', ALL, 5000);
    const rate = (f: (x: (typeof d)[number]) => boolean): number => d.filter(f).length / d.length;
    expect(rate((x) => x.drop === 'loss')).toBeGreaterThan(0.17);
    expect(rate((x) => x.drop === 'loss')).toBeLessThan(0.23);
    expect(run(4, 'x', { loss: 0 }, 500).some((x) => x.drop)).toBe(false);
    expect(run(4, 'x', { loss: 1 }, 500).every((x) => x.drop === 'loss')).toBe(true);
    for (const x of d) if (!x.drop) expect(x.delay_ms).toBeGreaterThanOrEqual(10), expect(x.delay_ms).toBeLessThanOrEqual(90);
  });

  it('directions: faults only where asked, and no delay either', () => {
    const d = run(5, 'x', { ...ALL, loss: 1, directions: ['up'] }, 300);
    for (const x of d) {
      if (x.direction === 'down') expect(x).toMatchObject({ drop: null, duplicate: false, reorder: false, corruptSeed: null, delay_ms: 0 });
      else expect(x.drop).toBe('loss');
    }
  });

  it('burst loss comes in runs: longer runs than independent loss at the same rate', () => {
    const longest = (drops: boolean[]): number => {
      let best = 0;
      let cur = 0;
      for (const x of drops) {
        cur = x ? cur + 1 : 0;
        best = Math.max(best, cur);
      }
      return best;
    };
    const burst = run(6, 'x', { burst: { enter: 0.02, exit: 0.2 } }, 4000).map((x) => x.drop === 'burst-loss');
    const rate = burst.filter(Boolean).length / burst.length;
    expect(rate).toBeGreaterThan(0.03);
    const indep = run(6, 'x', { loss: rate }, 4000).map((x) => x.drop === 'loss');
    expect(longest(burst)).toBeGreaterThan(longest(indep) + 3);
  });
});

describe('corruption', () => {
  it('flips 1..3 distinct bytes, keeps the length, and is a function of the seed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat(), (bytes, seed) => {
        const { bytes: out, offsets } = applyCorruption(bytes, seed);
        expect(out.length).toBe(bytes.length);
        const changed = [...out].map((b, i) => (b !== bytes[i] ? i : -1)).filter((i) => i >= 0);
        expect(changed.sort((a, b) => a - b)).toEqual([...offsets].sort((a, b) => a - b));
        expect(offsets.length).toBeLessThanOrEqual(Math.min(3, bytes.length));
        if (bytes.length > 0) expect(offsets.length).toBeGreaterThanOrEqual(1);
        expect(applyCorruption(bytes, seed).bytes.equals(out)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('validateSchedule', () => {
  it.each([
    [{ loss: -0.1 }, /schedule\.loss: expected a probability/],
    [{ corrupt: 2 }, /schedule\.corrupt/],
    [{ burst: { enter: 0.1, exit: 1.5 } }, /schedule\.burst\.exit/],
    [{ delay_ms: 10_000_000 }, /schedule\.delay_ms: expected simulated ms/],
    [{ blackholes: [{ at_ms: 0, for_ms: 0 }] }, /schedule\.blackholes\[0\]\.for_ms/],
    [{ rebindEvery_ms: 0 }, /schedule\.rebindEvery_ms/],
    [{ directions: ['sideways'] }, /schedule\.directions/],
  ] as [ChaosSchedule, RegExp][])('%j', (schedule, message) => {
    expect(() => validateSchedule(schedule)).toThrow(message);
  });

  it('accepts a full schedule', () => {
    expect(() => validateSchedule({ ...ALL, burst: { enter: 0.1, exit: 0.5, loss: 0.9 }, blackholes: [{ at_ms: 100, for_ms: 60_000 }], rebindEvery_ms: 30_000, rebindAt_ms: [5], directions: ['up'] })).not.toThrow();
  });
});
