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
      [['--devices', '5', '--scenario', 'x.yaml'], 'x.yaml: cannot read the scenario file'],
      [['--devices', '5', '--board', 'nrf52840:0'], '--board'],
      [['--devices', '5', '--board', 'nrf52840', '--board', 'nrf52840:2'], '--board: each board once'],
      [['--devices', '5', '--board', 'nrf52840', '--board', 'nrf9160dk', '--image', 'x.bin'], '--image'],
      [['--devices', '5', '--initial-version', '1.1.0'], '--initial-version 1.1.0: must be older'],
      [['--devices', '5', '--initial-version', 'one'], '--initial-version'],
      [['--devices', '5', '--chaos-rate', '0.5'], '--chaos-rate: needs --chaos'],
      [['--devices', '5', '--chaos', 'los=0.1'], '--chaos: "los=0.1"'],
      [['--devices', '5', '--chaos', 'loss=2'], '--chaos: loss: expected a probability'],
      [['--devices', '5', '--chaos', 'loss=0.1', '--chaos-rate', '3'], '--chaos-rate'],
      [['--board', 'nrf52840'], '--devices: required'],
    ] as const) {
      const r = await runCli(['fleet', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(text);
    }
    const m = await runCli(['report', 'merge', join(dir, 'nope.json')]);
    expect(m.code).toBe(2);
  });

  it('--scenario: what does not map to a fleet exits 2 naming the field; flags the scenario decides are refused', async () => {
    const base = `name: s\ndescription: d\nboard: nrf52840\nstrategy: swap-move\nimages:\n  v1: { version: 1.0.0 }\n  v2: { version: 1.1.0 }\ngroups:\n  - { name: g, count: 3, image: v1 }\ntimeline:\n  - { release: { id: r, images: [v2] } }\nexpect: { groups: { g: { version: 1.1.0 } } }\n`;
    const cases: [string, string[], string][] = [
      [base + 'faults:\n  - { kind: power-cut, atOp: 40, devices: [g] }\n', [], 'faults[0].kind: "power-cut" is not supported in a fleet'],
      [base + 'faults:\n  - { kind: network, devices: [g-0], loss: 0.1 }\n', [], 'faults[0].devices: "g-0" is not a group name'],
      [base.replace('count: 3, image: v1', 'count: 3, image: v1, agent: { window: 2 }'), [], 'groups[0].agent'],
      [base.replace('timeline:\n  - { release: { id: r, images: [v2] } }\n', ''), [], 'timeline: a fleet scenario needs at least one release step'],
      [base + 'server: { embedded: true, transport: udp }\n', [], 'server.transport: fleets talk DTLS'],
      [base + 'faults:\n  - { kind: network, devices: [g], blackholeAtBlock: { atBlock: 3, for_ms: 1000 } }\n', [], 'faults[0].blackholeAtBlock'],
      [base, ['--board', 'nrf52840'], '--board: not with --scenario'],
      [base, ['--chaos', 'loss=0.1'], '--chaos: not with --scenario'],
    ];
    for (const [i, [yaml, extra, text]] of cases.entries()) {
      const file = join(dir, `refused-${i}.yaml`);
      writeFileSync(file, yaml);
      const r = await runCli(['fleet', '--scenario', file, ...extra]);
      expect(r.code, text).toBe(2);
      expect(r.stderr).toContain(text);
    }
  });

  it('--scenario with --devices runs the scaled groups; --board mixes and --chaos show in --json and the summary', async () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, `name: cli-fleet\ndescription: d\nboard: nrf52840\nstrategy: swap-move\nimages:\n  v1: { version: 1.0.0, size_bytes: 4096 }\n  v2: { version: 1.1.0, size_bytes: 4096 }\ngroups:\n  - { name: a, count: 1, image: v1 }\n  - { name: b, count: 3, image: v1, tags: [t] }\ntimeline:\n  - { release: { id: r, images: [v2], tags: [t] } }\nexpect: { groups: { a: { version: 1.0.0 }, b: { version: 1.1.0 } } }\n`);
    const r = await runCli(['fleet', '--scenario', file, '--devices', '8', '--workers', '0', '--json', '--time-scale', '0.01', '--timeout-s', '120']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { devices: number; expected: number; updated: number; byGroup: Record<string, { devices: number; targeted: number; updated: number }> };
    // 1:3 scaled to 8 devices: 2 and 6; the release targets tag t, so group b only
    expect(j.byGroup).toEqual({ a: { devices: 2, targeted: 0, updated: 0 }, b: { devices: 6, targeted: 6, updated: 6 } });
    expect(j).toMatchObject({ devices: 8, expected: 6, updated: 6 });
    const m = await runCli(['fleet', '--devices', '6', '--workers', '0', '--board', 'nrf52840:1', '--board', 'nrf9160dk:1', '--chaos', 'delay-ms=5,duplicate=0.1', '--chaos-rate', '0.5', '--seed', '3', ...FAST]);
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout).toContain('by board (updated/targeted): nrf52840 ');
    expect(m.stdout).toMatch(/network chaos: \d+ devices behind a chaos proxy \(rate 0\.5\), \d+ datagrams, faults injected: .*delay \d+/);
  }, 240_000);

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
