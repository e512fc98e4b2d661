/**
 * Image verification as bootutil_img_validate does it: the SHA256 TLV must match the hash of
 * header + payload + protected TLVs, and a signature TLV must verify with a trusted key, found
 * through the KEYHASH (or PUBKEY) TLV that precedes it. Pure and synchronous. verifyParsed is the
 * bootloader's fast path: it takes an already parsed image and a memo keyed by the digest, so an
 * image seen before costs one SHA-256 and a map lookup instead of a signature check.
 */
import { createHash } from 'node:crypto';
import { ImageError } from './errors.js';
import type { ImageParseCode } from './errors.js';
import { FLAGS_COMPRESSED, FLAGS_ENCRYPTED, TLV, tlvName } from './format.js';
import { decodeHeader, formatVersion } from './header.js';
import { publicKeyOf, signatureTlvType } from './keys.js';
import type { AnyKey, KeyType, PublicKey } from './keys.js';
import { parseImageLayout } from './parse.js';
import type { ImageLayout } from './parse.js';
import { verifyRegion } from './signature.js';

export type VerifyReason = ImageParseCode | 'HASH_MISMATCH' | 'MISSING_HASH' | 'MISSING_SIGNATURE' | 'SIGNATURE_INVALID' | 'UNTRUSTED_KEY';

export interface VerifyResult {
  valid: boolean;
  /** null when valid. */
  reason: VerifyReason | null;
  /** One line saying what held or what failed. */
  message: string;
  /** "1.2.3+4" when the header could be read, else null. */
  version: string | null;
  /** SHA-256 computed over header + payload + protected TLVs (null if the image did not parse). */
  digest: Uint8Array | null;
  /** Type of the trusted key whose signature verified. */
  keyType: KeyType | null;
  /** Length of the image itself (null if it did not parse). */
  totalSize_bytes: number | null;
}

export interface VerifyOptions {
  /** Remember signature verdicts by digest + signature + key (fast path for repeated boots). */
  memo?: VerifyMemo;
  /** false: a hash-only check, like `imgtool verify` without -k. Default true. */
  requireSignature?: boolean;
}

/** Trusted public keys indexed the way bootutil finds them (by KEYHASH or by full PUBKEY). */
export interface TrustStore {
  readonly keys: readonly PublicKey[];
  readonly byKeyHash: ReadonlyMap<string, PublicKey>;
  readonly byPublicBytes: ReadonlyMap<string, PublicKey>;
}

const VERDICT_REASONS = new Set<string>(['TRUNCATED', 'BAD_MAGIC', 'BAD_HEADER', 'BAD_TLV_MAGIC', 'TLV_OVERRUN', 'BAD_TLV']);
const SIGNATURE_TLVS = new Set<number>([TLV.RSA2048_PSS, TLV.ECDSA_SIG, TLV.RSA3072_PSS, TLV.ED25519]);

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

export function createTrustStore(keys: readonly AnyKey[]): TrustStore {
  const pubs = keys.map(publicKeyOf);
  return {
    keys: pubs,
    byKeyHash: new Map(pubs.map((k) => [hex(k.keyHash), k])),
    byPublicBytes: new Map(pubs.map((k) => [hex(k.publicBytes), k])),
  };
}

const trustStoreCache = new WeakMap<readonly AnyKey[], TrustStore>();

/** createTrustStore, made once per key list (the bootloader and the oracle verify with the same list at every boot). */
export function trustStoreOf(keys: readonly AnyKey[]): TrustStore {
  let t = trustStoreCache.get(keys);
  if (!t) {
    t = createTrustStore(keys);
    trustStoreCache.set(keys, t);
  }
  return t;
}

function isTrustStore(t: readonly AnyKey[] | TrustStore): t is TrustStore {
  return !Array.isArray(t);
}

/**
 * Bounded memo of signature verdicts. The key covers the digest, the signature bytes and the key,
 * because the unprotected TLVs are not hashed: the same digest with a damaged signature must
 * still fail.
 */
export class VerifyMemo {
  private readonly verdicts = new Map<string, boolean>();
  hits = 0;
  misses = 0;
  constructor(private readonly maxEntries = 4096) {}

  check(digest: Uint8Array, signatureType: number, signature: Uint8Array, key: PublicKey, compute: () => boolean): boolean {
    const id = `${hex(digest)}:${signatureType}:${hex(key.keyHash)}:${hex(signature)}`;
    const known = this.verdicts.get(id);
    if (known !== undefined) {
      this.hits++;
      return known;
    }
    this.misses++;
    const verdict = compute();
    // Clearing everything when full keeps this O(1) and deterministic; a sweep's working set is tiny.
    if (this.verdicts.size >= this.maxEntries) this.verdicts.clear();
    this.verdicts.set(id, verdict);
    return verdict;
  }

  get size(): number {
    return this.verdicts.size;
  }
}

function fail(image: ImageLayout | null, reason: VerifyReason, message: string, digest: Uint8Array | null = null): VerifyResult {
  return {
    valid: false,
    reason,
    message,
    version: image ? formatVersion(image.header.version) : null,
    digest,
    keyType: null,
    totalSize_bytes: image ? image.totalSize_bytes : null,
  };
}

