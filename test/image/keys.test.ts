/** Keys: PEM formats and the key bytes/hashes imgtool puts in images (checked against imgtool getpub/getpubhash output). */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ImageError,
  KEY_TYPES,
  generateKey,
  parseKeyPem,
  parseSigningKeyPem,
  privateKeyToPem,
  publicKeyToPem,
  signImage,
  verifyImage,
} from '../../src/image/index.js';
import { InputError } from '../../src/errors.js';
import { fixture, fixturePath, signingKey } from './helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function expectKeyError(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ImageError);
    expect(err).toBeInstanceOf(InputError);
    expect((err as ImageError).code).toBe('BAD_KEY');
    expect((err as Error).message).toMatch(pattern);
    return;
  }
  throw new Error('expected a BAD_KEY ImageError');
}

describe('committed imgtool keys', () => {
  for (const type of KEY_TYPES) {
    it(`${type}: public bytes, key hash and SPKI PEM match imgtool`, () => {
      const key = signingKey(`${type}.pem`);
      expect(key.type).toBe(type);
      expect(hex(key.publicKey.publicBytes)).toBe(hex(fixture(`${type}.pubbytes.bin`)));
      expect(hex(key.publicKey.keyHash)).toBe(hex(fixture(`${type}.keyhash.bin`)));
      expect(publicKeyToPem(key)).toBe(readFileSync(fixturePath(`${type}.pub.pem`), 'utf8'));
      const pub = parseKeyPem(readFileSync(fixturePath(`${type}.pub.pem`), 'utf8'));
      expect(pub.kind).toBe('public');
      expect(hex(pub.kind === 'public' ? pub.keyHash : new Uint8Array())).toBe(hex(key.publicKey.keyHash));
    });
  }
  it('RSA key bytes are PKCS#1, EC and Ed25519 are SubjectPublicKeyInfo (imgtool get_public_bytes)', () => {
    expect(signingKey('ed25519.pem').publicKey.publicBytes.length).toBe(44);
    expect(signingKey('ecdsa-p256.pem').publicKey.publicBytes.length).toBe(91);
    const rsa = signingKey('rsa-2048.pem').publicKey.publicBytes;
    // PKCS#1 RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e } — no AlgorithmIdentifier
    expect(rsa[0]).toBe(0x30);
    expect(rsa[4]).toBe(0x02);
    expect(rsa.length).toBe(270);
  });
});

describe('keygen', () => {
  for (const type of KEY_TYPES) {
    it(`${type}: PKCS#8 PEM round trip, and the key signs verifiable images`, () => {
      const key = generateKey(type);
      const pem = privateKeyToPem(key);
      expect(pem.startsWith('-----BEGIN PRIVATE KEY-----')).toBe(true);
      const again = parseSigningKeyPem(pem, 'generated.pem');
      expect(again.type).toBe(type);
      expect(hex(again.publicKey.keyHash)).toBe(hex(key.publicKey.keyHash));
      const image = signImage(new Uint8Array(100).fill(7), { key: again, headerSize_bytes: 0x20, padHeader: true, version: '1.0.0' });
      expect(verifyImage(image, [parseKeyPem(publicKeyToPem(key))]).valid).toBe(true);
      expect(verifyImage(image, [signingKey('ed25519.pem')]).reason).toBe('UNTRUSTED_KEY');
    });
  }
});

describe('bad keys are typed errors naming the file', () => {
  it('not PEM', () => expectKeyError(() => parseKeyPem('hello', 'k.pem'), /^k\.pem: not a PEM key/));
  it('broken PEM body', () =>
    expectKeyError(() => parseKeyPem('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'k.pem'), /^k\.pem: unreadable PEM private key/));
  it('password protected', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }).toString();
    expectKeyError(() => parseKeyPem(pem, 'enc.pem'), /password-protected/);
  });
  it('unsupported curve, RSA size and key kinds', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expectKeyError(() => parseKeyPem(p384, 'p384.pem'), /secp384r1 is not supported/);
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expectKeyError(() => parseKeyPem(rsa1024, 'rsa.pem'), /1024 bits/);
    const x25519 = generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expectKeyError(() => parseKeyPem(x25519, 'x.pem'), /x25519 keys are not supported/);
  });
  it('a public key cannot sign', () => {
    expectKeyError(() => parseSigningKeyPem(readFileSync(fixturePath('ed25519.pub.pem'), 'utf8'), 'pub.pem'), /public key; signing requires/);
  });
});
