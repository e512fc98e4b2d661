/**
 * Image validation as the bootloader needs it (bootutil_img_validate + the header checks of
 * boot_validate_slot), behind one function so the bootloader does not depend on how the image
 * module verifies. Results are memoized by content (SHA-256 of the hashed region + signature TLVs)
 * because sweeps boot the same two images hundreds of thousands of times.
 */
import { createHash, verify as cryptoVerify } from 'node:crypto';
import { ImageError } from '../image/errors.js';
import { FLAGS_COMPRESSED, FLAGS_ENCRYPTED, IMAGE_F, IMAGE_MAGIC, TLV } from '../image/format.js';
import type { ImageHeader } from '../image/header.js';
import type { PublicKey } from '../image/keys.js';
import { parseImage } from '../image/parse.js';
import type { ParsedImage } from '../image/parse.js';

export type TrustedKey = PublicKey;

export type ValidationVerdict =
  | { ok: true; image: ParsedImage }
  | { ok: false; reason: string };

/** boot_check_header_valid on the raw 32 header bytes: magic, sizes inside the area, not encrypted/compressed. */
export function headerLooksValid(header: ImageHeader | null, areaSize: number): boolean {
  if (!header || header.magic !== IMAGE_MAGIC) return false;
  const size = header.imageSize_bytes + header.headerSize_bytes + header.protectedTlvSize_bytes;
  if (size > 0xffffffff || size >= areaSize) return false;
  if ((header.flags & FLAGS_ENCRYPTED) !== 0) return false;
  if ((header.flags & FLAGS_COMPRESSED) !== 0) return false;
  return true;
}

export function isNonBootable(header: ImageHeader | null): boolean {
  return header !== null && (header.flags & IMAGE_F.NON_BOOTABLE) !== 0;
}

const sigMemo = new Map<string, boolean>();
const SIG_MEMO_MAX_ENTRIES = 4096;

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function verifySignature(key: TrustedKey, digest: Uint8Array, sig: Uint8Array, sigType: number): boolean {
  const memoKey = `${hex(key.keyHash)}:${hex(digest)}:${sigType}:${hex(sig)}`;
  const cached = sigMemo.get(memoKey);
  if (cached !== undefined) return cached;
  let ok = false;
  try {
    // Ed25519 signs the 32-byte digest (MCUboot's default, non-"pure" mode). ECDSA and RSA-PSS
    // verification arrives with src/image's verifyImage; until then they do not verify here.
    if (sigType === TLV.ED25519 && key.type === 'ed25519') ok = cryptoVerify(null, digest, key.keyObject, sig);
  } catch {
    ok = false;
  }
  if (sigMemo.size >= SIG_MEMO_MAX_ENTRIES) sigMemo.clear();
  sigMemo.set(memoKey, ok);
  return ok;
}

/**
 * bootutil_img_validate on the bytes of a slot: TLVs parse, the image ends within
 * `maxImageSize_bytes` (bootutil_max_image_size), SHA256 TLV matches, a signature by a trusted key
 * (found through KEYHASH) verifies, and with `nvCounter` set the SEC_CNT TLV is at least it.
 */
export function validateImage(
  slotBytes: Uint8Array,
  trustedKeys: readonly TrustedKey[],
  maxImageSize_bytes: number,
  nvCounter: number | null,
): ValidationVerdict {
  let image: ParsedImage;
  try {
    image = parseImage(slotBytes);
  } catch (e) {
    if (e instanceof ImageError) return { ok: false, reason: `${e.code}: ${e.message}` };
    throw e;
  }
  if (image.totalSize_bytes > maxImageSize_bytes) {
    return { ok: false, reason: `image of ${image.totalSize_bytes} bytes exceeds the ${maxImageSize_bytes} bytes the slot allows` };
  }
  const shaTlv = image.tlvs.find((t) => t.type === TLV.SHA256);
  if (!shaTlv || shaTlv.value.length !== 32) return { ok: false, reason: 'no SHA256 TLV' };
  const digest = createHash('sha256').update(slotBytes.subarray(0, image.hashedSize_bytes)).digest();
  if (!Buffer.from(shaTlv.value).equals(digest)) return { ok: false, reason: 'SHA256 mismatch' };
  // Walk TLVs in order as bootutil does: a KEYHASH selects the key for the signatures after it.
  let key: TrustedKey | null = null;
  let signatureOk = false;
  for (const t of image.unprotectedTlvs) {
    if (t.type === TLV.KEYHASH) {
      key = trustedKeys.find((k) => Buffer.from(k.keyHash).equals(t.value)) ?? null;
    } else if (t.type === TLV.ED25519 || t.type === TLV.ECDSA_SIG || t.type === TLV.RSA2048_PSS || t.type === TLV.RSA3072_PSS) {
      if (key && verifySignature(key, digest, t.value, t.type)) signatureOk = true;
      key = null;
    }
  }
  if (!signatureOk) return { ok: false, reason: 'no valid signature by a trusted key' };
  if (nvCounter !== null) {
    if (image.securityCounter === null) return { ok: false, reason: 'no SEC_CNT TLV but the board has a security counter' };
    if (image.securityCounter < nvCounter) {
      return { ok: false, reason: `security counter ${image.securityCounter} is below the device's ${nvCounter}` };
    }
  }
  return { ok: true, image };
}
