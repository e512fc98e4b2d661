/**
 * The behaviour profiles' rules (FORMATS.md "What the Golioth SDK does" and "Extensions"), end to
 * end over UDP against the embedded server (127.0.0.1, clock 1:100):
 * - golioth updates when the offered version merely differs (a lower one too); ota-sim only to a
 *   newer one;
 * - golioth's test boot confirms once the server connection is up: no image self-test;
 * - golioth's rollback timer waits for the server connection only: no connection within the
 *   timer reverts, and the old firmware reports FIRMWARE_UPDATE_FAILED;
 * - (golioth downloads restart at block 0, ota-sim resumes: agent.test.ts; golioth does not
 *   poll: observe.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { bootIsImgConfirmed } from '../../src/boot/public.js';
import { accepted, image, offer, rigsClosedAfterEach, waitFor } from './helpers.js';

const start = rigsClosedAfterEach();

describe('profile rules', () => {
  it('golioth: a lower version that merely differs is downloaded, installed and confirmed', async () => {
    const r = await start({ transport: 'udp', agent: { profile: 'golioth' } });
    const target = await offer(r.server, image('0.9.0'));
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.s === 3 && x.r === 1), 'the success report');
    expect(r.device.image?.version).toBe('0.9.0+0');
    expect(bootIsImgConfirmed(r.flash, 'swap-move')).toBe(true);
    expect(accepted(r.server)).toContainEqual({ s: 3, r: 1, pkg: 'main', v: '0.9.0+0', t: target });
  });

  it('ota-sim: the same lower version is not downloaded', async () => {
    const r = await start({ transport: 'udp' });
    await offer(r.server, image('0.9.0'));
    r.device.powerOn();
    await waitFor(() => r.events.some((e) => e.type === 'manifest'), 'the manifest');
    await waitFor(() => r.events.some((e) => e.type === 'state' && e.state === 'idle'), 'idle');
    // three poll intervals later (each poll re-reads the manifest) nothing has been downloaded
    const t0 = r.device.clock.now();
    await waitFor(() => r.device.clock.now() - t0 >= 3 * 60_000, 'three poll intervals');
    expect(r.events.some((e) => e.type === 'download-start')).toBe(false);
    expect(r.device.image?.version).toBe('1.0.0+0');
  });

  it('golioth: the test boot confirms once connected — a self-test "fail" image is kept (the SDK runs no image self-test)', async () => {
    const r = await start({ transport: 'udp', agent: { profile: 'golioth' } });
    await offer(r.server, image('1.2.0', { behaviour: { selfTest: 'fail' } }));
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.s === 3 && x.r === 1), 'the success report');
    expect(r.device.image?.version).toBe('1.2.0+0');
    expect(bootIsImgConfirmed(r.flash, 'swap-move')).toBe(true);
    expect(r.events.some((e) => e.type === 'rollback')).toBe(false);
  });

  it('ota-sim: the same self-test "fail" image is rolled back', async () => {
    const r = await start({ transport: 'udp' });
    await offer(r.server, image('1.2.0', { behaviour: { selfTest: 'fail' } }));
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.r === 8), 'the failure report');
    expect(r.device.image?.version).toBe('1.0.0+0');
  });

  it('golioth: an image that never reaches the server is reverted when the rollback timer expires; the old firmware reports r=8', async () => {
    const r = await start({ transport: 'udp', agent: { profile: 'golioth', rollbackTimer_ms: 30_000 } });
    const target = await offer(r.server, image('1.3.0', { behaviour: { connect: false } }));
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.r === 8), 'the failure report');
    expect(r.events.some((e) => e.type === 'rollback' && e.version === target && e.why === 'rollback timer expired')).toBe(true);
    expect(r.device.image?.version).toBe('1.0.0+0');
    expect(accepted(r.server)).toContainEqual({ s: 0, r: 8, pkg: 'main', v: '1.0.0+0', t: target });
  });

  it('golioth: the rollback timer waits for the connection only — a self-test "hang" image is confirmed and keeps running past two timers', async () => {
    const r = await start({ transport: 'udp', agent: { profile: 'golioth', rollbackTimer_ms: 30_000 } });
    await offer(r.server, image('1.4.0', { behaviour: { selfTest: 'hang' } }));
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.s === 3 && x.r === 1), 'the success report');
    const t = r.device.clock.now();
    await waitFor(() => r.device.clock.now() - t >= 2 * 30_000, 'two rollback timers');
    expect(r.device.image?.version).toBe('1.4.0+0'); // a hanging self-test is never run under golioth
    expect(r.events.some((e) => e.type === 'rollback')).toBe(false);
  });
});
