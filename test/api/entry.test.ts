/**
 * The typed API is enough to drive a whole OTA update from a test suite: this file imports
 * nothing from ota-sim but the package entry ('ota-sim', resolved through package.json exports to
 * dist/), with no mocks. Sign two images, start the server (DTLS PSK), release v2, run a device
 * to v2 confirmed, judge it with the oracle, read its events as an async iterable, cut a second
 * device's power after download block 3, and check every failure is a typed OtaSimError.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ota from 'ota-sim';
import { CheckError, EnvironmentError, ImageError, InputError, OtaSimError, ScaledClock, checkOracle, createDevice, keyFromSeed, loadBoard, parseImage, publicKeyOf, signImage, startServer, verifyImage } from 'ota-sim';
import type { DeviceEvent, DeviceHandle, ServerHandle } from 'ota-sim';

const key = keyFromSeed(11);
const PSK = { identity: 'qa-dev-1', psk: 'qa-secret-1' };
/** A 16 KiB payload signed for nrf52840 (32 blocks of 512 bytes). */
const image = (version: string, fill: number): Uint8Array => signImage(new Uint8Array(16 * 1024).fill(fill), { key, version, board: 'nrf52840' });
const v1 = image('1.0.0', 1);
const v2 = image('2.0.0', 2);
const agent = { blockSize_bytes: 512, window: 4 } as const;
const WAIT = { timeout_ms: 45_000 };

let server: ServerHandle;
const devices: DeviceHandle[] = [];

beforeAll(async () => {
  server = await startServer({ clock: new ScaledClock(0.01), devices: [PSK] });
  const artifact = await server.addArtifact(v2);
  await server.createRelease({ artifacts: [artifact] });
});

afterAll(async () => {
  for (const d of devices) await d.close();
  await server?.close();
});

