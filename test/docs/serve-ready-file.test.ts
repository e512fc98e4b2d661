/**
 * `ota-sim serve --ready-file F` (what the guides use to start a server on port 0 and learn its
 * ports): the file appears once the server listens, holds the addresses as JSON, and those
 * addresses answer (a CoAP ping on the UDP port gets a reply).
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './guide-runner.js';

const dir = mkdtempSync(join(tmpdir(), 'ota-sim-ready-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function waitFor(path: string, child: { exitCode: number | null }, bound_ms: number): Promise<void> {
  const step_ms = 50;
  for (let waited = 0; waited < bound_ms && child.exitCode === null; waited += step_ms) {
    if (existsSync(path)) return;
    await new Promise((r) => setTimeout(r, step_ms));
  }
  throw new Error(`${path} did not appear (server exit code ${child.exitCode})`);
}

describe('ota-sim serve --ready-file', () => {
  it('writes the chosen addresses once listening, and they answer', async () => {
    const ready = join(dir, 'server.json');
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'ota-sim.js'), 'serve', '--port', '0', '--dtls-port', '0', '--admin-port', 'off', '--ready-file', ready], { stdio: 'ignore' });
    try {
      await waitFor(ready, child, 30_000);
      const info = JSON.parse(readFileSync(ready, 'utf8')) as { udp: string | null; dtls: string | null; admin: string | null };
      expect(info.admin).toBeNull();
      expect(info.dtls).toMatch(/^coaps:\/\/127\.0\.0\.1:\d+$/);
      const m = /^coap:\/\/127\.0\.0\.1:(\d+)$/.exec(info.udp ?? '');
      expect(m).not.toBeNull();
      const port = Number(m?.[1]);
      expect(port).toBeGreaterThan(0);
      // A CoAP ping (empty CON) gets an empty ACK or RST with its message ID: the port in the file is the one listening.
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      const reply = await new Promise<Buffer | null>((resolve) => {
        const t = setTimeout(() => resolve(null), 10_000);
        sock.once('message', (msg) => {
          clearTimeout(t);
          resolve(msg);
        });
        sock.send(Buffer.from([0x40, 0x00, 0x12, 0x34]), port, '127.0.0.1');
      });
      sock.close();
      expect(reply).not.toBeNull();
      expect([2, 3]).toContain(((reply?.[0] ?? 0) >> 4) & 0x3); // ACK or RST
      expect(reply?.readUInt16BE(2)).toBe(0x1234);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('a --ready-file that cannot be written exits 3 naming the option', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'ota-sim.js'), 'serve', '--port', '0', '--dtls-port', 'off', '--admin-port', 'off', '--ready-file', join(dir, 'missing-dir', 'server.json')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(3);
    expect(stderr).toContain('--ready-file');
  });
});
