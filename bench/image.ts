/**
 * Image benchmark: sign and verify a 256 KiB MCUboot image, against plain node:crypto SHA-256 of
 * the same bytes measured in the same process (the floor any verifier pays), so the figures also
 * print as ratios that hold across machines.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { VerifyMemo, createTrustStore, generateKey, parseImageLayout, signImage, verifyImage, verifyParsed } from '../src/image/index.js';
import type { KeyType } from '../src/image/index.js';

const PAYLOAD_BYTES = 256 * 1024;

/** Mean milliseconds per call over enough calls to fill ~budget_ms, after a warm-up. */
function timeMs(fn: () => unknown, budget_ms = 300): number {
  for (let i = 0; i < 20; i++) fn(); // warm-up: JIT and noble's precomputed tables
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < budget_ms || calls < 5) {
    fn();
    calls++;
    elapsed = performance.now() - start;
  }
  return elapsed / calls;
}

function ratio(value_ms: number, reference_ms: number): string {
  return `${(value_ms / reference_ms).toFixed(1)}x sha256`;
}

export async function benchImage(): Promise<{ name: string; value: number; unit: string; ratio?: string }[]> {
  const payload = Uint8Array.from({ length: PAYLOAD_BYTES }, (_, i) => (i * 31 + 7) & 0xff);
  const sha_ms = timeMs(() => createHash('sha256').update(payload).digest());
  const results: { name: string; value: number; unit: string; ratio?: string }[] = [
    { name: 'node:crypto sha256 256KiB (reference)', value: sha_ms, unit: 'ms' },
  ];
  const types: KeyType[] = ['ed25519', 'ecdsa-p256', 'rsa-2048'];
  for (const type of types) {
    const key = generateKey(type);
    const options = { key, headerSize_bytes: 0x200, padHeader: true, version: '1.2.3+4' } as const;
    const image = signImage(payload, options);
    const trust = createTrustStore([key.publicKey]);
    if (!verifyImage(image, trust).valid) throw new Error(`bench: ${type} image does not verify`);
    const sign_ms = timeMs(() => signImage(payload, options));
    const verify_ms = timeMs(() => verifyImage(image, trust));
    const memo = new VerifyMemo();
    const layout = parseImageLayout(image);
    const fast_ms = timeMs(() => verifyParsed(layout, trust, { memo }));
    results.push(
      { name: `image sign 256KiB (${type})`, value: sign_ms, unit: 'ms', ratio: ratio(sign_ms, sha_ms) },
      { name: `image verify 256KiB (${type})`, value: verify_ms, unit: 'ms', ratio: ratio(verify_ms, sha_ms) },
      { name: `image verify 256KiB, memoized fast path (${type})`, value: fast_ms, unit: 'ms', ratio: ratio(fast_ms, sha_ms) },
    );
  }
  return results;
}
