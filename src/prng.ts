/**
 * Seeded pseudo-random numbers. Every random choice in simulation code comes from here, keyed by
 * a seed and the thing it decides (device, op index, datagram index), so a seed replays exactly.
 */

/** Mix several integers into one 32-bit seed (order matters). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    // Fold in both 32-bit halves so op indices and seeds above 2^32 still differ.
    const lo = part >>> 0;
    const hi = Math.floor(part / 0x1_0000_0000) >>> 0;
    h = Math.imul(h ^ lo, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ hi, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** SplitMix32-style generator: small, fast, and good enough for fault decisions. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = mixSeed(seed) | 0;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 0x1_0000_0000;
  }

  /** Uniform integer in [0, bound). */
  below(bound: number): number {
    if (!(bound >= 1 && Number.isInteger(bound))) throw new Error(`assertion failed: Prng.below(${bound})`);
    return Math.floor(this.next() * bound);
  }

  /** `length` pseudo-random bytes (deterministic firmware payloads and the like). */
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += 4) {
      const v = this.nextU32();
      for (let k = 0; k < 4 && i + k < length; k++) out[i + k] = (v >>> (8 * k)) & 0xff;
    }
    return out;
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }
}
