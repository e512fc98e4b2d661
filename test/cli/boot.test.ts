/**
 * `ota-sim boot`: on every MCUboot simulator dump the command gives MCUboot's result byte for byte
 * over the whole file and a raw dump stays a raw dump; flash files with a sidecar go through
 * test upgrade, revert and overwrite-only; bad input exits 2 with one line; a brick exits 1.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { runBin, runCli } from '../helpers/cli.js';
import { FIXTURES } from '../boot/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ota-sim-cli-boot-'));
const f = (name: string): string => join(dir, name);
const KEY = join(FIXTURES, 'ed25519.pub.pem');
const STRATEGIES = ['swap-move', 'swap-scratch'] as const;

interface BootJson {
  booted: boolean;
  action: string;
  resumed: boolean;
  version: string | null;
  slot: string | null;
  ops: number;
  flashTimeUs: number;
  notes: string[];
  confirmed: boolean | null;
  nextBoot: string;
  canRevert: boolean;
  written: string;
  reason: string | null;
}

function dumpsOf(strategy: string): string[] {
  return readdirSync(join(FIXTURES, strategy))
    .filter((n) => /^(initial|cut-\d+|revert-initial|revert-cut-\d+)\.bin\.gz$/.test(n))
    .map((n) => n.slice(0, -'.bin.gz'.length));
}

/** Unpack a fixture dump into the temp dir under `name`. */
function unpack(strategy: string, dump: string, name: string): string {
  const out = f(name);
  writeFileSync(out, gunzipSync(readFileSync(join(FIXTURES, strategy, `${dump}.bin.gz`))));
  return out;
}

async function ok(args: string[]): Promise<void> {
  const r = await runCli(args);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
}

beforeAll(async () => {
  for (const strategy of STRATEGIES) {
    unpack(strategy, 'final', `${strategy}-final.bin`);
    unpack(strategy, 'revert-final', `${strategy}-revert-final.bin`);
  }
  const app = new Uint8Array(20_000).map((_, i) => (i * 13) & 0xff);
  writeFileSync(f('app.bin'), app);
  const sign = (key: string, version: string, out: string, extra: string[] = []): string[] =>
    ['image', 'sign', '-k', f(key), '-H', '0x200', '--pad-header', '-S', '0x34000', '--align', '4', '-v', version, ...extra, f('app.bin'), f(out)];
  for (const args of [
    ['image', 'keygen', '-k', f('key.pem'), '-t', 'ed25519'],
    ['image', 'keygen', '-k', f('other.pem'), '-t', 'ed25519'],
    ['image', 'getpub', '-k', f('key.pem')],
    sign('key.pem', '1.0.0', 'v1.bin'),
    sign('key.pem', '2.0.0', 'v2.bin', ['--custom-tlv', '0xa0', '{"selfTest":"fail"}']),
    sign('other.pem', '1.0.0', 'v1-other.bin'),
    sign('other.pem', '2.0.0', 'v2-other.bin'),
  ]) {
    await ok(args);
  }
});

