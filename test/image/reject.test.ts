/**
 * Every verdict reason and every typed error, each produced by a crafted image, plus parsing of a
 * whole slot and the verification memo of the fast path.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ImageError,
  TLV,
  VerifyMemo,
  createTrustStore,
  encodeHeader,
  encodeTlvArea,
  parseImage,
  parseImageLayout,
  signImage,
  verifyImage,
  verifyParsed,
} from '../../src/image/index.js';
import type { ImageErrorCode, SigningKey, TlvInput, VerifyReason } from '../../src/image/index.js';
import { signRegion } from '../../src/image/signature.js';
import { signingKey, trustedPublicKeys } from './helpers.js';

const ed = signingKey('ed25519.pem');
const other = signingKey('other-ed25519.pem');
const trusted = trustedPublicKeys();
const payload = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff);
const version = { major: 1, minor: 2, revision: 3, build: 4 };

function good(options: { key?: SigningKey | null; securityCounter?: number | null; customTlvs?: TlvInput[] } = {}): Uint8Array {
  return signImage(payload, {
    key: options.key === undefined ? ed : options.key,
    headerSize_bytes: 0x200,
    padHeader: true,
    version,
    securityCounter: options.securityCounter === undefined ? 1 : options.securityCounter,
    customTlvs: options.customTlvs ?? [],
  });
}

function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

/** An image assembled by hand, so the unprotected TLVs can be anything. */
function craft(opts: { protectedTlvs?: TlvInput[]; flags?: number; unprotected: (digest: Uint8Array, region: Uint8Array) => TlvInput[] }): Uint8Array {
  const prot = encodeTlvArea(0x6908, opts.protectedTlvs ?? []);
  const header = encodeHeader({ loadAddr: 0, headerSize_bytes: 32, protectedTlvSize_bytes: prot.length, imageSize_bytes: payload.length, flags: opts.flags ?? 0, version });
  const region = Buffer.concat([header, payload, prot]);
  const digest = sha256(region);
  return new Uint8Array(Buffer.concat([region, encodeTlvArea(0x6907, opts.unprotected(digest, region))]));
}

function edSigned(digest: Uint8Array, region: Uint8Array, key: SigningKey = ed): TlvInput[] {
  return [
    { type: TLV.SHA256, value: digest },
    { type: TLV.KEYHASH, value: key.publicKey.keyHash },
    { type: TLV.ED25519, value: signRegion(key, region, digest) },
  ];
}

function patch(bytes: Uint8Array, fn: (b: Uint8Array, view: DataView) => void): Uint8Array {
  const copy = bytes.slice();
  fn(copy, new DataView(copy.buffer));
  return copy;
}

function expectVerdict(bytes: Uint8Array, reason: VerifyReason, message?: RegExp): void {
  const result = verifyImage(bytes, trusted);
  expect(result.valid).toBe(false);
  expect(result.reason).toBe(reason);
  if (message) expect(result.message).toMatch(message);
}

function expectImageError(fn: () => unknown, code: ImageErrorCode, message?: RegExp): void {
  let thrown: unknown = null;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(ImageError);
  expect((thrown as ImageError).code).toBe(code);
  if (message) expect((thrown as ImageError).message).toMatch(message);
}

/** Offsets in a `good()` image: header 0x200, payload 1000, protected area 12 bytes (SEC_CNT). */
const TLV_OFF = 0x200 + payload.length;
const UNPROT_OFF = TLV_OFF + 12;

describe('valid baseline', () => {
  it('the crafted and signed baselines verify', () => {
    expect(verifyImage(good(), trusted)).toMatchObject({ valid: true, reason: null, version: '1.2.3+4', keyType: 'ed25519' });
    expect(verifyImage(craft({ unprotected: edSigned }), trusted).valid).toBe(true);
  });
});

