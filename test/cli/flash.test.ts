import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runBin, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ota-sim-cli-flash-'));
const f = (name: string): string => join(dir, name);

beforeAll(async () => {
  const app = new Uint8Array(20_000).map((_, i) => (i * 7) & 0xff);
  await import('node:fs').then((fs) => fs.writeFileSync(f('app.bin'), app));
  for (const args of [
    ['image', 'keygen', '-k', f('key.pem'), '-t', 'ed25519'],
    ['image', 'keygen', '-k', f('other.pem'), '-t', 'ed25519'],
    ['image', 'sign', '-k', f('key.pem'), '-H', '0x200', '--pad-header', '-S', '0x34000', '--align', '4', '-v', '1.0.0', f('app.bin'), f('v1.bin')],
    ['image', 'sign', '-k', f('key.pem'), '-H', '0x200', '--pad-header', '-S', '0x34000', '--align', '4', '-v', '2.0.0', f('app.bin'), f('v2.bin')],
  ]) {
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(0);
  }
});

describe('ota-sim flash', () => {
  it('create, write confirmed and test images, inspect with --json', async () => {
    expect((await runCli(['flash', 'create', f('dev.bin'), '--board', 'nrf52840'])).code).toBe(0);
    expect(readFileSync(f('dev.bin')).every((b) => b === 0xff)).toBe(true);
    let r = await runCli(['flash', 'write', f('dev.bin'), '--slot', 'slot0', '--confirm', f('v1.bin')]);
    expect(r.code, r.stderr).toBe(0);
    r = await runCli(['flash', 'write', f('dev.bin'), '--slot', 'slot1', '--test', f('v2.bin')]);
    expect(r.code, r.stderr).toBe(0);
    // The image bytes are in the raw file at slot0's offset.
    const raw = readFileSync(f('dev.bin'));
    const v1 = readFileSync(f('v1.bin'));
    expect(Buffer.compare(raw.subarray(0x8000, 0x8000 + v1.length), v1)).toBe(0);

    r = await runCli(['flash', 'inspect', f('dev.bin'), '--trust', f('key.pem'), '--strategy', 'swap-move', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as {
      board: string;
      nextBootSwapType: string;
      slots: { name: string; image: { version: string; valid: boolean } | null; trailer: { magic: string; imageOk: string; copyDone: string; swapType: string } }[];
    };
    expect(json.board).toBe('nrf52840');
    expect(json.nextBootSwapType).toBe('test');
    const [slot0, slot1] = json.slots;
    expect(slot0).toMatchObject({ name: 'slot0', image: { version: '1.0.0+0', valid: true }, trailer: { magic: 'good', imageOk: 'set', copyDone: 'unset' } });
    expect(slot1).toMatchObject({ name: 'slot1', image: { version: '2.0.0+0', valid: true }, trailer: { magic: 'good', imageOk: 'unset', swapType: 'test' } });
  });

  it('inspect with another key reports the images invalid; a permanent upgrade reads as perm', async () => {
    await runCli(['flash', 'create', f('perm.bin'), '--board', 'nrf52840']);
    await runCli(['flash', 'write', f('perm.bin'), '--slot', 'slot1', '--confirm', f('v2.bin')]);
    const r = await runCli(['flash', 'inspect', f('perm.bin'), '--trust', f('other.pem'), '--json']);
    const json = JSON.parse(r.stdout) as { nextBootSwapType: string; slots: { name: string; image: { valid: boolean } | null }[] };
    expect(json.nextBootSwapType).toBe('perm');
    expect(json.slots.find((s) => s.name === 'slot1')!.image!.valid).toBe(false);
    expect(json.slots.find((s) => s.name === 'slot0')!.image).toBeNull();
  });

  it('bad input: one line naming what was wrong, exit 2, no stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['flash', 'create', f('x.bin'), '--board', 'no-such-board'], /no-such-board/],
      [['flash', 'create', f('dev.bin'), '--board', 'nrf52840'], /already exists/],
      [['flash', 'create', f('y.bin'), '--board', 'nrf52840', '--write-size', '3'], /writeSize|write size|--write-size/i],
      [['flash', 'inspect', f('nothing.bin')], /no such flash file/],
      [['flash', 'write', f('dev.bin'), '--slot', 'slot0', '--test', f('v1.bin')], /--test marks a pending upgrade in slot1/],
      [['flash', 'write', f('dev.bin'), '--slot', 'slot1', f('missing.bin')], /missing\.bin: cannot read image \(no such file\)/],
      [['flash', 'inspect', f('app.bin')], /name its board with --board/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('the built executable', () => {
  it('runs the demo: an interrupted swap resumes and boots the new image', async () => {
    const r = await runBin(['demo', '--dir', join(dir, 'demo'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { booted: boolean; resumed: boolean; swapOps: number };
    expect(json.booted).toBe(true);
    expect(json.resumed).toBe(true);
    expect(json.swapOps).toBeGreaterThan(100);
    const inspect = await runBin(['flash', 'inspect', join(dir, 'demo', 'nrf52840.bin'), '--trust', join(dir, 'demo', 'demo-pub.pem'), '--strategy', 'swap-move', '--json']);
    const after = JSON.parse(inspect.stdout) as { slots: { name: string; image: { version: string; valid: boolean } | null }[] };
    expect(after.slots[0]!.image).toEqual(expect.objectContaining({ version: '1.1.0+0', valid: true }));
    expect(after.slots[1]!.image).toEqual(expect.objectContaining({ version: '1.0.0+0', valid: true }));
  });

  it('--help lists the commands; an unknown command exits 2', async () => {
    const help = await runBin(['--help']);
    expect(help.code).toBe(0);
    for (const name of ['image', 'flash', 'demo']) expect(help.stdout).toContain(name);
    const bad = await runBin(['frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/frobnicate|Unknown/i);
  });
});

describe('flash inspect on MCUboot simulator dumps', () => {
  const dumps = join(ROOT, 'test/fixtures/mcuboot');
  const cases: [string, string, { source: string; swapType: string; op: string; idx: number; state: number }][] = [
    ['swap-move', 'cut-75', { source: 'primary', swapType: 'perm', op: 'move', idx: 12, state: 1 }],
    ['swap-move', 'revert-cut-455', { source: 'primary', swapType: 'revert', op: 'swap', idx: 13, state: 1 }],
    // Early in a swap-scratch swap the status lives only in the scratch trailer.
    ['swap-scratch', 'cut-135', { source: 'scratch', swapType: 'perm', op: 'swap', idx: 1, state: 3 }],
    ['swap-scratch', 'cut-541', { source: 'primary', swapType: 'perm', op: 'swap', idx: 3, state: 2 }],
  ];
  for (const [strategy, name, want] of cases) {
    it(`${strategy}/${name}: shows where the swap stood`, async () => {
      const file = f(`${strategy}-${name}.bin`);
      writeFileSync(file, gunzipSync(readFileSync(join(dumps, strategy, `${name}.bin.gz`))));
      const r = await runCli(['flash', 'inspect', file, '--board', 'nrf52840', '--strategy', strategy, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const json = JSON.parse(r.stdout) as { swap: { source: string; interrupted: { op: string; idx: number; state: number; swapType: string } | null } };
      expect(json.swap.source).toBe(want.source);
      expect(json.swap.interrupted).toEqual({ op: want.op, idx: want.idx, state: want.state, swapType: want.swapType });
      const text = await runCli(['flash', 'inspect', file, '--board', 'nrf52840', '--strategy', strategy]);
      expect(text.stdout).toMatch(new RegExp(`next boot: resumes the interrupted ${want.swapType} swap`));
    });
  }
});

describe('flash inspect shows the OTA state records', () => {
  it('decodes the latest state the agent wrote to ota-state', async () => {
    const { Flash } = await import('../../src/flash/flash.js');
    const { loadBoard } = await import('../../src/flash/board.js');
    const { saveFlash } = await import('../../src/flash/persist.js');
    const { OtaStateStore } = await import('../../src/device/ota-state.js');
    const flash = Flash.create(loadBoard('nrf52840'));
    const store = OtaStateStore.open(flash.area('ota-state'));
    store.update({ highestSeq: 7 });
    store.update({ lastUpdate: { targetVersion: '2.0.0', fromVersion: '1.0.0', result: 'failed', reason: 8, reported: false } });
    const file = f('ota-state.bin');
    saveFlash(flash, file);
    const r = await runCli(['flash', 'inspect', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { otaState: { records: number; state: { highestSeq: number; lastUpdate: { targetVersion: string; result: string; reason: number } } } };
    expect(json.otaState.records).toBe(2);
    expect(json.otaState.state.highestSeq).toBe(7);
    expect(json.otaState.state.lastUpdate).toMatchObject({ targetVersion: '2.0.0', result: 'failed', reason: 8 });
    const text = await runCli(['flash', 'inspect', file]);
    expect(text.stdout).toMatch(/ota-state: 2 record\(s\), latest #\d+/);
  });
});
