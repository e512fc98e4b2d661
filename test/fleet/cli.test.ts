/** `ota-sim fleet` and `ota-sim report merge`: JSON, shards merged, exit codes 0/1/2/3. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadBoard } from '../../src/flash/index.js';
import { boardTlv, ed25519KeyPemFromSeed, parseSigningKeyPem, signImage } from '../../src/image/index.js';
import { Prng } from '../../src/prng.js';
import { ROOT, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ota-sim-fleet-'));
const FAST = ['--image-size', '16384', '--time-scale', '0.01', '--timeout-s', '120'];

describe('ota-sim fleet', () => {
  it('--json has the fields CLI.md guarantees; exit 0 when every device updated', async () => {
    const r = await runCli(['fleet', '--devices', '6', '--workers', '0', '--seed', '4', '--json', ...FAST]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ devices: 6, updated: 6, bricked: 0 });
    expect(typeof j.durationMs).toBe('number');
    expect(typeof j.rssBytesPerDevice).toBe('number');
    expect(j.failuresByReason).toEqual({});
  }, 180_000);

  it('two shards written with --out merge into the whole fleet (report merge, --report-dir)', async () => {
    const files = [1, 2].map((i) => join(dir, `shard-${i}.json`));
    for (const [i, f] of files.entries()) {
      const r = await runCli(['fleet', '--devices', '7', '--workers', '0', '--shard', `${i + 1}/2`, '--out', f, ...FAST]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`shard ${i + 1}/2 of 7`);
    }
    const shards = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as { devices: number });
    expect(shards.map((s) => s.devices)).toEqual([4, 3]);
    const m = await runCli(['report', 'merge', ...files, '--report-dir', join(dir, 'merged'), '--json']);
    expect(m.code).toBe(0);
    const j = JSON.parse(m.stdout) as { devices: number; updated: number; bricked: number; updateTimes_wallMs: number[] };
    expect(j).toMatchObject({ devices: 7, updated: 7, bricked: 0 });
    expect(j.updateTimes_wallMs).toHaveLength(7);
    expect(JSON.parse(readFileSync(join(dir, 'merged', 'fleet.json'), 'utf8'))).toMatchObject({ devices: 7, updated: 7 });
    // one shard alone is not the fleet: exit 1, the missing shard named
    const half = await runCli(['report', 'merge', files[0]!]);
    expect(half.code).toBe(1);
    expect(half.stdout).toContain('MISSING shards: 2/2');
  }, 240_000);

  it('exit 1 when the rollout misses its target (an image signed with a key the devices do not trust)', async () => {
    const board = loadBoard('nrf52840');
    const stranger = parseSigningKeyPem(ed25519KeyPemFromSeed(new Prng(99).bytes(32)));
    const img = signImage(new Prng(1).bytes(8192), { key: stranger, headerSize_bytes: 0x200, padHeader: true, slotSize_bytes: board.partitions.slot0.size, align: 4, version: '2.0.0', customTlvs: [boardTlv('nrf52840')] });
    const file = join(dir, 'untrusted.bin');
    writeFileSync(file, img);
    const r = await runCli(['fleet', '--devices', '3', '--workers', '0', '--image', file, '--stall-s', '3', '--json', ...FAST]);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout) as { updated: number; bricked: number; failuresByReason: Record<string, number> };
    expect(j.updated).toBe(0);
    expect(j.bricked).toBe(0);
    expect(j.failuresByReason['not-updated']).toBe(3);
    expect(Object.keys(j.failuresByReason).some((k) => k.startsWith('refused-'))).toBe(true);
  }, 180_000);

  it('exit 2 on bad input, naming the flag', async () => {
    for (const [args, text] of [
      [['--devices', '0'], '--devices'],
      [['--devices', '5', '--shard', '4/3'], '--shard'],
      [['--devices', '5', '--rollout', '120'], '--rollout'],
      [['--devices', '5', '--server', 'coaps://127.0.0.1:5684'], '--psk-file'],
      [['--devices', '5', '--scenario', 'x.yaml'], '--scenario'],
    ] as const) {
      const r = await runCli(['fleet', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(text);
    }
    const m = await runCli(['report', 'merge', join(dir, 'nope.json')]);
    expect(m.code).toBe(2);
  });

  it('exit 3 up front when the open-file limit cannot hold one socket per device', async () => {
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile('sh', ['-c', `ulimit -n 300 && exec "${process.execPath}" "${ROOT}bin/ota-sim.js" fleet --devices 1000`], { cwd: ROOT }, (error, _stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stderr });
      });
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('the open-file limit (ulimit -n) is 300: at most 172 devices fit');
    expect(r.stderr).toContain('--shard I/6');
  });
});