describe('verdict reasons', () => {
  it('BAD_MAGIC', () => expectVerdict(patch(good(), (b) => (b[0] = 0)), 'BAD_MAGIC', /magic/));
  it('TRUNCATED: shorter than a header, or than hdr_size + img_size', () => {
    expectVerdict(good().subarray(0, 20), 'TRUNCATED', /shorter than the 32-byte header/);
    expectVerdict(good().subarray(0, 0x200 + 100), 'TRUNCATED', /img_size 1000/);
    expectVerdict(new Uint8Array(0), 'TRUNCATED');
  });
  it('BAD_HEADER: hdr_size below 32, protect_tlv_size inconsistent with the TLV area', () => {
    expectVerdict(patch(good(), (_b, v) => v.setUint16(8, 16, true)), 'BAD_HEADER', /hdr_size=16/);
    expectVerdict(patch(good(), (_b, v) => v.setUint16(10, 16, true)), 'BAD_HEADER', /protect_tlv_size 16 disagrees/);
    expectVerdict(patch(good({ securityCounter: null }), (_b, v) => v.setUint16(10, 8, true)), 'BAD_HEADER', /no protected TLV area/);
  });
  it('BAD_TLV_MAGIC: no TLV area where the header says', () => {
    expectVerdict(patch(good(), (b) => (b[UNPROT_OFF] = 0)), 'BAD_TLV_MAGIC', /expected 0x6907/);
    expectVerdict(patch(good({ securityCounter: null }), (_b, v) => v.setUint32(12, 999, true)), 'BAD_TLV_MAGIC');
  });
  it('TLV_OVERRUN: area or entry past its end', () => {
    expectVerdict(patch(good(), (_b, v) => v.setUint16(UNPROT_OFF + 2, 0x4000, true)), 'TLV_OVERRUN', /past the end of the data/);
    expectVerdict(patch(good(), (_b, v) => v.setUint16(UNPROT_OFF + 6, 0x200, true)), 'TLV_OVERRUN', /SHA256 .* has length 512/);
    expectVerdict(patch(good(), (_b, v) => v.setUint16(TLV_OFF + 6, 5, true)), 'TLV_OVERRUN', /protected TLV SEC_CNT/);
    expectVerdict(patch(good(), (_b, v) => v.setUint16(UNPROT_OFF + 2, 2, true)), 'TLV_OVERRUN', /shorter than its own 4-byte info header/);
    expectVerdict(good().subarray(0, UNPROT_OFF + 2), 'TLV_OVERRUN');
  });
  it('BAD_TLV: SHA256 of the wrong length', () => {
    expectVerdict(craft({ unprotected: (d) => [{ type: TLV.SHA256, value: d.subarray(0, 31) }] }), 'BAD_TLV', /31 bytes/);
  });
  it('HASH_MISMATCH: payload, header or protected TLV changed', () => {
    expectVerdict(patch(good(), (b) => (b[0x300]! ^= 1)), 'HASH_MISMATCH', /computed [0-9a-f]{64}/);
    expectVerdict(patch(good(), (b) => (b[20]! ^= 1)), 'HASH_MISMATCH'); // version major
    expectVerdict(patch(good(), (b) => (b[TLV_OFF + 8]! ^= 1)), 'HASH_MISMATCH'); // SEC_CNT value
    expectVerdict(patch(good(), (b) => (b[UNPROT_OFF + 8]! ^= 1)), 'HASH_MISMATCH'); // the SHA256 TLV itself
  });
  it('MISSING_HASH', () => {
    expectVerdict(craft({ unprotected: (d, r) => edSigned(d, r).slice(1) }), 'MISSING_HASH');
  });
  it('MISSING_SIGNATURE', () => {
    expectVerdict(good({ key: null }), 'MISSING_SIGNATURE');
    expect(verifyImage(good({ key: null }), [], { requireSignature: false }).valid).toBe(true);
  });
  it('SIGNATURE_INVALID for each key type', () => {
    for (const file of ['ed25519.pem', 'ecdsa-p256.pem', 'rsa-2048.pem', 'rsa-3072.pem']) {
      const image = good({ key: signingKey(file) });
      const layout = parseImageLayout(image);
      const sig = layout.unprotectedTlvs.at(-1)!;
      expect(verifyImage(image, trusted).valid).toBe(true);
      expectVerdict(patch(image, (b) => (b[sig.offset + 10]! ^= 0x40)), 'SIGNATURE_INVALID', /does not verify/);
    }
  });
  it('UNTRUSTED_KEY: key hash not trusted, or no key TLV before the signature', () => {
    expectVerdict(good({ key: other }), 'UNTRUSTED_KEY', /not trusted/);
    expect(verifyImage(good({ key: other }), [other.publicKey]).valid).toBe(true);
    expectVerdict(craft({ unprotected: (d, r) => edSigned(d, r).filter((t) => t.type !== TLV.KEYHASH) }), 'UNTRUSTED_KEY', /not preceded by a KEYHASH/);
    // KEYHASH of the trusted key, but the signature is by another key
    expectVerdict(
      craft({ unprotected: (d, r) => [edSigned(d, r)[0]!, edSigned(d, r)[1]!, { type: TLV.ED25519, value: signRegion(other, r, d) }] }),
      'SIGNATURE_INVALID',
    );
  });
  it('PUBKEY (--public-key-format full) is matched against the trusted keys', () => {
    const full = signImage(payload, { key: ed, headerSize_bytes: 0x200, padHeader: true, publicKeyFormat: 'full' });
    expect(verifyImage(full, trusted).valid).toBe(true);
    expect(verifyImage(full, [other]).reason).toBe('UNTRUSTED_KEY');
  });
});

