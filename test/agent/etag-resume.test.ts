/**
 * The download's ETag across a power cut (ota-sim profile, UDP, 127.0.0.1, clock 1:100): the
 * progress record keeps the ETag the download adopted, and a resumed download that sees another
 * ETag starts over at block 0 instead of mixing blocks of two artifacts.
 *
 * The embedded server cannot replace an artifact under the same URI (artifacts are immutable:
 * ARTIFACT_EXISTS), and its ETag is the artifact's SHA-256 prefix. So "the artifact changed under
 * the same URI and manifest" is made by a relay that rewrites the ETag of every response after
 * the cut; and "the artifact of the same version was replaced" by restarting the server on the
 * same port with other bytes for main@1.1.0 (the manifest's hash changes too).
 */
import { describe, expect, it } from 'vitest';
import { OtaStateStore } from '../../src/device/index.js';
import { UpdateServer } from '../../src/server/index.js';
import { DEVICE, accepted, image, offer, rigsClosedAfterEach, waitFor } from './helpers.js';
import type { Rig } from './helpers.js';
import { NatRelay, replaceEtag } from './nat-relay.js';

const start = rigsClosedAfterEach();

/** The rig cuts the power right after block `block` (rig option cutAfterBlock); wait for it. */
async function cutAtBlock(r: Rig, block: number): Promise<void> {
  await waitFor(() => r.events.some((e) => e.type === 'block' && e.block >= block) && r.device.phase === 'off', `the cut after block ${block}`);
}

function downloadStarts(r: Rig, from: number): number[] {
  return r.events.slice(from).flatMap((e) => (e.type === 'download-start' ? [e.startBlock] : []));
}

describe('ETag across a resumed download', () => {
  it('the progress record holds the ETag the server sent', async () => {
    const r = await start({ transport: 'udp', cutAfterBlock: 12, agent: { persistEvery_blocks: 4 } });
    await offer(r.server, image('1.1.0'));
    const sha = r.server.model.listArtifacts()[0]!.sha256;
    r.device.powerOn();
    await cutAtBlock(r, 12);
    r.device.powerOn(); // the bootloader runs at once; the firmware later
    const d = OtaStateStore.open(r.flash.area('ota-state')).state.download;
    expect(d).not.toBeNull();
    expect(d!.nextBlock).toBeGreaterThan(0);
    expect(Buffer.from(d!.etag ?? new Uint8Array()).toString('hex')).toBe(sha.slice(0, 16));
  });

  it('a different ETag after the cut: the resume is abandoned and the download starts over at block 0, then verifies', async () => {
    const server = await UpdateServer.start({ port: 0, dtlsPort: null, adminPort: null, devices: [DEVICE], offerNewest: false });
    const relay = new NatRelay(server.addresses().udp!.port);
    await relay.start();
    try {
      const r = await start({ transport: 'udp', server, cutAfterBlock: 12, agent: { persistEvery_blocks: 4, server: { kind: 'udp', host: '127.0.0.1', port: relay.port, identity: DEVICE.identity } } });
      await offer(server, image('1.1.0'));
      r.device.powerOn();
      await cutAtBlock(r, 12);
      relay.toClient = replaceEtag(Buffer.from('0123456789abcdef', 'hex'));
      const mark = r.events.length;
      r.device.powerOn();
      await waitFor(() => accepted(server).some((x) => x?.s === 3 && x.r === 1), 'the update', 40_000);
      const starts = downloadStarts(r, mark);
      expect(starts.length).toBe(2);
      expect(starts[0]).toBeGreaterThan(0); // tried to resume with the recorded ETag
      expect(starts[1]).toBe(0); // the ETag changed: from the start
      expect(r.device.image?.version).toBe('1.1.0+0');
      expect(r.events.some((e) => e.type === 'refused')).toBe(false);
    } finally {
      relay.close();
      await server.close();
    }
  });

  it('the artifact of the same version replaced (server restarted on the same port with other bytes): starts over at 0 and verifies', async () => {
    const first = await UpdateServer.start({ port: 0, dtlsPort: null, adminPort: null, devices: [DEVICE], offerNewest: false });
    const port = first.addresses().udp!.port;
    const r = await start({ transport: 'udp', server: first, cutAfterBlock: 12, agent: { persistEvery_blocks: 4 } });
    await offer(first, image('1.1.0'));
    r.device.powerOn();
    await cutAtBlock(r, 12);
    await first.close();
    const second = await UpdateServer.start({ port, dtlsPort: null, adminPort: null, devices: [DEVICE], offerNewest: false });
    try {
      const other = image('1.1.0', { size: 20 * 1024 });
      await offer(second, other);
      expect(second.model.listArtifacts()[0]!.uri).toBe(first.model.listArtifacts()[0]!.uri); // the same URI
      const mark = r.events.length;
      r.device.powerOn();
      await waitFor(() => accepted(second).some((x) => x?.s === 3 && x.r === 1), 'the update', 40_000);
      expect(downloadStarts(r, mark)).toEqual([0]);
      expect(r.device.image?.version).toBe('1.1.0+0');
      expect(Buffer.from(r.flash.area('slot0').read(0, other.length)).equals(Buffer.from(other))).toBe(true);
    } finally {
      await second.close();
    }
  });
});
