/**
 * Against an independent server: libcoap's `coap-server-openssl` with dynamic resources (-d) and a
 * PSK. The test PUTs a CBOR manifest to /.u/desired and the image to its URI with
 * `coap-client-openssl`, then `ota-sim device` updates from it over DTLS and confirms. libcoap
 * knows nothing of reports (it answers them with an error); the agent shrugs that off.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from 'cbor-x';
import { afterAll, describe, expect, it } from 'vitest';
import { publicKeyOf, publicKeyToPem } from '../../src/image/index.js';
import { runCli } from '../helpers/cli.js';
import { hasLibcoap, startLibcoapServer } from '../net/libcoap.js';
import type { LibcoapServer } from '../net/libcoap.js';
import { image, key } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ota-sim-libcoap-agent-'));
const servers: LibcoapServer[] = [];
afterAll(() => {
  for (const s of servers) s.stop();
});

describe.skipIf(!hasLibcoap())('the agent against libcoap coap-server-openssl', () => {
  it('updates over DTLS from a manifest and image PUT to libcoap, confirms, and survives report errors', async () => {
    // two dynamic resources: the manifest and the image; a report cannot create a third one
    const server = await startLibcoapServer({ maxResources: 2 });
    servers.push(server);
    const next = image('1.1.0');
    const files = { pub: join(dir, 'pub.pem'), initial: join(dir, 'v1.bin'), flash: join(dir, 'dev.bin'), image: join(dir, 'v1.1.0.bin'), manifest: join(dir, 'desired.cbor') };
    writeFileSync(files.pub, publicKeyToPem(publicKeyOf(key)));
    writeFileSync(files.initial, image('1.0.0'));
    writeFileSync(files.image, next);
    const sha = createHash('sha256').update(next).digest('hex');
    writeFileSync(files.manifest, encode(new Map<number, unknown>([[1, 1], [3, [new Map<number, unknown>([[1, 'main'], [2, '1.1.0'], [3, sha], [4, next.length], [5, '/fw/main']])]]])));
    await server.put('/fw/main', files.image);
    await server.put('/.u/desired', files.manifest);
    const r = await runCli([
      'device', '--server', `coaps://127.0.0.1:${server.dtlsPort}`, '--psk-id', 'dev-libcoap', '--psk', server.key,
      '--board', 'nrf52840', '--flash', files.flash, '--trust', files.pub, '--initial-image', files.initial,
      '--time-scale', '0.01', '--block-size', '1024', '--window', '4', '--timeout-s', '15', '--json',
      '--until', 'confirmed', '--expect', 'update',
    ]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const json = JSON.parse(r.stdout) as { runningVersion: string; confirmed: boolean; bricked: boolean; reboots: number; reports: { s: number; r: number; delivered?: boolean }[] };
    expect(json.runningVersion).toMatch(/^1\.1\.0/);
    expect(json.confirmed).toBe(true);
    expect(json.bricked).toBe(false);
    expect(json.reboots).toBe(1);
    // the reports were sent and libcoap answered them with an error, but the update went on
    expect(json.reports.some((x) => x.s === 3 && x.r === 1)).toBe(true);
    expect(json.reports.length).toBeGreaterThan(0);
    expect(json.reports.every((x) => x.delivered === false)).toBe(true);
  });
});
