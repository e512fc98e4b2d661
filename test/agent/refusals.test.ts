/**
 * Refusals over DTLS that never boot the offered image, each with the reason code the agent
 * reports (FORMATS.md): a corrupted signature (r=5), a served artifact whose bytes differ from the manifest's SHA-256 (r=5), an
 * image larger than slot1 (r=2, refused from the manifest before a byte is downloaded), an image
 * whose own version is lower than the running one (r=8, ota-sim profile), and a manifest offering
 * a lower version (skipped, nothing downloaded). The persisted attempt cap keeps the agent from
 * downloading a refused version again, across a reboot and a fresh notification.
 */
import { describe, expect, it } from 'vitest';
import { OtaStateStore } from '../../src/device/index.js';
import { signImage, behaviourTlv, boardTlv } from '../../src/image/index.js';
import { Prng } from '../../src/prng.js';
import { accepted, board, image, key, rig, waitFor, rigsClosedAfterEach } from './helpers.js';
import type { Rig } from './helpers.js';

const start = rigsClosedAfterEach();

const idleCount = (r: Rig): number => r.events.filter((e) => e.type === 'state' && e.state === 'idle' && e.version === '1.0.0+0').length;

/** Reboot, then offer the same artifact in a fresh release (a new notification): nothing is downloaded again. */
async function expectNoRetry(r: Rig, artifactId: string, downloadsBefore: number): Promise<void> {
  r.device.powerOff();
  const idles = idleCount(r);
  r.device.powerOn();
  await waitFor(() => idleCount(r) > idles, 'idle after the reboot');
  await r.server.model.createRelease({ artifacts: [artifactId] });
  await new Promise((res) => setTimeout(res, 300)); // 30 s of device time for a notification to act on
  expect(r.events.filter((e) => e.type === 'download-start')).toHaveLength(downloadsBefore);
  expect(r.device.image?.version).toBe('1.0.0+0');
}

describe('refusals never boot the offered image (DTLS)', () => {
  it('served bytes that differ from the manifest hash are refused with r=5', async () => {
    const r = await start({ transport: 'dtls' });
    const a = await r.server.model.addArtifact({ package: 'main', bytes: image('1.3.0') });
    await r.server.model.createRelease({ artifacts: [a.id] });
    // tamper with what the server serves after the release: the manifest keeps the original hash
    const served = r.server.model.artifactAt(a.uri)!.bytes;
    served[0x300] = served[0x300]! ^ 0xff;
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.r === 5), 'a report with reason 5');
    expect(accepted(r.server)).toContainEqual({ s: 0, r: 5, pkg: 'main', v: '1.0.0+0', t: '1.3.0+0' });
    const refused = r.events.find((e) => e.type === 'refused');
    expect(refused).toMatchObject({ reason: 5, version: '1.3.0+0' });
    expect(refused?.type === 'refused' && refused.message).toMatch(/SHA-256/);
    expect(r.device.reboots).toBe(0);
    // the server recorded the report before the agent, on its answer, marks it reported on flash
    await waitFor(() => OtaStateStore.open(r.flash.area('ota-state')).state.lastUpdate?.reported === true, 'the outcome marked reported');
    expect(OtaStateStore.open(r.flash.area('ota-state')).state.lastUpdate).toMatchObject({ targetVersion: '1.3.0+0', result: 'failed', reason: 5, reported: true });
    expect(r.events.filter((e) => e.type === 'download-start')).toHaveLength(1);
    await expectNoRetry(r, a.id, 1);
  });

  it('a corrupted signature (right key, manifest hash of the corrupted bytes) is refused with r=5', async () => {
    const r = await start({ transport: 'dtls' });
    const bytes = Uint8Array.from(image('1.3.0'));
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01; // the Ed25519 signature is the image's last TLV
    const a = await r.server.model.addArtifact({ package: 'main', bytes });
    await r.server.model.createRelease({ artifacts: [a.id] });
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.r === 5), 'a report with reason 5');
    expect(accepted(r.server)).toContainEqual({ s: 0, r: 5, pkg: 'main', v: '1.0.0+0', t: '1.3.0+0' });
    const refused = r.events.find((e) => e.type === 'refused');
    expect(refused).toMatchObject({ reason: 5, version: '1.3.0+0' });
    expect(refused?.type === 'refused' && refused.message).toMatch(/sig/i);
    expect(r.device.reboots).toBe(0);
    expect(r.device.image?.version).toBe('1.0.0+0');
    await expectNoRetry(r, a.id, 1);
  });

  it('an image larger than slot1 is refused with r=2 before a byte is downloaded', async () => {
    const r = await start({ transport: 'dtls' });
    const big = signImage(new Prng(9).bytes(board.partitions.slot1.size), {
      key,
      headerSize_bytes: 0x200,
      padHeader: true,
      slotSize_bytes: 0, // no fit check: the image is meant not to fit
      align: 4,
      version: '1.3.0',
      customTlvs: [behaviourTlv({}), boardTlv('nrf52840')],
    });
    expect(big.length).toBeGreaterThan(board.partitions.slot1.size);
    const a = await r.server.model.addArtifact({ package: 'main', bytes: big });
    await r.server.model.createRelease({ artifacts: [a.id] });
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.r === 2), 'a report with reason 2');
    expect(accepted(r.server)).toContainEqual({ s: 0, r: 2, pkg: 'main', v: '1.0.0+0', t: '1.3.0+0' });
    expect(r.events.some((e) => e.type === 'refused' && e.reason === 2)).toBe(true);
    expect(r.events.filter((e) => e.type === 'download-start' || e.type === 'block')).toHaveLength(0);
    expect(r.device.reboots).toBe(0);
    await expectNoRetry(r, a.id, 0);
  });

  it('an image whose own version is lower than the running one is refused with r=8 (ota-sim)', async () => {
    const r = await start({ transport: 'dtls' });
    // the manifest says 1.4.0, the signed image inside says 0.9.0
    const a = await r.server.model.addArtifact({ package: 'main', version: '1.4.0', bytes: image('0.9.0') });
    await r.server.model.createRelease({ artifacts: [a.id] });
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.r === 8), 'a report with reason 8');
    expect(accepted(r.server)).toContainEqual({ s: 0, r: 8, pkg: 'main', v: '1.0.0+0', t: '1.4.0' });
    const refused = r.events.find((e) => e.type === 'refused');
    expect(refused).toMatchObject({ reason: 8, version: '1.4.0' });
    expect(refused?.type === 'refused' && refused.message).toMatch(/not newer/);
    expect(r.device.reboots).toBe(0);
    await expectNoRetry(r, a.id, 1);
  });

  it('a manifest offering a lower version is not downloaded (ota-sim)', async () => {
    const r = await start({ transport: 'dtls' });
    const a = await r.server.model.addArtifact({ package: 'main', bytes: image('0.9.0') });
    await r.server.model.createRelease({ artifacts: [a.id] });
    r.device.powerOn();
    await waitFor(() => idleCount(r) >= 1, 'idle');
    await new Promise((res) => setTimeout(res, 300));
    expect(r.events.filter((e) => e.type === 'download-start')).toHaveLength(0);
    expect(r.device.reboots).toBe(0);
    expect(r.device.image?.version).toBe('1.0.0+0');
  });
});