/** Throw UNSUPPORTED for images whose verdict we could not compute correctly. */
export function assertSupported(image: ImageLayout): void {
  const flags = image.header.flags;
  if ((flags & FLAGS_ENCRYPTED) !== 0) {
    throw new ImageError('UNSUPPORTED', `encrypted images (flags 0x${flags.toString(16)}) are not supported yet`);
  }
  if ((flags & FLAGS_COMPRESSED) !== 0) {
    throw new ImageError('UNSUPPORTED', `compressed images (flags 0x${flags.toString(16)}) are not supported yet`);
  }
  for (const t of image.tlvs) {
    if (t.type === TLV.DEPENDENCY) throw new ImageError('UNSUPPORTED', 'images with a DEPENDENCY TLV (multi-image dependencies) are not supported yet');
    if (t.type === TLV.SIG_PURE) throw new ImageError('UNSUPPORTED', 'pure signatures (SIG_PURE TLV) are not supported yet');
  }
}

/** Verify an already parsed image. Throws ImageError('UNSUPPORTED') for encrypted/compressed/dependency images. */
export function verifyParsed(image: ImageLayout, trusted: readonly AnyKey[] | TrustStore, options: VerifyOptions = {}): VerifyResult {
  assertSupported(image);
  const trust = isTrustStore(trusted) ? trusted : createTrustStore(trusted);
  const region = image.bytes.subarray(0, image.hashedSize_bytes);
  const digest = new Uint8Array(createHash('sha256').update(region).digest());

  let hashOk = false;
  let otherHash: number | null = null;
  let currentKey: PublicKey | null = null;
  let sawKeyTlv = false;
  let sawSignature = false;
  let lastVerdict: boolean | null = null; // bootutil keeps the verdict of the last signature it checked
  let lastKey: PublicKey | null = null;
  let lastType = 0;

  for (const tlv of image.tlvs) {
    switch (tlv.type) {
      case TLV.SHA256:
        if (tlv.value.length !== 32) return fail(image, 'BAD_TLV', `SHA256 TLV is ${tlv.value.length} bytes, expected 32`, digest);
        if (!Buffer.from(digest).equals(tlv.value)) {
          return fail(image, 'HASH_MISMATCH', `image hash mismatch: computed ${hex(digest)}, SHA256 TLV says ${hex(tlv.value)}`, digest);
        }
        hashOk = true;
        break;
      case TLV.SHA384:
      case TLV.SHA512:
        otherHash = tlv.type;
        break;
      case TLV.KEYHASH:
        sawKeyTlv = true;
        currentKey = trust.byKeyHash.get(hex(tlv.value)) ?? null;
        break;
      case TLV.PUBKEY:
        sawKeyTlv = true;
        currentKey = trust.byPublicBytes.get(hex(tlv.value)) ?? null;
        break;
      default:
        if (!SIGNATURE_TLVS.has(tlv.type)) break;
        sawSignature = true;
        // Like bootutil: a signature not preceded by a trusted key of its type is skipped.
        if (currentKey === null || signatureTlvType(currentKey.type) !== tlv.type) break;
        {
          const key = currentKey;
          const check = (): boolean => verifyRegion(key, tlv.value, region, digest);
          lastVerdict = options.memo ? options.memo.check(digest, tlv.type, tlv.value, key, check) : check();
          lastKey = key;
          lastType = tlv.type;
        }
        currentKey = null;
        break;
    }
  }

  if (!hashOk) {
    if (otherHash !== null) throw new ImageError('UNSUPPORTED', `${tlvName(otherHash)} image hashes are not supported yet (SHA256 only)`);
    return fail(image, 'MISSING_HASH', 'image has no SHA256 TLV', digest);
  }
  const version = formatVersion(image.header.version);
  if (options.requireSignature === false) {
    return { valid: true, reason: null, message: `image ${version}: SHA-256 ok (signature not checked)`, version, digest, keyType: null, totalSize_bytes: image.totalSize_bytes };
  }
  if (lastVerdict === null) {
    if (!sawSignature) return fail(image, 'MISSING_SIGNATURE', 'image has no signature TLV', digest);
    if (!sawKeyTlv) return fail(image, 'UNTRUSTED_KEY', 'signature is not preceded by a KEYHASH or PUBKEY TLV, so no key can be trusted', digest);
    return fail(image, 'UNTRUSTED_KEY', `image is signed by a key that is not trusted (key hash not among the ${trust.keys.length} trusted key(s))`, digest);
  }
  if (!lastVerdict) {
    return fail(image, 'SIGNATURE_INVALID', `${tlvName(lastType)} signature does not verify with the trusted ${lastKey?.type ?? ''} key`, digest);
  }
  return {
    valid: true,
    reason: null,
    message: `image ${version}: SHA-256 ok, ${tlvName(lastType)} signature by trusted ${lastKey?.type ?? ''} key`,
    version,
    digest,
    keyType: lastKey?.type ?? null,
    totalSize_bytes: image.totalSize_bytes,
  };
}

/**
 * Verify image bytes (possibly a whole slot) against trusted public keys. Malformed images give a
 * verdict with the parse error as reason; only unsupported images throw (ImageError UNSUPPORTED).
 */
export function verifyImage(bytes: Uint8Array, trusted: readonly AnyKey[] | TrustStore, options: VerifyOptions = {}): VerifyResult {
  let image: ImageLayout;
  try {
    image = parseImageLayout(bytes);
  } catch (err) {
    if (err instanceof ImageError && VERDICT_REASONS.has(err.code)) {
      let version: string | null = null;
      try {
        version = formatVersion(decodeHeader(bytes).version);
      } catch {
        version = null;
      }
      return { ...fail(null, err.code as ImageParseCode, err.message), version };
    }
    throw err;
  }
  return verifyParsed(image, trusted, options);
}
