/**
 * `ota-sim device` against the embedded server, as a user runs it: over UDP it updates and exits 0
 * with --expect update; a self-test-fail image ends rolled back, which --expect rollback accepts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UpdateServer } from '../../src/server/index.js';
import { publicKeyOf, publicKeyToPem } from '../../src/image/index.js';
import { runCli } from '../helpers/cli.js';
import { DEVICE, image, key, offer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ota-sim-device-cli-'));
const servers: UpdateServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

async function setup(next: Uint8Array): Promise<{ url: string; files: { pub: string; initial: string; flash: string } }> {
  const server = await UpdateServer.start({ port: 0, dtlsPort: 0, adminPort: null, devices: [DEVICE], offerNewest: false });
  servers.push(server);
  await offer(server, next);
  const files = { pub: join(dir, 'pub.pem'), initial: join(dir, 'v1.bin'), flash: join(dir, `dev-${servers.length}.bin`) };
  writeFileSync(files.pub, publicKeyToPem(publicKeyOf(key)));
  writeFileSync(files.initial, image('1.0.0'));
  return { url: `coap://127.0.0.1:${server.addresses().udp!.port}`, files };
}

const common = (url: string, f: { pub: string; initial: string; flash: string }): string[] => [
  'device', '--server', url, '--psk-id', DEVICE.identity, '--board', 'nrf52840', '--flash', f.flash,
  '--trust', f.pub, '--initial-image', f.initial, '--time-scale', '0.01', '--block-size', '512', '--window', '4', '--timeout-s', '60', '--json',
];

describe('ota-sim device', () => {
  it('updates over UDP and exits 0 when the update was expected', async () => {
    const { url, files } = await setup(image('1.1.0'));
    const r = await runCli(common(url, files));
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { runningVersion: string; confirmed: boolean; bricked: boolean; reboots: number; reports: { s: number; r: number }[] };
    expect(json.runningVersion).toMatch(/^1\.1\.0/);
    expect(json.confirmed).toBe(true);
    expect(json.bricked).toBe(false);
    expect(json.reports.some((x) => x.s === 3 && x.r === 1)).toBe(true);
  });

  it('a self-test-fail image rolls back: --expect rollback exits 0, --expect update would not', async () => {
    const { url, files } = await setup(image('1.2.0', { behaviour: { selfTest: 'fail' } }));
    const r = await runCli([...common(url, files), '--expect', 'rollback', '--until', 'idle']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { runningVersion: string; confirmed: boolean; reports: { s: number; r: number; t?: string }[] };
    expect(json.runningVersion).toMatch(/^1\.0\.0/);
    expect(json.reports.some((x) => x.r === 8 && /^1\.2\.0/.test(x.t ?? ''))).toBe(true);
    // Powered again on the same flash, the device does not retry the failed version: an update
    // was not what happened, so --expect update fails (exit 1).
    const again = await runCli([...common(url, files), '--expect', 'update', '--until', 'idle']);
    expect(again.code, again.stdout).toBe(1);
    expect((JSON.parse(again.stdout) as { runningVersion: string }).runningVersion).toMatch(/^1\.0\.0/);
  });
});
