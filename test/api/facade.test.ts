/**
 * The API facade's details (src/api), through the package entry: board files in JSON and YAML,
 * createFlash, signImage's defaults, every powerCut trigger (op index, state, torn block cut with
 * power left off), the event stream's end, sweep's two forms, runScenario from an object, runFleet's
 * progress callback, and options refused with typed codes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  ImageError,
  InputError,
  ScaledClock,
  bootIsImgConfirmed,
  checkOracle,
  createDevice,
  createFlash,
  keyFromSeed,
  loadBoard,
  loadScenario,
  parseImage,
  publicKeyOf,
  runFleet,
  runScenario,
  signImage,
  startServer,
  sweep,
  verifyImage,
} from 'ota-sim';
import type { DeviceEvent, DeviceHandle, FleetProgress, ServerHandle } from 'ota-sim';

const key = keyFromSeed(21);
const image = (version: string): Uint8Array => signImage(new Uint8Array(16 * 1024).fill(version.charCodeAt(0)), { key, version, board: 'nrf52840' });
const v1 = image('1.0.0');
const v2 = image('2.0.0');
const agent = { blockSize_bytes: 512, window: 2 } as const;
const WAIT = { timeout_ms: 45_000 };
const scenario = {
  name: 'api-facade',
  description: 'one device updates 1.0.0 -> 1.1.0',
  board: 'nrf52840',
  strategy: 'swap-move',
  timeScale: 0.01,
  images: { v1: { version: '1.0.0' }, v2: { version: '1.1.0' } },
  groups: [{ name: 'd', count: 1, image: 'v1', agent: { blockSize_bytes: 1024 } }],
  timeline: [{ at_ms: 0, release: { id: 'r1', images: ['v2'] } }],
  expect: { groups: { d: { version: '1.1.0', confirmed: true } } },
};

let dir: string;
let server: ServerHandle;
const devices: DeviceHandle[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ota-sim-api-'));
  server = await startServer({ clock: new ScaledClock(0.01) });
  await server.createRelease({ artifacts: [await server.addArtifact(v2)] });
});

afterAll(async () => {
  for (const d of devices) await d.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function device(seed: number, extra: Partial<Parameters<typeof createDevice>[0]> = {}): Promise<DeviceHandle> {
  const d = await createDevice({ board: 'nrf52840', image: v1, trust: key, server, seed, agent, ...extra });
  devices.push(d);
  return d;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

describe('boards, flash and images', () => {
  it('loads a board from a name, a JSON file and a YAML file alike', () => {
    const byName = loadBoard('nrf52840');
    const json = join(dir, 'board.json');
    const yaml = join(dir, 'board.yaml');
    const source = JSON.parse(readFileSync(new URL('../../sim-flash/boards/nrf52840.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    writeFileSync(json, JSON.stringify(source));
    writeFileSync(yaml, stringify(source));
    expect(loadBoard(json).partitions).toEqual(byName.partitions);
    expect(loadBoard(yaml).partitions).toEqual(byName.partitions);
    expect(loadBoard(yaml).name).toBe('nrf52840');
    writeFileSync(join(dir, 'bad.yaml'), 'name: x\nflash: [1, 2\n');
    expect(thrown(() => loadBoard(join(dir, 'bad.yaml')))).toMatchObject({ code: 'BAD_BOARD' });
    writeFileSync(join(dir, 'wrong.yml'), stringify({ ...source, partitions: {} }));
    expect(thrown(() => loadBoard(join(dir, 'wrong.yml')))).toMatchObject({ code: 'BAD_BOARD' });
    expect(thrown(() => loadBoard(join(dir, 'missing.yaml')))).toMatchObject({ code: 'UNKNOWN_BOARD' });
  });

  it('creates a flash with a confirmed factory image', () => {
    const flash = createFlash('nrf52840', { image: v1 });
    const slot = flash.area('slot0');
    const r = verifyImage(slot.read(0, slot.size), [publicKeyOf(key)]);
    expect(r.valid).toBe(true);
    expect(r.version).toBe('1.0.0+0');
    expect(bootIsImgConfirmed(flash, 'swap-move')).toBe(true);
    expect(bootIsImgConfirmed(createFlash('nrf52840', { image: v1, mark: 'none' }), 'swap-move')).toBe(false);
  });

  it('signs with a 0x200 padded header by default, and keeps imgtool\'s rule when the header size is given', () => {
    const p = parseImage(signImage(new Uint8Array(100).fill(9), { version: '0.1.0' }));
    expect(p.header.headerSize_bytes).toBe(0x200);
    expect(p.header.imageSize_bytes).toBe(100);
    const e = thrown(() => signImage(new Uint8Array(600).fill(9), { headerSize_bytes: 0x200 }));
    expect(e).toBeInstanceOf(ImageError);
    expect(e).toMatchObject({ code: 'BAD_OPTION' });
    const pem = keyFromSeed(3);
    expect(verifyImage(signImage(new Uint8Array(64), { key: pem }), [publicKeyOf(pem)]).valid).toBe(true);
  });
});

describe('devices: power cuts, events, options', () => {
  it('cuts power before flash op 20 and when the agent enters staging; still ends confirmed, the oracle holds', async () => {
    const d = await device(31);
    const cuts: DeviceEvent[] = [];
    d.events.on('power-cut', (e) => cuts.push(e));
    d.powerCut({ at: 20 });
    d.powerCut({ at: { state: 'staging' } });
    d.powerOn();
    await d.waitFor({ version: '2.0.0', confirmed: true }, WAIT);
    await d.waitFor('idle', WAIT);
    expect(cuts.map((c) => (c.type === 'power-cut' ? c.trigger : ''))).toEqual(['op:20', 'state:staging#1']);
    expect(d.status().powerCuts).toBe(2);
    const verdict = checkOracle(d);
    expect(verdict.violations).toEqual([]);
    expect(verdict.device.powerCuts).toBe(2);
  });

  it('a torn cut after block 5 with off_ms null leaves the device off until powerOn()', async () => {
    const d = await device(32);
    d.powerCut({ at: { block: 5 }, torn: true, off_ms: null });
    d.powerOn();
    const off = await d.waitFor('off', WAIT);
    expect(off.phase).toBe('off');
    expect(d.runningImage()).toBeNull();
    expect(d.events.history.filter((e) => e.type === 'power-cut')).toMatchObject([{ trigger: 'block:5' }]);
    d.powerOn();
    await d.waitFor({ version: '2.0.0', confirmed: true }, WAIT);
    await d.waitFor('idle', WAIT);
    expect(checkOracle(d, server).passed).toBe(true);
  });

  it('reboots through the bootloader, and ends the event iteration at close()', async () => {
    const d = await device(33);
    d.powerOn();
    await d.waitFor({ version: '2.0.0', confirmed: true }, WAIT);
    // a reset through the bootloader: the confirmed image boots again, nothing to swap
    const before = d.status().reboots;
    d.reboot();
    const again = await d.waitFor((s) => s.reboots === before + 1 && s.running !== null, WAIT);
    expect(again.running).toMatchObject({ version: '2.0.0+0', confirmed: true, bootAction: 'none', resetCause: 'software' });
    const collecting = (async () => {
      const types: string[] = [];
      for await (const e of d.events) types.push(e.type);
      return types;
    })();
    await d.close();
    const types = await collecting;
    expect(types[0]).toBe('power-on');
    expect(types).toContain('confirmed');
    expect(types.filter((t) => t === 'reboot')).toHaveLength(2); // the test boot's reboot, and ours
    await expect(d.waitFor('idle', WAIT)).rejects.toMatchObject({ code: 'DEVICE_CLOSED' });
  });

  it('refuses bad options with typed codes', async () => {
    await expect(createDevice({ board: 'nrf52840', trust: key, server, agent: { blockSize_bytes: 100 } })).rejects.toMatchObject({ code: 'BAD_AGENT_OPTION' });
    await expect(createDevice({ board: 'nrf52840', trust: key, server, maxReboots: -1 })).rejects.toMatchObject({ code: 'BAD_DEVICE_OPTION' });
    await expect(createDevice({ board: 'nrf52840', trust: [], server })).rejects.toMatchObject({ code: 'BAD_KEY' });
    await expect(createDevice({ board: 'nrf52840', trust: key, server: 'coaps://127.0.0.1:5684' })).rejects.toBeInstanceOf(InputError);
    const d = await device(34);
    expect(thrown(() => d.powerCut({ at: -1 }))).toMatchObject({ code: 'BAD_ARGUMENT' });
    expect(thrown(() => d.powerCut({ at: 'now', torn: true }))).toMatchObject({ code: 'BAD_ARGUMENT' });
    await expect(d.waitFor(42 as unknown as string)).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
  });
});

describe('scenarios, sweeps, fleets', () => {
  it('runs a scenario given as an object, and names a missing file', async () => {
    const r = await runScenario(scenario, { seed: 2 });
    expect(r.passed).toBe(true);
    expect(r.devices.map((d) => d.finalVersion)).toEqual(['1.1.0+0']);
    expect(thrown(() => loadScenario(join(dir, 'nope.yaml')))).toMatchObject({ code: 'NO_SUCH_FILE' });
  });

  it('sweeps the bootloader synchronously and the whole update when given a scenario', async () => {
    const boot = sweep({ board: 'nrf52840', strategy: 'swap-move', imageSize_bytes: 8192, phase: 'swap' });
    expect(boot).not.toBeInstanceOf(Promise);
    expect(boot.cases).toBeGreaterThan(10);
    const update = sweep({ scenario: loadScenario(scenario), phase: 'stage' });
    expect(update).toBeInstanceOf(Promise);
    const report = await update;
    expect(report.phase).toBe('stage');
    expect(report.cases).toBeGreaterThan(0);
    expect(report.opsByPhase['stage']).toBeGreaterThan(0);
    expect(report.violations).toEqual([]);
  });

  it('runs a small fleet in this thread with a progress callback', async () => {
    const seen: FleetProgress[] = [];
    const result = await runFleet({ devices: 3, workers: 0, timeScale: 0.01, imageSize_bytes: 16 * 1024, seed: 4, onProgress: (p) => seen.push(p) });
    expect(result.updated).toBe(3);
    expect(result.targetReached).toBe(true);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[seen.length - 1]).toMatchObject({ done: true, updated: 3 });
  });
});
