/**
 * Signature primitives per key type, as imgtool makes them and bootutil checks them:
 * ED25519 signs the 32-byte SHA-256 digest (MCUboot's default, non-"pure" mode) with
 * @noble/ed25519 (deterministic, byte-identical to imgtool); ECDSA P-256 (DER, SHA-256) and
 * RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) sign the hashed region itself, through node:crypto.
 * Every verification goes through node:crypto (OpenSSL): for ED25519 it is ~20x cheaper than
 * noble's, and every device of a fleet verifies each image it downloads and boots. Verification
 * never throws: a malformed signature is simply not valid.
 */
import { constants, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import type { PublicKey, SigningKey } from './keys.js';

// noble's synchronous API needs a SHA-512; installing it here keeps sign/verify synchronous.
ed.hashes.sha512 = sha512;

const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } as const;

/** Sign an image: `region` is header + payload + protected TLVs, `digest` its SHA-256. */
export function signRegion(key: SigningKey, region: Uint8Array, digest: Uint8Array, padSig = false): Uint8Array {
  switch (key.type) {
    case 'ed25519':
      return ed.sign(digest, key.ed25519Seed!);
    case 'ecdsa-p256': {
      const sig = new Uint8Array(nodeSign('sha256', region, { key: key.keyObject, dsaEncoding: 'der' }));
      if (!padSig) return sig;
      // imgtool --pad-sig: zero-pad to 72 bytes for MCUboot < 1.5.
      const padded = new Uint8Array(72);
      padded.set(sig);
      return padded;
    }
    case 'rsa-2048':
    case 'rsa-3072':
      return new Uint8Array(nodeSign('sha256', region, { key: key.keyObject, ...PSS }));
  }
}

/** Check one signature TLV value against a public key. */
export function verifyRegion(key: PublicKey, signature: Uint8Array, region: Uint8Array, digest: Uint8Array): boolean {
  try {
    switch (key.type) {
      case 'ed25519':
        if (signature.length !== 64) return false;
        // OpenSSL's RFC 8032 verification, as MCUboot's ed25519 (and noble with zip215 off) accept
        return nodeVerify(null, digest, key.keyObject, signature);
      case 'ecdsa-p256': {
        if (signature.length < 8 || signature.length > 72) return false;
        // Drop --pad-sig zero padding: the DER SEQUENCE length says where the signature ends.
        const derLength = signature[1]! + 2;
        if (derLength > signature.length) return false;
        return nodeVerify('sha256', region, { key: key.keyObject, dsaEncoding: 'der' }, signature.subarray(0, derLength));
      }
      case 'rsa-2048':
      case 'rsa-3072':
        if (signature.length !== (key.type === 'rsa-2048' ? 256 : 384)) return false;
        return nodeVerify('sha256', region, { key: key.keyObject, ...PSS }, signature);
    }
  } catch {
    return false;
  }
}
