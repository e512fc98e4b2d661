/**
 * ED25519 verification runs on node:crypto (OpenSSL) for speed; it must accept and refuse exactly
 * what @noble/ed25519's strict RFC 8032 verification (zip215 off) does: valid signatures, flipped
 * bits anywhere in signature or digest, non-canonical S (S + L), all-zero and all-ones values.
 */
import * as ed from '@noble/ed25519';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateKey, publicKeyOf } from '../../src/image/index.js';
import { signRegion, verifyRegion } from '../../src/image/signature.js';

const key = generateKey('ed25519');
const pub = publicKeyOf(key);
const noble = (sig: Uint8Array, digest: Uint8Array): boolean => {
  try {
    return ed.verify(sig, digest, pub.ed25519Public!, { zip215: false });
  } catch {
    return false;
  }
};
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

describe('ED25519 verification (node:crypto) agrees with noble strict', () => {
  it('on valid signatures and on every kind of single-bit damage', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat(64 * 8 + 32 * 8 - 1), fc.boolean(), (digest, bit, damage) => {
        const sig = signRegion(key, new Uint8Array(0), digest);
        expect(verifyRegion(pub, sig, new Uint8Array(0), digest)).toBe(true);
        if (!damage) return;
        const s = new Uint8Array(sig);
        const d = new Uint8Array(digest);
        if (bit < 512) s[bit >> 3]! ^= 1 << (bit & 7);
        else d[(bit - 512) >> 3]! ^= 1 << (bit & 7);
        expect(verifyRegion(pub, s, new Uint8Array(0), d)).toBe(noble(s, d));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a non-canonical S (S + L) and degenerate signatures, as noble does', () => {
    const digest = new Uint8Array(32).fill(7);
    const sig = signRegion(key, new Uint8Array(0), digest);
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!);
    const big = s + L;
    const mall = new Uint8Array(sig);
    for (let i = 0; i < 32; i++) mall[32 + i] = Number((big >> BigInt(8 * i)) & 0xffn);
    for (const bad of [mall, new Uint8Array(64), new Uint8Array(64).fill(0xff)]) {
      expect(noble(bad, digest)).toBe(false);
      expect(verifyRegion(pub, bad, new Uint8Array(0), digest)).toBe(false);
    }
  });
});
