/**
 * The PSK AEAD cipher suites and record protection (RFC 6655 CCM, RFC 5487 GCM, RFC 5288 §3):
 * nonce = 4-byte salt from the key block + the 8-byte explicit nonce carried in the record, and
 * additional data = seq_num(8: epoch + 48-bit seq) + type + version + plaintext length.
 * Our explicit nonce is the record's epoch+seq, unique per key by construction; a peer's is read
 * from the record, since peers may choose it otherwise (node-dtls-client picks it at random).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { CipherCCMTypes, CipherGCMTypes } from 'node:crypto';
import { ownedCopy } from '../buffers.js';

export type CipherSuiteName = 'TLS_PSK_WITH_AES_128_CCM_8' | 'TLS_PSK_WITH_AES_128_CCM' | 'TLS_PSK_WITH_AES_128_GCM_SHA256';

export interface CipherSuite {
  id: number;
  name: CipherSuiteName;
  algorithm: CipherCCMTypes | CipherGCMTypes;
  key_bytes: number;
  /** Implicit part of the nonce, from the key block. */
  salt_bytes: number;
  explicitNonce_bytes: number;
  tag_bytes: number;
}

export const CIPHER_SUITES: readonly CipherSuite[] = [
  { id: 0xc0a8, name: 'TLS_PSK_WITH_AES_128_CCM_8', algorithm: 'aes-128-ccm', key_bytes: 16, salt_bytes: 4, explicitNonce_bytes: 8, tag_bytes: 8 },
  { id: 0xc0a4, name: 'TLS_PSK_WITH_AES_128_CCM', algorithm: 'aes-128-ccm', key_bytes: 16, salt_bytes: 4, explicitNonce_bytes: 8, tag_bytes: 16 },
  { id: 0x00a8, name: 'TLS_PSK_WITH_AES_128_GCM_SHA256', algorithm: 'aes-128-gcm', key_bytes: 16, salt_bytes: 4, explicitNonce_bytes: 8, tag_bytes: 16 },
];

export function suiteByName(name: string): CipherSuite | undefined {
  return CIPHER_SUITES.find((s) => s.name === name);
}

export function suiteById(id: number): CipherSuite | undefined {
  return CIPHER_SUITES.find((s) => s.id === id);
}

/** Bytes of key block an AEAD suite needs: two keys and two salts (no MAC keys). */
export function keyBlockBytes(suite: CipherSuite): number {
  return 2 * (suite.key_bytes + suite.salt_bytes);
}

/** Per-direction keys cut from the key block (client write first, RFC 5246 §6.3). */
export interface DirectionKeys {
  key: Buffer;
  salt: Buffer;
}

export function splitKeyBlock(suite: CipherSuite, block: Buffer): { client: DirectionKeys; server: DirectionKeys } {
  const k = suite.key_bytes;
  const s = suite.salt_bytes;
  return {
    // copies: the key block is short-lived, the keys live as long as the session (buffers.ts)
    client: { key: ownedCopy(block.subarray(0, k)), salt: ownedCopy(block.subarray(2 * k, 2 * k + s)) },
    server: { key: ownedCopy(block.subarray(k, 2 * k)), salt: ownedCopy(block.subarray(2 * k + s, 2 * k + 2 * s)) },
  };
}

function additionalData(epoch: number, seq: number, type: number, version: number, plaintext_bytes: number): Buffer {
  const ad = Buffer.allocUnsafe(13);
  ad.writeUInt16BE(epoch, 0);
  ad.writeUIntBE(seq, 2, 6);
  ad.writeUInt8(type, 8);
  ad.writeUInt16BE(version, 9);
  ad.writeUInt16BE(plaintext_bytes, 11);
  return ad;
}

/**
 * Encrypt a record fragment: explicit nonce || ciphertext || tag. With `headroom_bytes`, the
 * fragment starts that far into the returned buffer (room for the record header: one allocation).
 */
export function seal(suite: CipherSuite, keys: DirectionKeys, epoch: number, seq: number, type: number, version: number, plaintext: Buffer, headroom_bytes = 0): Buffer {
  const h = headroom_bytes;
  const out = Buffer.allocUnsafe(h + 8 + plaintext.length + suite.tag_bytes);
  out.writeUInt16BE(epoch, h);
  out.writeUIntBE(seq, h + 2, 6);
  const nonce = Buffer.concat([keys.salt, out.subarray(h, h + 8)]);
  const aad = additionalData(epoch, seq, type, version, plaintext.length);
  if (suite.algorithm === 'aes-128-gcm') {
    const c = createCipheriv(suite.algorithm, keys.key, nonce, { authTagLength: suite.tag_bytes });
    c.setAAD(aad);
    c.update(plaintext).copy(out, h + 8);
    c.final();
    c.getAuthTag().copy(out, h + 8 + plaintext.length);
  } else {
    const c = createCipheriv(suite.algorithm as CipherCCMTypes, keys.key, nonce, { authTagLength: suite.tag_bytes });
    c.setAAD(aad, { plaintextLength: plaintext.length });
    c.update(plaintext).copy(out, h + 8);
    c.final();
    c.getAuthTag().copy(out, h + 8 + plaintext.length);
  }
  return out;
}

/** Decrypt and authenticate a record fragment; null when it does not authenticate. */
export function open(suite: CipherSuite, keys: DirectionKeys, epoch: number, seq: number, type: number, version: number, fragment: Buffer): Buffer | null {
  const overhead = suite.explicitNonce_bytes + suite.tag_bytes;
  if (fragment.length < overhead) return null;
  const nonce = Buffer.concat([keys.salt, fragment.subarray(0, suite.explicitNonce_bytes)]);
  const ciphertext = fragment.subarray(suite.explicitNonce_bytes, fragment.length - suite.tag_bytes);
  const tag = fragment.subarray(fragment.length - suite.tag_bytes);
  const aad = additionalData(epoch, seq, type, version, ciphertext.length);
  try {
    if (suite.algorithm === 'aes-128-gcm') {
      const d = createDecipheriv(suite.algorithm, keys.key, nonce, { authTagLength: suite.tag_bytes });
      d.setAuthTag(tag);
      d.setAAD(aad);
      const p = d.update(ciphertext);
      d.final();
      return p;
    }
    const d = createDecipheriv(suite.algorithm as CipherCCMTypes, keys.key, nonce, { authTagLength: suite.tag_bytes });
    d.setAuthTag(tag);
    d.setAAD(aad, { plaintextLength: ciphertext.length });
    const p = d.update(ciphertext);
    d.final();
    return p;
  } catch {
    return null; // authentication failed (CCM throws from update, GCM from final)
  }
}