async function errorOf(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

describe('ota-sim from code (package entry only)', () => {
  it('signs images that verify, with a header version and board', () => {
    expect(verifyImage(v2, [publicKeyOf(key)]).valid).toBe(true);
    const p = parseImage(v2);
    expect(p.version).toBe('2.0.0+0');
    expect(p.board).toBe('nrf52840');
    expect(verifyImage(v2, [publicKeyOf(keyFromSeed(12))]).valid).toBe(false);
  });

  it('updates a DTLS PSK device from v1 to v2 confirmed, and the oracle holds', async () => {
    expect(server.url).toMatch(/^coaps:\/\/127\.0\.0\.1:\d+$/);
    const dev = await createDevice({ board: 'nrf52840', image: v1, trust: key, server: server.url, identity: PSK.identity, psk: PSK.psk, clock: server.clock, seed: 5, agent });
    devices.push(dev);
    expect(dev.runningImage()).toBeNull();
    dev.powerOn();
    const status = await dev.waitFor({ version: '2.0.0', confirmed: true }, WAIT);
    expect(status.running?.version).toBe('2.0.0+0');
    expect(dev.runningImage()?.confirmed).toBe(true);
    await dev.waitFor('idle', WAIT); // the success report is sent before idle

    // the events, read as an async iterable (from the first one kept)
    const seen: DeviceEvent[] = [];
    for await (const e of dev.events) {
      seen.push(e);
      if (e.type === 'confirmed') break;
    }
    const types = seen.map((e) => e.type);
    expect(types[0]).toBe('power-on');
    expect(types).toContain('download-start');
    expect(seen.filter((e) => e.type === 'booted').map((e) => (e.type === 'booted' ? `${e.version} ${e.action}` : ''))).toEqual(['1.0.0+0 none', '2.0.0+0 test']);
    expect(seen[seen.length - 1]).toMatchObject({ type: 'confirmed', version: '2.0.0+0' });
    expect(types).not.toContain('power-cut');

    const verdict = checkOracle(dev, server);
    expect(verdict.invariants.map((i) => i.id)).toEqual(['never-bricked', 'only-verified-images-run', 'converges', 'no-revert-of-confirmed', 'storage-untouched', 'honest-reports', 'bounded-effort']);
    expect(verdict.violations).toEqual([]);
    expect(verdict.passed).toBe(true);
    expect(verdict.expectation.targetVersion).toBe('2.0.0+0');
    expect(verdict.device).toMatchObject({ finalVersion: '2.0.0+0', confirmed: true, bricked: false, downloads: 1, powerCuts: 0 });
    expect(server.devices().find((d) => d.identity === PSK.identity)?.lastReport).toMatchObject({ v: '2.0.0+0', r: 1 });
  });

  it('survives a power cut after download block 3, ends on v2 confirmed, and the oracle holds', async () => {
    const dev = await createDevice({ board: 'nrf52840', image: v1, trust: key, server, seed: 6, agent }); // registered on the server with a PSK of its own
    devices.push(dev);
    dev.powerCut({ at: { block: 3 } });
    const cut = dev.events.next('power-cut');
    dev.powerOn();
    await dev.waitFor({ version: '2.0.0', confirmed: true }, WAIT);
    await dev.waitFor('idle', WAIT);
    expect(await cut).toMatchObject({ type: 'power-cut', trigger: 'block:3', during: 'firmware' });
    expect(dev.status().powerCuts).toBe(1);
    const verdict = checkOracle(dev, server);
    expect(verdict.violations).toEqual([]);
    expect(verdict.passed).toBe(true);
    expect(verdict.device).toMatchObject({ finalVersion: '2.0.0+0', confirmed: true, powerCuts: 1 });
    // the oracle judges from flash: a device that did not converge fails invariant 3
    const wrong = checkOracle(dev, server, { targetVersion: '3.0.0' });
    expect(wrong.passed).toBe(false);
    expect(wrong.violations.map((v) => v.invariant)).toContain('converges');
  });

  it('throws typed errors with stable codes', async () => {
    const board = await errorOf(() => loadBoard('no-such-board'));
    expect(board).toBeInstanceOf(InputError);
    expect(board).toMatchObject({ code: 'UNKNOWN_BOARD', exitCode: 2 });

    const bad = v2.slice(0, 40);
    const image = await errorOf(() => parseImage(bad));
    expect(image).toBeInstanceOf(ImageError);
    expect(image).toBeInstanceOf(OtaSimError);
    expect((image as ImageError).code).toBe('TRUNCATED');
    expect(await errorOf(() => server.addArtifact(new Uint8Array(64)))).toMatchObject({ code: 'NO_VERSION' });

    const url = await errorOf(() => createDevice({ board: 'nrf52840', trust: key, server: 'http://127.0.0.1:1' }));
    expect(url).toBeInstanceOf(OtaSimError);
    expect(url).toMatchObject({ code: 'BAD_URL' });

    // a closed server: its handle refuses, and a device pointed at its old URL never gets an answer
    const gone = await startServer({ clock: new ScaledClock(0.01), devices: [PSK] });
    const goneUrl = gone.url;
    await gone.close();
    const closed = await errorOf(() => gone.addArtifact(v2));
    expect(closed).toBeInstanceOf(EnvironmentError);
    expect(closed).toMatchObject({ code: 'SERVER_CLOSED', exitCode: 3 });
    expect(await errorOf(() => createDevice({ board: 'nrf52840', image: v1, trust: key, server: gone }))).toMatchObject({ code: 'SERVER_CLOSED' });
    const lonely = await createDevice({ board: 'nrf52840', image: v1, trust: key, server: goneUrl, identity: PSK.identity, psk: PSK.psk, clock: new ScaledClock(0.01), agent });
    devices.push(lonely);
    lonely.powerOn();
    const timeout = await errorOf(() => lonely.waitFor('idle', { timeout_ms: 1500 }));
    expect(timeout).toBeInstanceOf(CheckError);
    expect(timeout).toMatchObject({ code: 'WAIT_TIMEOUT', exitCode: 1 });
    expect(lonely.status().agentState).not.toBe('idle');
    expect(() => lonely.powerOn()).toThrow(expect.objectContaining({ code: 'DEVICE_NOT_OFF' }));
  });

  it('exports every name docs/api.md documents', () => {
    const doc = readFileSync(fileURLToPath(new URL('../../docs/api.md', import.meta.url)), 'utf8');
    const dts = readFileSync(fileURLToPath(new URL('../../dist/src/index.d.ts', import.meta.url)), 'utf8');
    const reference = doc.slice(doc.indexOf('## Reference'));
    const values = [...reference.matchAll(/^#{3,4} `([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]!);
    const types = [...reference.matchAll(/^- type `([A-Za-z_$][\w$]*)`/gm)].map((m) => m[1]!);
    expect(values.length).toBeGreaterThan(20);
    expect(types.length).toBeGreaterThan(10);
    const entry = ota as Record<string, unknown>;
    expect(values.filter((n) => entry[n] === undefined)).toEqual([]);
    expect(types.filter((n) => !new RegExp(`\\b${n}\\b`).test(dts))).toEqual([]);
  });
});
