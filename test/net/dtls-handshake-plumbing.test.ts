/**
 * The handshake backend reaches the wire from the agent's config and from `ota-sim device
 * --dtls-handshake`: a relay in front of the update server's DTLS port reads the device's
 * ClientHello, whose cipher-suite list tells the backends apart ('ota-sim' offers exactly CCM_8,
 * CCM and GCM with AES-128; node-dtls-client offers its longer list). Either way the device
 * updates. A value that is not a backend is a usage error (exit 2).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DtlsHandshakeBackend } from '../../src/net/dtls-transport.js';
import { parseHandshakeFragments } from '../../src/dtls/handshake.js';
import { parseClientHello } from '../../src/dtls/messages.js';
import { parseRecords } from '../../src/dtls/record.js';
import { publicKeyOf, publicKeyToPem } from '../../src/image/index.js';
import { UpdateServer } from '../../src/server/index.js';
import { DEVICE, image, key, offer, rig, waitFor } from '../agent/helpers.js';
import { Relay } from '../dtls/relay.js';
import { runCli } from '../helpers/cli.js';

const OTA_SIM_SUITES = [0xc0a8, 0xc0a4, 0x00a8];

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** Cipher suites of every ClientHello the relay carried to the server. */
function offeredSuites(relay: Relay): number[][] {
  const out: number[][] = [];
  for (const l of relay.log) {
    if (l.direction !== 'to-server') continue;
    for (const rec of parseRecords(l.datagram)) {
      if (rec.type !== 22 || rec.epoch !== 0) continue;
      for (const f of parseHandshakeFragments(rec.fragment)) if (f.msgType === 1 && f.body.length === f.length) out.push(parseClientHello(f.body).cipherSuites);
    }
  }
  return out;
}

async function serverWithRelay(): Promise<{ server: UpdateServer; relay: Relay }> {
  const server = await UpdateServer.start({ port: 0, dtlsPort: 0, adminPort: null, devices: [DEVICE], offerNewest: false });
  cleanup.push(() => server.close());
  await offer(server, image('1.1.0'));
  const relay = new Relay(server.addresses().dtls!.port);
  await relay.start();
  cleanup.push(() => relay.close());
  return { server, relay };
}

describe('AgentConfig.dtlsHandshake', () => {
  for (const backend of [undefined, 'ota-sim', 'node-dtls-client'] as (DtlsHandshakeBackend | undefined)[]) {
    it(`${backend ?? 'default (ota-sim)'}: the device's ClientHello is that backend's, and it updates`, async () => {
      const { server, relay } = await serverWithRelay();
      const r = await rig({ transport: 'dtls', server, port: relay.port, agent: backend === undefined ? {} : { dtlsHandshake: backend } });
      cleanup.push(() => r.close());
      r.device.powerOn();
      await waitFor(() => r.events.some((e) => e.type === 'confirmed'), 'the update confirmed', 60_000);
      const hellos = offeredSuites(relay);
      expect(hellos.length).toBeGreaterThanOrEqual(2); // before the update and after the test boot
      for (const suites of hellos) {
        if (backend === 'node-dtls-client') {
          expect(suites.length).toBeGreaterThan(OTA_SIM_SUITES.length);
        } else {
          expect(suites).toEqual(OTA_SIM_SUITES);
        }
      }
    });
  }
});

describe('ota-sim device --dtls-handshake', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ota-sim-dtls-handshake-cli-'));
  const files = { pub: join(dir, 'pub.pem'), initial: join(dir, 'v1.bin') };
  writeFileSync(files.pub, publicKeyToPem(publicKeyOf(key)));
  writeFileSync(files.initial, image('1.0.0'));
  const args = (port: number, flash: string): string[] => [
    'device', '--server', `coaps://127.0.0.1:${port}`, '--psk-id', DEVICE.identity, '--psk', DEVICE.key, '--board', 'nrf52840', '--flash', join(dir, flash),
    '--trust', files.pub, '--initial-image', files.initial, '--time-scale', '0.01', '--block-size', '512', '--window', '4', '--timeout-s', '60', '--json',
  ];

  for (const backend of ['ota-sim', 'node-dtls-client'] as const) {
    it(`${backend}: updates over DTLS with that backend's ClientHello`, async () => {
      const { relay } = await serverWithRelay();
      const r = await runCli([...args(relay.port, `${backend}.bin`), '--dtls-handshake', backend]);
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as { runningVersion: string }).runningVersion).toMatch(/^1\.1\.0/);
      const hellos = offeredSuites(relay);
      expect(hellos.length).toBeGreaterThanOrEqual(1);
      for (const suites of hellos) {
        if (backend === 'ota-sim') expect(suites).toEqual(OTA_SIM_SUITES);
        else expect(suites.length).toBeGreaterThan(OTA_SIM_SUITES.length);
      }
    });
  }

  it('an unknown backend is a usage error (exit 2) naming the flag', async () => {
    const r = await runCli([...args(9, 'bogus.bin'), '--dtls-handshake', 'tinydtls']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--dtls-handshake/);
  });
});
