/**
 * The download is flash-bounded: with window W and block size B the agent writes each block to
 * slot1 as it arrives, never holding more than W blocks (W × B bytes) in RAM. A UDP relay between
 * the device and the embedded server records every Block2 response the device receives, and the
 * device's flash records every slot1 write, in one shared log; the log shows writes interleaved
 * with receives (not all receives first), at most W received blocks not yet written at any point,
 * and the download's own high-water mark ≤ W × B.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { parse } from 'coap-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { agentFirmware } from '../../src/agent/index.js';
import type { AgentEvent } from '../../src/agent/index.js';
import { programSlot } from '../../src/boot/program.js';
import { ScaledClock } from '../../src/clock.js';
import { Device } from '../../src/device/index.js';
import { Flash } from '../../src/flash/index.js';
import { createTrustStore, publicKeyOf } from '../../src/image/index.js';
import { UpdateServer } from '../../src/server/index.js';
import { DEVICE, accepted, board, image, key, offer, waitFor } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

type LogEntry = { kind: 'rx'; block: number } | { kind: 'write'; block: number };

async function bound(s: Socket): Promise<number> {
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s.address().port;
}

/** A UDP relay device ⇄ server that logs the Block2 number of every response going to the device. */
async function relay(serverPort: number, log: LogEntry[]): Promise<number> {
  const front = createSocket('udp4');
  const back = createSocket('udp4');
  const frontPort = await bound(front);
  await bound(back);
  let device: { port: number; address: string } | null = null;
  front.on('message', (msg, rinfo) => {
    device = { port: rinfo.port, address: rinfo.address };
    back.send(msg, serverPort, '127.0.0.1');
  });
  back.on('message', (msg) => {
    try {
      const p = parse(msg);
      const b2 = p.options.find((o) => o.name === 'Block2');
      if (b2 && p.payload.length > 0) log.push({ kind: 'rx', block: b2.value.readUIntBE(0, b2.value.length) >> 4 });
    } catch {
      // not CoAP: relay it anyway
    }
    if (device) front.send(msg, device.port, device.address);
  });
  cleanups.push(() => {
    front.close();
    back.close();
  });
  return frontPort;
}

describe('flash writes interleave with network receives; RAM holds at most window × block size', () => {
  for (const window of [1, 4]) {
    it(`window ${window}, block 256`, async () => {
      const blockSize = 256;
      const server = await UpdateServer.start({ port: 0, dtlsPort: null, adminPort: null, devices: [DEVICE], offerNewest: false });
      cleanups.push(() => server.close());
      const log: LogEntry[] = [];
      const port = await relay(server.addresses().udp!.port, log);
      const flash = Flash.create(board);
      programSlot(flash, 'slot0', image('1.0.0'), 'confirm', 'swap-move');
      const slot1 = board.partitions.slot1;
      const origWrite = flash.write.bind(flash);
      flash.write = (deviceId: string, addr: number, data: Uint8Array): void => {
        origWrite(deviceId, addr, data);
        if (deviceId === slot1.device && addr >= slot1.offset && addr < slot1.offset + slot1.size && data.length === blockSize) {
          log.push({ kind: 'write', block: (addr - slot1.offset) / blockSize });
        }
      };
      const events: AgentEvent[] = [];
      const device = new Device({
        flash,
        strategy: 'swap-move',
        trustedKeys: [publicKeyOf(key)],
        clock: new ScaledClock(0.01),
        firmware: agentFirmware({
          server: { kind: 'udp', host: '127.0.0.1', port, identity: DEVICE.identity },
          board: 'nrf52840',
          strategy: 'swap-move',
          trust: createTrustStore([publicKeyOf(key)]),
          seed: 11,
          blockSize_bytes: blockSize,
          window,
          coapTiming: { ackTimeout_ms: 2000, ackRandomFactor: 1.5, maxRetransmit: 4, maxLatency_ms: 1000, processingDelay_ms: 500 },
          onEvent: (e) => events.push(e),
        }),
      });
      cleanups.push(() => device.powerOff());
      const bytes = image('1.1.0');
      await offer(server, bytes);
      device.powerOn();
      await waitFor(() => accepted(server).some((x) => x?.s === 3 && x.r === 1), 'a success report');
      expect(device.image?.version).toBe('1.1.0+0');

      // the download's own RAM high-water mark
      const done = events.filter((e) => e.type === 'download-done');
      expect(done).toHaveLength(1);
      const d = done[0]!.type === 'download-done' ? done[0]! : null;
      const blocks = Math.ceil(bytes.length / blockSize);
      expect(d?.blocks).toBe(blocks);
      expect(d!.highWater_bytes).toBeGreaterThan(0);
      expect(d!.highWater_bytes).toBeLessThanOrEqual(window * blockSize);

      // the shared log: block responses received vs full blocks written to slot1 (the last, short block is padded)
      const received = new Set<number>();
      const written = new Set<number>();
      let maxHeld = 0;
      let firstWrite = -1;
      let lastRx = -1;
      log.forEach((e, i) => {
        if (e.kind === 'rx') {
          received.add(e.block);
          lastRx = i;
        } else {
          expect(received.has(e.block)).toBe(true); // nothing is written before it arrived
          written.add(e.block);
          if (firstWrite < 0) firstWrite = i;
        }
        maxHeld = Math.max(maxHeld, [...received].filter((b) => !written.has(b)).length);
      });
      expect(received.size).toBe(blocks);
      expect(written.size).toBeGreaterThanOrEqual(blocks - 1);
      // interleaved: the first block is on flash long before the last one arrives
      expect(firstWrite).toBeLessThan(lastRx);
      expect(log.slice(0, firstWrite).filter((e) => e.kind === 'rx').length).toBeLessThanOrEqual(window);
      expect(maxHeld).toBeLessThanOrEqual(window);
    });
  }
});