describe('unsupported images throw a clear ImageError instead of a verdict', () => {
  it('encrypted flags', () => {
    expectImageError(() => verifyImage(craft({ flags: 0x4, unprotected: edSigned }), trusted), 'UNSUPPORTED', /encrypted images/);
    expectImageError(() => verifyImage(craft({ flags: 0x8, unprotected: edSigned }), trusted), 'UNSUPPORTED', /encrypted/);
  });
  it('compressed flags', () => {
    expectImageError(() => verifyImage(craft({ flags: 0x400, unprotected: edSigned }), trusted), 'UNSUPPORTED', /compressed/);
  });
  it('DEPENDENCY TLV', () => {
    const dep = { type: TLV.DEPENDENCY, value: new Uint8Array(12) };
    expectImageError(() => verifyImage(craft({ protectedTlvs: [dep], unprotected: edSigned }), trusted), 'UNSUPPORTED', /DEPENDENCY/);
  });
  it('SHA-512 hash, pure signature', () => {
    expectImageError(() => verifyImage(craft({ unprotected: () => [{ type: TLV.SHA512, value: new Uint8Array(64) }] }), trusted), 'UNSUPPORTED', /SHA512/);
    expectImageError(() => verifyImage(craft({ unprotected: () => [{ type: TLV.SIG_PURE, value: Uint8Array.of(1) }] }), trusted), 'UNSUPPORTED', /pure/);
  });
  it('but they still parse (inspect works)', () => {
    expect(parseImage(craft({ flags: 0x4, unprotected: edSigned })).header.flags).toBe(0x4);
  });
});

describe('parseImage', () => {
  it('finds the image end inside a whole slot (erased padding and trailer after it)', () => {
    const image = good();
    const slot = new Uint8Array(0x4000).fill(0xff);
    slot.set(image);
    slot.fill(0x42, 0x3ff0); // something trailer-like at the end
    const parsed = parseImage(slot);
    expect(parsed.totalSize_bytes).toBe(image.length);
    expect(parsed.bytes.length).toBe(image.length);
    expect(verifyImage(slot, trusted)).toMatchObject({ valid: true, totalSize_bytes: image.length });
  });
  it('BAD_BEHAVIOUR and BAD_BOARD are typed errors; verify still judges the signature', () => {
    const badJson = good({ customTlvs: [{ type: 0xa0, value: new TextEncoder().encode('{"selfTest":"explode"}') }] });
    expectImageError(() => parseImage(badJson), 'BAD_BEHAVIOUR', /selfTest/);
    expect(verifyImage(badJson, trusted).valid).toBe(true);
    expectImageError(() => parseImage(good({ customTlvs: [{ type: 0xa0, value: new TextEncoder().encode('not json') }] })), 'BAD_BEHAVIOUR', /not UTF-8 JSON/);
    expectImageError(() => parseImage(good({ customTlvs: [{ type: 0xa0, value: new TextEncoder().encode('{"bootMs":-1}') }] })), 'BAD_BEHAVIOUR', /bootMs/);
    expectImageError(() => parseImage(good({ customTlvs: [{ type: 0xa1, value: Uint8Array.of(0xff, 0xfe) }] })), 'BAD_BOARD', /UTF-8/);
  });
  it('SEC_CNT of the wrong length', () => {
    const image = craft({ protectedTlvs: [{ type: TLV.SEC_CNT, value: new Uint8Array(3) }], unprotected: edSigned });
    expectImageError(() => parseImage(image), 'BAD_TLV', /SEC_CNT/);
  });
  it('ignores vendor TLVs in the unprotected area (not covered by the signature)', () => {
    const image = craft({ unprotected: (d, r) => [...edSigned(d, r), { type: 0xa1, value: new TextEncoder().encode('evil') }] });
    expect(parseImage(image).board).toBeNull();
  });
});

