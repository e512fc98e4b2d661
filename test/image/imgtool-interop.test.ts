/**
 * imgtool accepts what we sign. Needs MCUboot's imgtool, so it runs only when OTA_SIM_IMGTOOL
 * names it, e.g. OTA_SIM_IMGTOOL="/usr/bin/python3 /path/to/mcuboot/scripts/imgtool.py"
 * (CI has no imgtool; the result of a local run is recorded in test/fixtures/imgtool/README.md).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { behaviourTlv, generateKey, privateKeyToPem, publicKeyToPem, signImage } from '../../src/image/index.js';
import type { SignOptions } from '../../src/image/index.js';
import { fixture, fixturePath, signingKey } from './helpers.js';

const imgtool = process.env.OTA_SIM_IMGTOOL?.trim().split(/\s+/) ?? [];
const tmp = mkdtempSync(join(tmpdir(), 'ota-sim-imgtool-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function imgtoolVerify(keyFile: string, image: string): { ok: boolean; output: string } {
  try {
    const output = execFileSync(imgtool[0]!, [...imgtool.slice(1), 'verify', '-k', keyFile, image], { encoding: 'utf8' });
    return { ok: true, output };
  } catch (err) {
    return { ok: false, output: String((err as { stdout?: string }).stdout ?? err) };
  }
}

describe.skipIf(imgtool.length === 0)('imgtool verify accepts images ota-sim signs', () => {
  const variants: [string, Partial<SignOptions>][] = [
    ['plain', {}],
    ['full-pubkey', { publicKeyFormat: 'full' }],
    ['padded', { securityCounter: 'auto', customTlvs: [behaviourTlv({ selfTest: 'hang' })], pad: true, confirm: true, align: 8 }],
  ];
  for (const type of ['ed25519', 'ecdsa-p256', 'rsa-2048', 'rsa-3072']) {
    for (const [name, extra] of variants) {
      it(`${type} ${name}`, () => {
        const out = join(tmp, `${type}-${name}.bin`);
        writeFileSync(
          out,
          signImage(fixture('input.bin'), { key: signingKey(`${type}.pem`), headerSize_bytes: 0x200, padHeader: true, slotSize_bytes: 0x5000, version: '1.2.3+4', ...extra }),
        );
        const good = imgtoolVerify(fixturePath(`${type}.pub.pem`), out);
        expect(good.output).toMatch(/Image was correctly validated/);
        expect(good.ok).toBe(true);
        // and it really checks: another key is refused
        expect(imgtoolVerify(fixturePath('other-ed25519.pub.pem'), out).ok).toBe(false);
      });
    }
  }
});

describe.skipIf(imgtool.length === 0)('imgtool reads keys ota-sim generates', () => {
  for (const type of ['ed25519', 'ecdsa-p256', 'rsa-2048', 'rsa-3072'] as const) {
    it(type, () => {
      const key = generateKey(type);
      const file = join(tmp, `gen-${type}.pem`);
      writeFileSync(file, privateKeyToPem(key));
      const pem = execFileSync(imgtool[0]!, [...imgtool.slice(1), 'getpub', '-e', 'pem', '-k', file], { encoding: 'utf8' });
      expect(pem).toBe(publicKeyToPem(key));
      const hash = execFileSync(imgtool[0]!, [...imgtool.slice(1), 'getpubhash', '-e', 'raw', '-k', file]);
      expect(Buffer.from(hash).toString('hex')).toBe(Buffer.from(key.publicKey.keyHash).toString('hex'));
    });
  }
});
