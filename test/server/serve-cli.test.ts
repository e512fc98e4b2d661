/**
 * `ota-sim serve` as users run it (the built bin): zero-config start from --artifacts and
 * --psk-file, and libcoap's coap-client-openssl fetching the manifest and the artifact over
 * DTLS PSK, byte-exact, blockwise. Skipped when libcoap is not installed.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';
import { image, parseManifest, sha256 } from './helpers.js';

const hasLibcoap = spawnSync('sh', ['-c', 'command -v coap-client-openssl'], { stdio: 'ignore' }).status === 0;

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

interface Started {
  child: ChildProcess;
  info: { udp: string; dtls: string; admin: string; artifacts: string[] };
}

function serve(args: string[]): Promise<Started> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${ROOT}bin/ota-sim.js`, 'serve', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n}\n')) resolve({ child, info: JSON.parse(out) as Started['info'] });
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

function coapClient(args: string[], outFile: string): { status: number | null; stderr: string; bytes: Buffer } {
  const r = spawnSync('coap-client-openssl', [...args, '-o', outFile], { timeout: 30_000, encoding: 'buffer' });
  let bytes = Buffer.alloc(0);
  try {
    bytes = readFileSync(outFile);
  } catch {
    // no output
  }
  return { status: r.status, stderr: r.stderr.toString(), bytes };
}

describe('ota-sim serve', () => {
  it('refuses a non-loopback host and a bad PSK file with exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ota-sim-serve-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'psk.csv'), 'dev-1\n');
    const r1 = await runCli(['serve', '--host', '10.0.0.1', '--port', '0', '--dtls-port', '0', '--admin-port', 'off']);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(/loopback/);
    const r2 = await runCli(['serve', '--psk-file', join(dir, 'psk.csv'), '--port', '0', '--dtls-port', '0', '--admin-port', 'off']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/psk.csv:1: key must be/);
  });

  it.skipIf(!hasLibcoap)('libcoap coap-client-openssl fetches the manifest and the artifact over DTLS PSK, byte-exact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ota-sim-serve-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'fw'));
    const v1 = image('1.0.0', 4000);
    const v2 = image('1.4.2', 20_000, 'nrf52840');
    writeFileSync(join(dir, 'fw', 'app-1.0.0.signed.bin'), v1);
    writeFileSync(join(dir, 'fw', 'app-1.4.2.signed.bin'), v2);
    writeFileSync(join(dir, 'fw', 'README.txt'), 'not an image');
    writeFileSync(join(dir, 'psk.csv'), '# devices\ndev-1,secret-1,nrf52840,beta;lab\n');
    const { child, info } = await serve(['--artifacts', join(dir, 'fw'), '--psk-file', join(dir, 'psk.csv'), '--port', '0', '--dtls-port', '0', '--admin-port', '0']);
    cleanup.push(() => new Promise<void>((r) => (child.exitCode !== null ? r() : (child.once('exit', () => r()), child.kill('SIGTERM')))));
    expect(info.artifacts).toEqual(['main@1.0.0+0', 'main@1.4.2+0/nrf52840']);
    const base = info.dtls;
    const m = coapClient(['-m', 'get', '-u', 'dev-1', '-k', 'secret-1', `${base}/.u/desired`], join(dir, 'manifest.cbor'));
    expect(m.status, m.stderr).toBe(0);
    const manifest = parseManifest(m.bytes);
    expect(manifest.components).toEqual([{ package: 'main', version: '1.4.2+0', hash: sha256(v2), size: v2.length, uri: '/.u/c/main@1.4.2+0/nrf52840' }]);
    for (const block of ['1024', '64']) {
      const a = coapClient(['-m', 'get', '-b', block, '-u', 'dev-1', '-k', 'secret-1', `${base}${manifest.components[0]?.uri ?? ''}`], join(dir, `art-${block}.bin`));
      expect(a.status, a.stderr).toBe(0);
      expect(a.bytes.equals(Buffer.from(v2))).toBe(true);
    }
    const bad = coapClient(['-m', 'get', '-u', 'dev-1', '-k', 'wrong-key', `${base}/.u/desired`], join(dir, 'bad.cbor'));
    expect(bad.bytes.length).toBe(0);
    const metrics = (await (await fetch(`${info.admin}/metrics`)).json()) as { blocksServed: number; manifestRequests: number };
    expect(metrics.manifestRequests).toBe(1);
    expect(metrics.blocksServed).toBe(Math.ceil(v2.length / 1024) + Math.ceil(v2.length / 64));
  });
});
