/**
 * Signing keys as imgtool handles them: PKCS#8 PEM private keys (what `imgtool keygen` writes),
 * SPKI PEM public keys. The bytes a key contributes to an image are imgtool's get_public_bytes():
 * the DER SubjectPublicKeyInfo for ed25519 and ECDSA, but the PKCS#1 RSAPublicKey for RSA; the
 * PUBKEY TLV holds them and KEYHASH is their SHA-256.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { ImageError } from './errors.js';
import { TLV } from './format.js';

export type KeyType = 'ed25519' | 'ecdsa-p256' | 'rsa-2048' | 'rsa-3072';
export const KEY_TYPES: readonly KeyType[] = ['ed25519', 'ecdsa-p256', 'rsa-2048', 'rsa-3072'];

export interface PublicKey {
  readonly kind: 'public';
  readonly type: KeyType;
  /** imgtool's get_public_bytes(): what a PUBKEY TLV holds and KEYHASH hashes. */
  readonly publicBytes: Uint8Array;
  /** SHA-256 of publicBytes: the KEYHASH TLV value. */
  readonly keyHash: Uint8Array;
  /** node:crypto public key (ECDSA / RSA verification, PEM export). */
  readonly keyObject: KeyObject;
  /** Raw 32-byte Ed25519 public key for @noble/ed25519 (ed25519 only). */
  readonly ed25519Public?: Uint8Array;
}

export interface SigningKey {
  readonly kind: 'private';
  readonly type: KeyType;
  readonly publicKey: PublicKey;
  /** node:crypto private key (ECDSA / RSA signing, PEM export). */
  readonly keyObject: KeyObject;
  /** Raw 32-byte Ed25519 seed for @noble/ed25519 (ed25519 only). */
  readonly ed25519Seed?: Uint8Array;
}

export type AnyKey = PublicKey | SigningKey;

/** The TLV type of the signature a key makes. */
export function signatureTlvType(type: KeyType): number {
  switch (type) {
    case 'ed25519':
      return TLV.ED25519;
    case 'ecdsa-p256':
      return TLV.ECDSA_SIG;
    case 'rsa-2048':
      return TLV.RSA2048_PSS;
    case 'rsa-3072':
      return TLV.RSA3072_PSS;
  }
}

export function publicKeyOf(key: AnyKey): PublicKey {
  return key.kind === 'private' ? key.publicKey : key;
}

/** A fresh key pair (node:crypto's CSPRNG), as `imgtool keygen -t TYPE` makes. */
export function generateKey(type: KeyType): SigningKey {
  switch (type) {
    case 'ed25519':
      return fromPrivateKeyObject(generateKeyPairSync('ed25519').privateKey, 'generated key');
    case 'ecdsa-p256':
      return fromPrivateKeyObject(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, 'generated key');
    case 'rsa-2048':
    case 'rsa-3072':
      return fromPrivateKeyObject(
        generateKeyPairSync('rsa', { modulusLength: type === 'rsa-2048' ? 2048 : 3072, publicExponent: 65537 }).privateKey,
        'generated key',
      );
  }
}