describe('ota-sim boot on MCUboot simulator dumps', () => {
  for (const strategy of STRATEGIES) {
    for (const dump of dumpsOf(strategy)) {
      const revert = dump.startsWith('revert-');
      const want = revert ? 'revert-final' : 'final';
      it(`${strategy} ${dump} -> MCUboot's ${want}, byte for byte; the raw dump stays sidecar-less`, async () => {
        const file = unpack(strategy, dump, `${strategy}-${dump}.bin`);
        const r = await runCli(['boot', file, '--board', 'nrf52840', '--strategy', strategy, '--trust', KEY, '--json']);
        expect(r.code, r.stderr).toBe(0);
        const json = JSON.parse(r.stdout) as BootJson;
        expect(json.booted).toBe(true);
        expect(json.slot).toBe('slot0');
        expect(json.resumed).toBe(/cut-/.test(dump));
        expect(json.action).toBe(revert ? 'revert' : 'perm');
        expect(json.ops).toBeGreaterThan(0);
        expect(json.flashTimeUs).toBeGreaterThan(0);
        expect(json.written).toBe('raw');
        expect(json.confirmed).toBe(true);
        expect(json.nextBoot).toBe('none');
        const got = readFileSync(file);
        const expected = readFileSync(f(`${strategy}-${want}.bin`));
        expect(got.length).toBe(expected.length);
        expect(Buffer.compare(got, expected), `${dump}: differs from ${want}`).toBe(0);
        expect(existsSync(`${file}.json`)).toBe(false);
        expect(readdirSync(dir).filter((n) => n.startsWith(`${strategy}-${dump}.bin.`))).toEqual([]);

        // Booting MCUboot's final state again changes nothing and writes nothing.
        const again = await runCli(['boot', file, '--board', 'nrf52840', '--strategy', strategy, '--trust', KEY, '--json']);
        expect(again.code, again.stderr).toBe(0);
        expect(JSON.parse(again.stdout)).toMatchObject({ booted: true, action: 'none', resumed: false, ops: 0, written: 'none' });
        expect(Buffer.compare(readFileSync(file), expected)).toBe(0);
      });
    }
  }

  it('the built executable prints what it booted, and --dry-run writes nothing', async () => {
    const file = unpack('swap-move', 'cut-453', 'bin-cut-453.bin');
    const before = readFileSync(file);
    const dry = await runBin(['boot', file, '--board', 'nrf52840', '--strategy', 'swap-move', '--trust', KEY, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/nothing written \(--dry-run\)/);
    expect(Buffer.compare(readFileSync(file), before)).toBe(0);
    const r = await runBin(['boot', file, '--board', 'nrf52840', '--strategy', 'swap-move', '--trust', KEY]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/booted slot0, version \d+\.\d+\.\d+\+\d+ \(swap-move; action: perm, resumed an interrupted swap\)/);
    expect(r.stdout).toMatch(/flash: +\d+ ops, [\d.]+ (s|ms) simulated flash time/);
    expect(r.stdout).toMatch(/resuming an interrupted perm swap/);
    expect(r.stdout).toMatch(/raw dump, no sidecar/);
    expect(Buffer.compare(readFileSync(file), readFileSync(f('swap-move-final.bin')))).toBe(0);
    const help = await runBin(['boot', '--help']);
    expect(help.stdout).toMatch(/stays a plain raw dump/);
    expect(help.stdout).toMatch(/--trust/);
  });
});

describe('ota-sim boot on flash files', () => {
  it('a test upgrade boots the new image unconfirmed; the next boot reverts it; the sidecar is kept', async () => {
    const file = f('dev.bin');
    await ok(['flash', 'create', file, '--board', 'nrf52840']);
    await ok(['flash', 'write', file, '--slot', 'slot0', '--confirm', f('v1.bin'), '--strategy', 'swap-move']);
    await ok(['flash', 'write', file, '--slot', 'slot1', '--test', f('v2.bin'), '--strategy', 'swap-move']);
    const opBefore = (JSON.parse(readFileSync(`${file}.json`, 'utf8')) as { opIndex: number }).opIndex;

    let r = await runCli(['boot', file, '--strategy', 'swap-move', '--trust', f('key.pem'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    let json = JSON.parse(r.stdout) as BootJson & { behaviour: unknown };
    expect(json).toMatchObject({ booted: true, action: 'test', resumed: false, version: '2.0.0+0', confirmed: false, nextBoot: 'revert', written: 'sidecar' });
    expect(json.behaviour).toMatchObject({ selfTest: 'fail' });
    const side = JSON.parse(readFileSync(`${file}.json`, 'utf8')) as { opIndex: number; elapsedUs: number };
    expect(side.opIndex).toBe(opBefore + json.ops);

    // --trust repeats (any of the keys may sign) and may come before the file.
    r = await runCli(['boot', '--trust', f('other.pem'), '--trust', f('key.pem'), file, '--strategy', 'swap-move']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/booted slot0, version 1\.0\.0\+0 \(swap-move; action: revert\)/);
    expect(r.stdout).toMatch(/image: +confirmed/);
  });

  it('the default strategy is the board\'s first (nrf52840: swap-scratch); overwrite-only says it cannot revert', async () => {
    const file = f('scratch.bin');
    await ok(['flash', 'create', file, '--board', 'nrf52840']);
    await ok(['flash', 'write', file, '--slot', 'slot0', '--confirm', f('v1.bin')]);
    await ok(['flash', 'write', file, '--slot', 'slot1', '--test', f('v2.bin')]);
    const r = await runCli(['boot', file, '--trust', f('key.pem'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ strategy: 'swap-scratch', action: 'test', version: '2.0.0+0' });

    const ow = f('ow.bin');
    await ok(['flash', 'create', ow, '--board', 'nrf52840']);
    await ok(['flash', 'write', ow, '--slot', 'slot0', '--confirm', f('v1.bin'), '--strategy', 'overwrite-only']);
    await ok(['flash', 'write', ow, '--slot', 'slot1', '--test', f('v2.bin'), '--strategy', 'overwrite-only']);
    const o = await runCli(['boot', ow, '--strategy', 'overwrite-only', '--trust', f('key.pem'), '--json']);
    expect(o.code, o.stderr).toBe(0);
    const json = JSON.parse(o.stdout) as BootJson;
    expect(json).toMatchObject({ booted: true, action: 'test', version: '2.0.0+0', canRevert: false });
    expect(json.notes.join('\n')).toMatch(/cannot revert/);
  });

  it('a raw dump of a board with a second flash device: FILE.<id> is rewritten if it exists, never invented', async () => {
    const file = f('spi.bin');
    await ok(['flash', 'create', file, '--board', 'nrf52840-spi-flash']);
    await ok(['flash', 'write', file, '--slot', 'slot0', '--confirm', f('v1.bin')]);
    await ok(['flash', 'write', file, '--slot', 'slot1', '--test', f('v2.bin')]);
    unlinkSync(`${file}.json`); // now a pair of raw dumps, as read from a device
    const v1 = readFileSync(f('v1.bin'));
    let r = await runCli(['boot', file, '--board', 'nrf52840-spi-flash', '--trust', f('key.pem'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ strategy: 'swap-scratch', action: 'test', version: '2.0.0+0', written: 'raw' });
    expect(existsSync(`${file}.json`)).toBe(false);
    // The swap moved the old image into slot1, at offset 0 of the SPI chip's file.
    expect(Buffer.compare(readFileSync(`${file}.spi`).subarray(0, v1.length), v1)).toBe(0);

    // Only the internal chip dumped: the SPI chip reads erased, so nothing is swapped and no FILE.spi appears.
    const lone = f('lone.bin');
    copyFileSync(file, lone);
    r = await runCli(['boot', lone, '--board', 'nrf52840-spi-flash', '--trust', f('key.pem'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(`${lone}.spi`)).toBe(false);
    expect(existsSync(`${lone}.json`)).toBe(false);
  });

  it('a brick exits 1 and says so: erased flash, or both slots invalid', async () => {
    const erased = f('erased.bin');
    await ok(['flash', 'create', erased, '--board', 'nrf52840']);
    let r = await runCli(['boot', erased, '--trust', f('key.pem')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/NO BOOTABLE IMAGE/);
    expect(r.stderr).toMatch(/no bootable image/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);

    // nrf9160dk validates the primary slot: images signed by a key the bootloader does not trust.
    const bad = f('untrusted.bin');
    await ok(['flash', 'create', bad, '--board', 'nrf9160dk']);
    await ok(['flash', 'write', bad, '--slot', 'slot0', '--confirm', f('v1-other.bin')]);
    await ok(['flash', 'write', bad, '--slot', 'slot1', '--test', f('v2-other.bin')]);
    r = await runCli(['boot', bad, '--trust', f('key.pem'), '--json']);
    expect(r.code).toBe(1);
    const json = JSON.parse(r.stdout) as BootJson;
    expect(json).toMatchObject({ booted: false, version: null, slot: null });
    expect(json.reason).toMatch(/primary slot holds no valid image/);
    expect(json.notes.join('\n')).toMatch(/slot1: image not valid .*erased/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('bad input: one line naming what was wrong, exit 2', async () => {
    const raw = f('bad-raw.bin');
    copyFileSync(f('swap-move-final.bin'), raw);
    writeFileSync(f('short.bin'), new Uint8Array(1000));
    await ok(['flash', 'create', f('l0.bin'), '--board', 'nrf9160dk']);
    const cases: [string[], RegExp][] = [
      [['boot', raw, '--board', 'nrf52840'], /--trust/],
      [['boot', raw, '--board', 'nrf52840', '--trust', KEY, '--strategy', 'swap-sideways'], /--strategy: expected one of/],
      [['boot', f('l0.bin'), '--trust', KEY, '--strategy', 'swap-scratch'], /board nrf9160dk cannot do it.*scratch/],
      [['boot', raw, '--board', 'nrf52840', '--trust', KEY, '--strategy', 'swap-offset'], /swap-offset is not modelled/],
      [['boot', f('short.bin'), '--board', 'nrf52840', '--trust', KEY], /short\.bin: 1000 bytes, but nrf52840's internal flash is 524288 bytes/],
      [['boot', raw, '--trust', KEY], /name its board with --board/],
      [['boot', raw, '--board', 'nrf52840', '--trust', f('missing.pem')], /missing\.pem/],
      [['boot', raw, '--board', 'nrf52840', '--trust', KEY, '--erase-value', '7'], /--erase-value/],
      [['boot', f('nothing.bin'), '--board', 'nrf52840', '--trust', KEY], /no such flash file/],
      [['boot', raw, '--board', 'nrf52840', '--board', 'k64f', '--trust', KEY], /--board: given 2 times/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    // Nothing was written to the dump by the failed attempts.
    expect(Buffer.compare(readFileSync(raw), readFileSync(f('swap-move-final.bin')))).toBe(0);
    expect(existsSync(`${raw}.json`)).toBe(false);
  });
});
