/**
 * TLS 1.2 key derivation with SHA-256 (RFC 5246 §5, §6.3, §7.4.9): the PRF, the PSK premaster
 * secret (RFC 4279 §2), the master secret with or without the extended master secret
 * (RFC 7627 §4), the key block and Finished verify_data.
 */
import { createHmac } from 'node:crypto';

/** P_SHA256(secret, seed) truncated to n bytes. */
function pSha256(secret: Buffer, seed: Buffer, n_bytes: number): Buffer {
  const out: Buffer[] = [];
  let total = 0;
  let a = seed; // A(0)
  while (total < n_bytes) {
    a = createHmac('sha256', secret).update(a).digest();
    const block = createHmac('sha256', secret).update(a).update(seed).digest();
    out.push(block);
    total += block.length;
  }
  return Buffer.concat(out).subarray(0, n_bytes);
}

export function prf(secret: Buffer, label: string, seed: Buffer, n_bytes: number): Buffer {
  return pSha256(secret, Buffer.concat([Buffer.from(label, 'latin1'), seed]), n_bytes);
}

/** struct { uint16 N; N zero bytes; uint16 N; psk } for plain PSK key exchange. */
export function pskPremasterSecret(psk: Buffer): Buffer {
  const n = psk.length;
  const b = Buffer.alloc(4 + 2 * n);
  b.writeUInt16BE(n, 0);
  b.writeUInt16BE(n, 2 + n);
  psk.copy(b, 4 + n);
  return b;
}

export const MASTER_SECRET_BYTES = 48;

export function masterSecret(premaster: Buffer, clientRandom: Buffer, serverRandom: Buffer): Buffer {
  return prf(premaster, 'master secret', Buffer.concat([clientRandom, serverRandom]), MASTER_SECRET_BYTES);
}

/** RFC 7627: bind the master secret to the whole handshake up to ClientKeyExchange. */
export function extendedMasterSecret(premaster: Buffer, sessionHash: Buffer): Buffer {
  return prf(premaster, 'extended master secret', sessionHash, MASTER_SECRET_BYTES);
}

/** Note the seed order: server_random first for the key block, unlike the master secret. */
export function keyBlock(master: Buffer, clientRandom: Buffer, serverRandom: Buffer, n_bytes: number): Buffer {
  return prf(master, 'key expansion', Buffer.concat([serverRandom, clientRandom]), n_bytes);
}

export const VERIFY_DATA_BYTES = 12;

export function verifyData(master: Buffer, sender: 'client' | 'server', handshakeHash: Buffer): Buffer {
  return prf(master, `${sender} finished`, handshakeHash, VERIFY_DATA_BYTES);
}
