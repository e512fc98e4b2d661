/**
 * Pacing of power-ons (src/fleet/pace.ts): a fleet starts devices only while neither its own
 * event loop nor the server's lags; a blocked loop shows as lag.
 */
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceSlice } from '../../src/fleet/devices.js';
import { LagMeter } from '../../src/fleet/pace.js';
import { deviceSpec } from '../../src/fleet/plan.js';
import type { SliceConfig } from '../../src/fleet/types.js';
import { fleetKey } from '../../src/fleet/fleet.js';
import { boardTlv, publicKeyOf, publicKeyToPem, signImage } from '../../src/image/index.js';
import { loadBoard } from '../../src/flash/index.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function until(cond: () => boolean, what: string, limit_ms = 20_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 20) {
    if (waited > limit_ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('fleet pacing', () => {
  it('a blocked event loop shows as lag', async () => {
    const meter = new LagMeter();
    cleanups.push(() => meter.stop());
    await new Promise((r) => setTimeout(r, 60));
    const end = performance.now() + 300;
    while (performance.now() < end) {
      // block the loop, as an overloaded server would
    }
    await new Promise((r) => setTimeout(r, 30));
    expect(meter.lag_ms).toBeGreaterThan(25);
  });

  it('powers nothing on while the server lags, and the rest once it catches up', async () => {
    // a silent UDP peer on loopback: the devices' handshakes go nowhere, which is fine here
    const peer = createSocket('udp4');
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
    cleanups.push(() => peer.close());
    const board = loadBoard('nrf52840');
    const key = fleetKey(1);
    const initialImage = signImage(new Uint8Array(4096).fill(1), { key, headerSize_bytes: 0x200, padHeader: true, slotSize_bytes: board.partitions.slot0.size, align: 4, version: '1.0.0', customTlvs: [boardTlv('nrf52840')] });
    const config: SliceConfig = {
      server: { kind: 'dtls', host: '127.0.0.1', port: peer.address().port },
      board: 'nrf52840',
      strategy: 'swap-move',
      initialImage,
      targetVersion: '1.1.0+0',
      trustPems: [publicKeyToPem(publicKeyOf(key))],
      timeScale: 0.04,
      blockSize_bytes: 1024,
      window: 4,
      netTimeoutFloor_wallMs: 1000,
      pollInterval_ms: 60_000,
      powerOff_ms: 2000,
      startBatch: 1,
      startTick_wallMs: 20,
      maxLag_wallMs: 25,
      shareSectors: true,
      fleetStart_epochMs: performance.timeOrigin + performance.now(),
    };
    const specs = Array.from({ length: 5 }, (_, index) => deviceSpec({ seed: 1, index, prefix: 'pace-', powerCutRate: 0, cutWindow_ops: 100 }));
    const slice = new DeviceSlice(config, specs, () => undefined);
    cleanups.push(() => slice.stop());
    slice.setServerLag(1000);
    slice.start();
    await new Promise((r) => setTimeout(r, 300));
    // the first device always starts; the others wait for the server
    expect(slice.progress().poweredOn).toBe(1);
    expect(slice.progress().pausedTicks).toBeGreaterThan(3);
    slice.setServerLag(0);
    await until(() => slice.progress().poweredOn === 5, 'all five powered on');
    expect(slice.progress().states['off'] ?? 0).toBe(0);
  });
});