describe('verifyParsed fast path and memo', () => {
  it('an identical image is signature-checked once', () => {
    const memo = new VerifyMemo();
    const store = createTrustStore(trusted);
    const layout = parseImageLayout(good());
    const first = verifyParsed(layout, store, { memo });
    const second = verifyParsed(parseImageLayout(good()), store, { memo });
    expect(first.valid).toBe(true);
    expect(second.valid).toBe(true);
    expect(memo.misses).toBe(1);
    expect(memo.hits).toBe(1);
  });
  it('the memo does not vouch for a damaged signature with the same digest', () => {
    const memo = new VerifyMemo();
    const image = good();
    expect(verifyParsed(parseImageLayout(image), trusted, { memo }).valid).toBe(true);
    const sig = parseImageLayout(image).unprotectedTlvs.at(-1)!;
    const damaged = patch(image, (b) => (b[sig.offset]! ^= 1));
    const result = verifyParsed(parseImageLayout(damaged), trusted, { memo });
    expect(result.reason).toBe('SIGNATURE_INVALID');
    expect(memo.misses).toBe(2);
  });
  it('the memo is bounded', () => {
    const memo = new VerifyMemo(2);
    for (let i = 0; i < 5; i++) verifyParsed(parseImageLayout(signImage(Uint8Array.of(i), { key: ed, headerSize_bytes: 32, padHeader: true })), trusted, { memo });
    expect(memo.size).toBeLessThanOrEqual(2);
    expect(memo.misses).toBe(5);
  });
});

describe('sign option errors are typed', () => {
  const base = { key: ed, headerSize_bytes: 0x200, padHeader: true } as const;
  it('rejects what imgtool rejects', () => {
    expectImageError(() => signImage(payload, { ...base, headerSize_bytes: 16 }), 'BAD_OPTION', /header-size/);
    expectImageError(() => signImage(payload, { ...base, padHeader: false }), 'BAD_OPTION', /zero bytes/);
    expectImageError(() => signImage(payload, { ...base, slotSize_bytes: 0x800 }), 'IMAGE_TOO_LARGE', /exceeds slot size/);
    expectImageError(() => signImage(payload, { ...base, customTlvs: [{ type: 0x10, value: new Uint8Array(1) }] }), 'BAD_OPTION', /vendor range/);
    expectImageError(
      () => signImage(payload, { ...base, customTlvs: [{ type: 0xa5, value: new Uint8Array(1) }, { type: 0xa5, value: new Uint8Array(1) }] }),
      'BAD_OPTION',
      /twice/,
    );
    expectImageError(() => signImage(payload, { ...base, loadAddr: 1, romFixed: 2 }), 'BAD_OPTION', /at the same time/);
    expectImageError(() => signImage(payload, { ...base, pad: true }), 'BAD_OPTION', /slot size/);
    expectImageError(() => signImage(payload, { ...base, version: '1.2.3.4' }), 'BAD_VERSION', /maj\.min\.rev\+build/);
    expectImageError(() => signImage(payload, { ...base, version: '256.0.0' }), 'BAD_VERSION', /major must be at most 255/);
    expectImageError(() => signImage(payload, { ...base, securityCounter: 2 ** 32 }), 'BAD_OPTION', /security-counter/);
  });
});