/** PKCS#8 PEM, unencrypted, as imgtool keygen writes it. */
export function privateKeyToPem(key: SigningKey): string {
  return key.keyObject.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** SPKI PEM of the public half (`imgtool getpub -e pem`). */
export function publicKeyToPem(key: AnyKey): string {
  return publicKeyOf(key).keyObject.export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * Load a PEM key, private (PKCS#8, or the traditional EC/RSA forms) or public (SPKI).
 * `source` names the file in error messages.
 */
export function parseKeyPem(pem: string | Uint8Array, source = 'key'): AnyKey {
  const text = typeof pem === 'string' ? pem : Buffer.from(pem).toString('utf8');
  if (!/-----BEGIN [A-Z0-9 ]*KEY-----/.test(text)) {
    throw new ImageError('BAD_KEY', `${source}: not a PEM key (expected a PKCS#8 private key or an SPKI public key as imgtool keygen/getpub write)`);
  }
  if (/ENCRYPTED/.test(text)) {
    throw new ImageError('BAD_KEY', `${source}: password-protected keys are not supported; export it without a password`);
  }
  if (/PRIVATE KEY-----/.test(text)) {
    let keyObject: KeyObject;
    try {
      keyObject = createPrivateKey({ key: text, format: 'pem' });
    } catch (err) {
      throw new ImageError('BAD_KEY', `${source}: unreadable PEM private key (${errorText(err)})`);
    }
    return fromPrivateKeyObject(keyObject, source);
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: text, format: 'pem' });
  } catch (err) {
    throw new ImageError('BAD_KEY', `${source}: unreadable PEM public key (${errorText(err)})`);
  }
  return fromPublicKeyObject(keyObject, source);
}

/** Like parseKeyPem, but a public key is an error (signing needs the private key). */
export function parseSigningKeyPem(pem: string | Uint8Array, source = 'key'): SigningKey {
  const key = parseKeyPem(pem, source);
  if (key.kind !== 'private') {
    throw new ImageError('BAD_KEY', `${source}: is a public key; signing requires the private key`);
  }
  return key;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function keyTypeOf(keyObject: KeyObject, source: string): KeyType {
  const kind = keyObject.asymmetricKeyType;
  if (kind === 'ed25519') return 'ed25519';
  if (kind === 'ec') {
    const curve = keyObject.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ecdsa-p256';
    throw new ImageError('BAD_KEY', `${source}: EC curve ${curve ?? 'unknown'} is not supported (ecdsa-p256 only)`);
  }
  if (kind === 'rsa') {
    const bits = keyObject.asymmetricKeyDetails?.modulusLength;
    if (bits === 2048) return 'rsa-2048';
    if (bits === 3072) return 'rsa-3072';
    throw new ImageError('BAD_KEY', `${source}: RSA key of ${bits ?? '?'} bits; MCUboot accepts 2048 or 3072`);
  }
  throw new ImageError('BAD_KEY', `${source}: ${kind ?? 'unknown'} keys are not supported (ed25519, ecdsa-p256, rsa-2048, rsa-3072)`);
}

function fromPublicKeyObject(keyObject: KeyObject, source: string): PublicKey {
  const type = keyTypeOf(keyObject, source);
  const spki = new Uint8Array(keyObject.export({ type: 'spki', format: 'der' }));
  // imgtool's RSA get_public_bytes is PKCS#1 (bootutil embeds RSA keys that way).
  const publicBytes = type === 'rsa-2048' || type === 'rsa-3072' ? new Uint8Array(keyObject.export({ type: 'pkcs1', format: 'der' })) : spki;
  const keyHash = new Uint8Array(createHash('sha256').update(publicBytes).digest());
  const base = { kind: 'public' as const, type, publicBytes, keyHash, keyObject };
  // An Ed25519 SPKI is a fixed 12-byte prefix followed by the 32-byte key.
  return type === 'ed25519' ? { ...base, ed25519Public: spki.slice(spki.length - 32) } : base;
}

function fromPrivateKeyObject(keyObject: KeyObject, source: string): SigningKey {
  const publicKey = fromPublicKeyObject(createPublicKey(keyObject), source);
  const base = { kind: 'private' as const, type: publicKey.type, publicKey, keyObject };
  if (publicKey.type !== 'ed25519') return base;
  const jwk = keyObject.export({ format: 'jwk' });
  if (typeof jwk.d !== 'string') throw new ImageError('BAD_KEY', `${source}: Ed25519 private key without a seed`);
  return { ...base, ed25519Seed: new Uint8Array(Buffer.from(jwk.d, 'base64url')) };
}

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An Ed25519 key from a fixed 32-byte seed (demos and sweeps sign the same images every run). */
export function ed25519KeyPemFromSeed(seed: Uint8Array): string {
  if (seed.length !== 32) throw new Error(`assertion failed: ed25519 seed is 32 bytes, got ${seed.length}`);
  const der = Buffer.concat([ED25519_PKCS8_PREFIX, seed]);
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64')}\n-----END PRIVATE KEY-----\n`;
}
