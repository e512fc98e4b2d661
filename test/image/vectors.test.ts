/**
 * imgtool test vectors (test/fixtures/imgtool, made by MCUboot's imgtool 2.4.0): our sign must
 * reproduce the ed25519 / unsigned ones byte for byte, and match the structure of the randomized
 * ECDSA / RSA ones; our verifier must accept every one of them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  TLV,
  behaviourTlv,
  boardTlv,
  bootMagic,
  parseImage,
  parseVersion,
  signImage,
  verifyImage,
} from '../../src/image/index.js';
import type { SignOptions } from '../../src/image/index.js';
import { fixture, fixturePath, runCli, signingKey, trustedPublicKeys, vectors } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'ota-sim-image-vectors-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const all = vectors();
const deterministic = all.filter((v) => v.key === null || v.key.startsWith('ed25519'));
const randomized = all.filter((v) => !deterministic.includes(v));

function arg(args: string[], ...names: string[]): string | undefined {
  const i = args.findIndex((a) => names.includes(a));
  return i >= 0 ? args[i + 1] : undefined;
}

async function oursViaCli(v: (typeof all)[number]): Promise<Uint8Array> {
  const out = join(tmp, `${v.name}.bin`);
  const key = v.key ? ['-k', fixturePath(v.key)] : [];
  const r = await runCli(['image', 'sign', ...key, ...v.args, fixturePath(v.input), out]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return new Uint8Array(readFileSync(out));
}

describe('imgtool vectors: our verifier accepts them', () => {
  const trusted = trustedPublicKeys();
  for (const v of all) {
    it(v.name, () => {
      const bytes = fixture(`out/${v.name}.bin`);
      const result = verifyImage(bytes, trusted);
      if (v.key === null) {
        expect(result).toMatchObject({ valid: false, reason: 'MISSING_SIGNATURE' });
        expect(verifyImage(bytes, [], { requireSignature: false }).valid).toBe(true);
      } else {
        expect(result.reason).toBeNull();
        expect(result.valid).toBe(true);
      }
      const image = parseImage(bytes);
      const version = parseVersion(arg(v.args, '-v')!);
      expect(image.header.version).toEqual(version);
      expect(image.header.headerSize_bytes).toBe(0x200);
      expect(image.header.imageSize_bytes).toBe(3000);
      // A padded vector is a whole slot: the image's own end is found from the TLV lengths.
      expect(image.totalSize_bytes).toBeLessThanOrEqual(bytes.length);
      expect(bytes.length === image.totalSize_bytes).toBe(!v.args.some((a) => ['--pad', '--confirm', '--test'].includes(a)));
    });
  }
});

describe('ed25519 and unsigned vectors: our sign is byte-identical (CLI with the same arguments)', () => {
  for (const v of deterministic) {
    it(v.name, async () => {
      const ours = await oursViaCli(v);
      const theirs = fixture(`out/${v.name}.bin`);
      expect(ours.length).toBe(theirs.length);
      expect(Buffer.from(ours).equals(Buffer.from(theirs))).toBe(true);
    });
  }
});

describe('ECDSA / RSA vectors: same structure, both verify', () => {
  const trusted = trustedPublicKeys();
  for (const v of randomized) {
    it(v.name, async () => {
      const ours = await oursViaCli(v);
      const theirs = fixture(`out/${v.name}.bin`);
      const a = parseImage(ours);
      const b = parseImage(theirs);
      // ECDSA DER signatures vary by a byte or two; the rest of the length may not.
      const sigLengthDelta = a.unprotectedTlvs.at(-1)!.value.length - b.unprotectedTlvs.at(-1)!.value.length;
      const padded = v.args.some((x) => ['--pad', '--confirm', '--test'].includes(x));
      expect(ours.length).toBe(padded ? theirs.length : theirs.length + sigLengthDelta);
      // Everything the hash covers is deterministic: header, payload, protected TLVs.
      expect(a.hashedSize_bytes).toBe(b.hashedSize_bytes);
      expect(Buffer.from(a.bytes.subarray(0, a.hashedSize_bytes)).equals(Buffer.from(b.bytes.subarray(0, b.hashedSize_bytes)))).toBe(true);
      expect(a.unprotectedTlvs.map((t) => t.type)).toEqual(b.unprotectedTlvs.map((t) => t.type));
      for (const type of [TLV.SHA256, TLV.KEYHASH, TLV.PUBKEY]) {
        const ta = a.unprotectedTlvs.find((t) => t.type === type);
        const tb = b.unprotectedTlvs.find((t) => t.type === type);
        expect(ta && Buffer.from(ta.value).toString('hex')).toBe(tb && Buffer.from(tb.value).toString('hex'));
      }
      const sigA = a.unprotectedTlvs.at(-1)!;
      const sigB = b.unprotectedTlvs.at(-1)!;
      expect(sigA.type).toBe(sigB.type);
      if (v.args.includes('--pad-sig')) expect(sigA.value.length).toBe(72);
      // Padding and trailer after the (signature-length dependent) image end are identical.
      const end = Math.max(a.totalSize_bytes, b.totalSize_bytes);
      expect(Buffer.from(ours.subarray(end)).equals(Buffer.from(theirs.subarray(end)))).toBe(true);
      expect(verifyImage(ours, trusted).valid).toBe(true);
      expect(verifyImage(theirs, trusted).valid).toBe(true);
    });
  }
});

describe('signImage API reproduces imgtool bytes', () => {
  const key = signingKey('ed25519.pem');
  const input = fixture('input.bin');
  const base: SignOptions = { key, headerSize_bytes: 0x200, padHeader: true, slotSize_bytes: 0x5000, version: '1.2.3+4' };
  const cases: [string, SignOptions][] = [
    ['ed25519-plain', base],
    ['ed25519-pad-confirm', { ...base, pad: true, confirm: true }],
    ['ed25519-seccnt', { ...base, securityCounter: 42 }],
    ['ed25519-seccnt-auto', { ...base, securityCounter: 'auto' }],
    [
      'ed25519-custom-tlv',
      {
        ...base,
        customTlvs: [behaviourTlv({ selfTest: 'fail', bootMs: 1200 }), boardTlv('nrf52840dk'), { type: 0xb0, value: Uint8Array.of(0xde, 0xad, 0xbe, 0xef) }],
      },
    ],
    ['ed25519-align32', { ...base, align: 32, pad: true, confirm: true }],
    ['ed25519-erased0', { ...base, erasedValue: 0, pad: true, confirm: true }],
    ['ed25519-maxalign16', { ...base, maxAlign: 16, pad: true, confirm: true }],
    ['ed25519-overwrite-only', { ...base, overwriteOnly: true, pad: true, confirm: true }],
    ['ed25519-max-sectors', { ...base, maxSectors: 32, align: 8, pad: true, confirm: true }],
    ['ed25519-pubkey-full', { ...base, publicKeyFormat: 'full' }],
    ['ed25519-load-addr', { ...base, loadAddr: 0x20000000 }],
    ['ed25519-version-short', { ...base, version: '2' }],
    ['ed25519-no-pad-header', { ...base, padHeader: false }],
    ['unsigned', { ...base, key: null }],
  ];
  for (const [name, options] of cases) {
    it(name, () => {
      const src = name === 'ed25519-no-pad-header' ? fixture('input-zerohdr.bin') : input;
      const ours = signImage(src, options);
      expect(Buffer.from(ours).equals(Buffer.from(fixture(`out/${name}.bin`)))).toBe(true);
    });
  }
});

describe('what the vectors contain (checks our reading of imgtool)', () => {
  const SLOT = 0x5000;
  it('--pad writes the classic magic at the slot end and leaves image_ok erased', () => {
    const b = fixture('out/ed25519-pad.bin');
    expect(b.length).toBe(SLOT);
    expect(Buffer.from(b.subarray(SLOT - 16)).equals(Buffer.from(bootMagic(8)))).toBe(true);
    expect(b[SLOT - 16 - 8]).toBe(0xff);
  });
  it('--confirm sets image_ok one max-align unit before the magic', () => {
    expect(fixture('out/ed25519-pad-confirm.bin')[SLOT - 16 - 8]).toBe(0x01);
    expect(fixture('out/ed25519-test.bin')[SLOT - 16 - 8]).toBe(0xff);
    const ma16 = fixture('out/ed25519-maxalign16.bin');
    expect(Array.from(ma16.subarray(SLOT - 16, SLOT - 12))).toEqual([0x10, 0x00, 0x2d, 0xe1]);
    expect(ma16[SLOT - 16 - 16]).toBe(0x01);
    const a32 = fixture('out/ed25519-align32.bin');
    expect(Array.from(a32.subarray(SLOT - 16, SLOT - 14))).toEqual([0x20, 0x00]);
    expect(a32[SLOT - 32 - 32]).toBe(0x01);
    // overwrite-only never writes image_ok
    const ow = fixture('out/ed25519-overwrite-only.bin');
    expect(ow.subarray(0, SLOT - 16).filter((x) => x === 0x01).length).toBe(fixture('out/ed25519-plain.bin').filter((x) => x === 0x01).length);
  });
  it('-R 0 pads the header and the slot with zeros', () => {
    const b = fixture('out/ed25519-erased0.bin');
    expect(b.subarray(32, 0x200).every((x) => x === 0)).toBe(true);
    const image = parseImage(b);
    expect(b.subarray(image.totalSize_bytes, SLOT - 16).filter((x) => x !== 0).length).toBe(1); // only image_ok
    expect(b[SLOT - 16 - 8]).toBe(0x01);
  });
  it('decodes vendor TLVs, security counter and flags', () => {
    const custom = parseImage(fixture('out/ed25519-custom-tlv.bin'));
    expect(custom.behaviour).toEqual({ selfTest: 'fail', connect: true, bootMs: 1200 });
    expect(custom.board).toBe('nrf52840dk');
    expect(custom.protectedTlvs.map((t) => t.type)).toEqual([0xa0, 0xa1, 0xb0]);
    const allOpts = parseImage(fixture('out/ed25519-all.bin'));
    expect(allOpts.behaviour).toEqual({ selfTest: 'crash', crashAfterMs: 500, connect: false });
    expect(allOpts.board).toBe('stm32f4-disco');
    expect(allOpts.securityCounter).toBe((3 << 24) + (4 << 16) + 5);
    expect(allOpts.version).toBe('3.4.5+6');
    expect(parseImage(fixture('out/ed25519-seccnt.bin')).securityCounter).toBe(42);
    expect(parseImage(fixture('out/ed25519-plain.bin'))).toMatchObject({ behaviour: null, board: null, securityCounter: null });
    const ram = parseImage(fixture('out/ed25519-load-addr.bin'));
    expect(ram.header.loadAddr).toBe(0x20000000);
    expect(ram.header.flags).toBe(0x20);
  });
});
