/** `ota-sim image ...` run in-process through main(): exit codes, --json documents, one-line errors. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KEY_TYPES, parseImage, parseKeyPem } from '../../src/image/index.js';
import { fixture, fixturePath, runCli } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'ota-sim-image-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const t = (name: string): string => join(tmp, name);
const input = fixturePath('input.bin');
const SIGN = ['-H', '0x200', '--pad-header', '-S', '0x5000', '-v', '1.2.3+4'];

function expectOneLineError(r: { code: number; stderr: string; stdout: string }, code: number, pattern: RegExp): void {
  expect(r.code).toBe(code);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^ota-sim: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe('keygen / getpub / sign / verify round trip per key type', () => {
  for (const type of KEY_TYPES) {
    it(type, async () => {
      const key = t(`${type}.pem`);
      const kg = await runCli(['image', 'keygen', '-k', key, '-t', type, '--json']);
      expect(kg.code).toBe(0);
      expect(JSON.parse(kg.stdout)).toMatchObject({ key, type });
      expect(readFileSync(key, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);

      const gp = await runCli(['image', 'getpub', '-k', key]);
      expect(gp.code).toBe(0);
      expect(gp.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
      writeFileSync(t(`${type}.pub.pem`), gp.stdout);
      expect(parseKeyPem(gp.stdout).type).toBe(type);

      const out = t(`${type}.bin`);
      const sg = await runCli(['image', 'sign', '-k', key, ...SIGN, '--custom-tlv', '0xa0', '{"selfTest":"hang"}', input, out]);
      expect(sg.code).toBe(0);
      expect(parseImage(readFileSync(out)).behaviour).toEqual({ selfTest: 'hang', connect: true });

      const ok = await runCli(['image', 'verify', '-k', t(`${type}.pub.pem`), out, '--json']);
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ valid: true, reason: null, version: '1.2.3+4', keyType: type });
    });
  }
});

describe('verify', () => {
  it('exit 0 for a valid imgtool image, human text', async () => {
    const r = await runCli(['image', 'verify', '-k', fixturePath('ed25519.pub.pem'), fixturePath('out/ed25519-pad-confirm.bin')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/valid: image 1\.2\.3\+4/);
  });
  it('exit 1 with the reason for an untrusted key', async () => {
    const r = await runCli(['image', 'verify', '-k', fixturePath('other-ed25519.pub.pem'), fixturePath('out/ed25519-plain.bin'), '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: false, reason: 'UNTRUSTED_KEY', version: '1.2.3+4' });
    expectOneLineError(r, 1, /ed25519-plain\.bin: invalid \(UNTRUSTED_KEY\)/);
  });
  it('exit 1 for a damaged image, with HASH_MISMATCH', async () => {
    const bytes = fixture('out/ed25519-plain.bin');
    bytes[0x300]! ^= 0xff;
    writeFileSync(t('damaged.bin'), bytes);
    const r = await runCli(['image', 'verify', '-k', fixturePath('ed25519.pem'), t('damaged.bin'), '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: false, reason: 'HASH_MISMATCH' });
  });
  it('exit 1 with BAD_MAGIC and version null for a non-image', async () => {
    const r = await runCli(['image', 'verify', '-k', fixturePath('ed25519.pem'), input, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: false, reason: 'BAD_MAGIC', version: null });
  });
  it('several -k: any trusted key will do', async () => {
    const r = await runCli(['image', 'verify', '-k', fixturePath('other-ed25519.pem'), '-k', fixturePath('rsa-3072.pub.pem'), fixturePath('out/rsa-3072-plain.bin')]);
    expect(r.code).toBe(0);
  });
});

describe('inspect --json', () => {
  it('has the CLI.md fields', async () => {
    const r = await runCli(['image', 'inspect', fixturePath('out/ed25519-all.bin'), '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc).toMatchObject({
      version: '3.4.5+6',
      headerSize: 0x200,
      imageSize: 3000,
      behaviour: { selfTest: 'crash', crashAfterMs: 500, connect: false },
      board: 'stm32f4-disco',
      securityCounter: 0x03040005,
      hashMatches: true,
    });
    expect(doc.tlvs).toEqual([
      expect.objectContaining({ type: 0x50, length: 4, protected: true }),
      expect.objectContaining({ type: 0xa0, protected: true }),
      expect.objectContaining({ type: 0xa1, length: 13, protected: true }),
      expect.objectContaining({ type: 0x10, length: 32, protected: false }),
      expect.objectContaining({ type: 0x01, length: 32, protected: false }),
      expect.objectContaining({ type: 0x24, length: 64, protected: false }),
    ]);
    expect(doc.sha256).toBe(doc.sha256Tlv);
    expect(doc.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
  it('human text shows header, TLVs, behaviour, board and hash', async () => {
    const r = await runCli(['image', 'inspect', fixturePath('out/ed25519-custom-tlv.bin')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/version: +1\.2\.3\+4/);
    expect(r.stdout).toMatch(/BEHAVIOUR/);
    expect(r.stdout).toMatch(/board: +nrf52840dk/);
    expect(r.stdout).toMatch(/matches the SHA256 TLV/);
  });
  it('behaviour and board are null when absent', async () => {
    const r = await runCli(['image', 'inspect', fixturePath('out/ed25519-plain.bin'), '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ behaviour: null, board: null });
  });
});

describe('sign matches imgtool options', () => {
  it('decimal and 0x numbers, aliases (--header-size, --slot-size, --version)', async () => {
    const out = t('long.bin');
    const r = await runCli(['image', 'sign', '--key', fixturePath('ed25519.pem'), '--header-size', '512', '--pad-header', '--slot-size', '20480', '--version', '1.2.3+4', '--security-counter', '42', input, out]);
    expect(r.code).toBe(0);
    expect(Buffer.from(readFileSync(out)).equals(Buffer.from(fixture('out/ed25519-seccnt.bin')))).toBe(true);
  });
});

describe('bad input: exit 2, one line naming the file or flag', () => {
  it('missing input file', async () => {
    const r = await runCli(['image', 'sign', '-k', fixturePath('ed25519.pem'), ...SIGN, t('nope.bin'), t('x.bin')]);
    expectOneLineError(r, 2, /nope\.bin: cannot read input binary \(no such file\)/);
  });
  it('missing key file', async () => {
    const r = await runCli(['image', 'verify', '-k', t('nokey.pem'), fixturePath('out/ed25519-plain.bin')]);
    expectOneLineError(r, 2, /nokey\.pem: cannot read key file/);
  });
  it('unreadable key', async () => {
    writeFileSync(t('garbage.pem'), 'not a key\n');
    const r = await runCli(['image', 'sign', '-k', t('garbage.pem'), ...SIGN, input, t('x.bin')]);
    expectOneLineError(r, 2, /garbage\.pem: not a PEM key/);
  });
  it('bad version string', async () => {
    const r = await runCli(['image', 'sign', '-k', fixturePath('ed25519.pem'), '-H', '0x200', '--pad-header', '-S', '0x5000', '-v', '1.x', input, t('x.bin')]);
    expectOneLineError(r, 2, /version "1\.x": expected maj\.min\.rev\+build/);
  });
  it('bad number', async () => {
    const r = await runCli(['image', 'sign', '-k', fixturePath('ed25519.pem'), '-H', '0x2zz', '--pad-header', '-S', '0x5000', '-v', '1.2.3', input, t('x.bin')]);
    expectOneLineError(r, 2, /--header-size: expected a number/);
  });
  it('bad --align choice', async () => {
    const r = await runCli(['image', 'sign', ...SIGN, '--align', '3', input, t('x.bin')]);
    expectOneLineError(r, 2, /--align: expected one of 1, 2, 4, 8, 16, 32, got "3"/);
  });
  it('behaviour TLV with a typo is refused before signing', async () => {
    const r = await runCli(['image', 'sign', '-k', fixturePath('ed25519.pem'), ...SIGN, '--custom-tlv', '0xa0', '{"selftest":"fail"}', input, t('x.bin')]);
    expectOneLineError(r, 2, /behaviour TLV 0x00a0: Unrecognized key/);
  });
  it('odd hex custom TLV value', async () => {
    const r = await runCli(['image', 'sign', ...SIGN, '--custom-tlv', '0xb0', '0xabc', input, t('x.bin')]);
    expectOneLineError(r, 2, /odd number of digits/);
  });
  it('image too large for the slot', async () => {
    const r = await runCli(['image', 'sign', '-k', fixturePath('ed25519.pem'), '-H', '0x200', '--pad-header', '-S', '0xe00', '-v', '1', input, t('x.bin')]);
    expectOneLineError(r, 2, /input\.bin: image size .* exceeds slot size 0xe00/);
  });
  it('inspect of a non-image names the file', async () => {
    const r = await runCli(['image', 'inspect', input]);
    expectOneLineError(r, 2, /input\.bin: bad image magic/);
  });
});
