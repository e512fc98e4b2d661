/**
 * Property tests: random bytes and random damage to a valid image only ever yield a typed
 * ImageError or a verdict, never another exception; and no single-bit flip in an image verifies.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ImageError,
  IMAGE_MAGIC,
  createTrustStore,
  parseImage,
  parseImageLayout,
  signImage,
  verifyImage,
  verifyParsed,
} from '../../src/image/index.js';
import type { VerifyResult } from '../../src/image/index.js';
import { signingKey, trustedPublicKeys } from './helpers.js';

const ed = signingKey('ed25519.pem');
const trust = createTrustStore(trustedPublicKeys());
const base = signImage(Uint8Array.from({ length: 300 }, (_, i) => i & 0xff), {
  key: ed,
  headerSize_bytes: 0x40,
  padHeader: true,
  version: '1.2.3+4',
  securityCounter: 5,
  customTlvs: [
    { type: 0xa0, value: new TextEncoder().encode('{"selfTest":"fail"}') },
    { type: 0xa1, value: new TextEncoder().encode('board') },
  ],
});

type Outcome = { kind: 'verdict'; result: VerifyResult } | { kind: 'error'; code: string };

/** Run every entry point on the bytes; anything but ImageError escaping fails the property. */
function exercise(bytes: Uint8Array): Outcome {
  for (const fn of [() => parseImage(bytes), () => parseImageLayout(bytes)]) {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof ImageError)) throw err;
    }
  }
  try {
    const result = verifyImage(bytes, trust);
    expect(typeof result.valid).toBe('boolean');
    expect(result.valid === (result.reason === null)).toBe(true);
    try {
      const parsed = parseImageLayout(bytes);
      expect(verifyParsed(parsed, trust).valid).toBe(result.valid);
    } catch (err) {
      if (!(err instanceof ImageError)) throw err;
    }
    return { kind: 'verdict', result };
  } catch (err) {
    if (!(err instanceof ImageError)) throw err;
    expect(err.code).toBe('UNSUPPORTED');
    return { kind: 'error', code: err.code };
  }
}

/** Random bytes that start with the magic more often than chance, so parsing gets past the header. */
const randomImage = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc.uint8Array({ minLength: 28, maxLength: 600 }).map((tail) => {
    const b = new Uint8Array(tail.length + 4);
    new DataView(b.buffer).setUint32(0, IMAGE_MAGIC, true);
    b.set(tail, 4);
    return b;
  }),
);

type Mutation =
  | { kind: 'flip'; offset: number; bit: number }
  | { kind: 'truncate'; length: number }
  | { kind: 'u16'; offset: number; value: number }
  | { kind: 'u32'; offset: number; value: number }
  | { kind: 'append'; extra: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), offset: fc.nat(base.length - 1), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('truncate' as const), length: fc.nat(base.length) }),
  // The length fields: hdr_size, protect_tlv_size, img_size, and the TLV area/entry lengths anywhere.
  fc.record({ kind: fc.constant('u16' as const), offset: fc.oneof(fc.constantFrom(8, 10), fc.nat(base.length - 2)), value: fc.nat(0xffff) }),
  fc.record({ kind: fc.constant('u32' as const), offset: fc.constantFrom(12, 16), value: fc.nat(0xffffffff) }),
  fc.record({ kind: fc.constant('append' as const), extra: fc.uint8Array({ maxLength: 64 }) }),
);

function apply(bytes: Uint8Array, m: Mutation): Uint8Array {
  const copy = bytes.slice();
  const view = new DataView(copy.buffer);
  switch (m.kind) {
    case 'flip':
      if (m.offset < copy.length) copy[m.offset]! ^= 1 << m.bit;
      return copy;
    case 'truncate':
      return copy.subarray(0, m.length);
    case 'u16':
      if (m.offset + 2 <= copy.length) view.setUint16(m.offset, m.value, true);
      return copy;
    case 'u32':
      if (m.offset + 4 <= copy.length) view.setUint32(m.offset, m.value, true);
      return copy;
    case 'append': {
      const out = new Uint8Array(copy.length + m.extra.length);
      out.set(copy);
      out.set(m.extra, copy.length);
      return out;
    }
  }
}

describe('fuzz', () => {
  it('the base image is valid', () => {
    expect(verifyImage(base, trust).valid).toBe(true);
  });

  it('random bytes: only ImageError or a verdict', () => {
    fc.assert(
      fc.property(randomImage, (bytes) => {
        const outcome = exercise(bytes);
        if (outcome.kind === 'verdict') expect(outcome.result.valid).toBe(false);
      }),
      { numRuns: 2000, seed: 0x5eed },
    );
  });

  it('mutated images: only ImageError or a verdict', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        exercise(mutations.reduce(apply, base));
      }),
      { numRuns: 1000, seed: 0xbad },
    );
  });

  it('no single-bit flip inside the image verifies', () => {
    fc.assert(
      fc.property(fc.nat(base.length - 1), fc.nat(7), (offset, bit) => {
        const outcome = exercise(apply(base, { kind: 'flip', offset, bit }));
        if (outcome.kind === 'verdict') expect(outcome.result.valid).toBe(false);
      }),
      { numRuns: 400, seed: 42 },
    );
  });

  it('bytes appended after the image never change a valid verdict (a slot read from flash)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (extra) => {
        const outcome = exercise(apply(base, { kind: 'append', extra }));
        expect(outcome.kind === 'verdict' && outcome.result.valid).toBe(true);
      }),
      { numRuns: 100, seed: 7 },
    );
  });
});
