/**
 * A whole OTA update through the chaos proxy, as a scenario runs it: the embedded server over
 * DTLS, one proxy per device (labelled with the device's identity), an nrf52840 device running the
 * agent, one ScaledClock(0.01) for all. Under 20 % loss both ways, and with a 60 s blackhole and a
 * NAT rebinding in the middle of the download, the device still ends confirmed on the new image.
 */
import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/agent/index.js';
import { ScaledClock } from '../../src/clock.js';
import { Device } from '../../src/device/index.js';
import { ChaosProxy } from '../../src/net/proxy/index.js';
import type { ChaosSchedule } from '../../src/net/proxy/index.js';
import { UpdateServer } from '../../src/server/index.js';
import { DEVICE, accepted, image, offer, rig, waitFor } from '../agent/helpers.js';
import { onCleanup } from './helpers.js';

async function otaThrough(schedule: ChaosSchedule, seed: number, atBlock?: (block: number, proxy: ChaosProxy) => void): Promise<{ device: Device; proxy: ChaosProxy; events: AgentEvent[]; server: UpdateServer }> {
  const clock = new ScaledClock(0.01);
  const server = await UpdateServer.start({ port: null, dtlsPort: 0, adminPort: null, clock, devices: [DEVICE], offerNewest: false });
  onCleanup(() => server.close());
  const proxy = await ChaosProxy.start({ seed, clock, label: DEVICE.identity, schedule, target: { host: '127.0.0.1', port: server.addresses().dtls!.port } });
  onCleanup(() => proxy.close());
  const events: AgentEvent[] = [];
  const { device } = await rig({
    transport: 'dtls',
    server,
    clock,
    port: proxy.address.port,
    agent: {
      seed,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'block' && atBlock) atBlock(e.block, proxy);
      },
    },
  });
  onCleanup(() => device.powerOff());
  await offer(server, image('1.1.0'));
  device.powerOn();
  await waitFor(() => accepted(server).some((x) => x?.s === 3 && x.r === 1), 'a success report', 90_000);
  return { device, proxy, events, server };
}

describe('a whole OTA update through the chaos proxy (DTLS)', () => {
  it('20 % loss both ways: the device ends confirmed on the new image', async () => {
    const { device, proxy } = await otaThrough({ loss: 0.2 }, 5);
    expect(device.image?.version).toBe('1.1.0+0');
    expect(proxy.stats().faults.loss).toBeGreaterThan(10);
    expect(proxy.faults.every((f) => f.flow === DEVICE.identity)).toBe(true);
  });

  it('a 60 s blackhole and a NAT rebinding in the middle of the download: still confirmed on the new image', async () => {
    let armed = false;
    const { device, proxy } = await otaThrough({ loss: 0.05 }, 6, (block, p) => {
      if (block === 8 && !armed) {
        armed = true;
        p.blackhole(60_000);
        p.rebind();
      }
    });
    expect(armed).toBe(true);
    expect(device.image?.version).toBe('1.1.0+0');
    expect(proxy.stats().faults.blackhole).toBeGreaterThan(0);
    expect(proxy.stats().rebinds).toBeGreaterThanOrEqual(1);
  });
});
