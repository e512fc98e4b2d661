/**
 * Observe re-registration and the polling fallback, over real sockets (127.0.0.1, port 0, clock
 * 1:100). After the server lost the DTLS session, after an embedded-server restart on the same
 * port, and after the device's source port changed (NAT rebinding), the agent registers its
 * Observe of /.u/desired again and still gets the next release. When notifications stop, the
 * ota-sim profile polls and gets the release; the golioth profile does not poll.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UpdateServer } from '../../src/server/index.js';
import { DEVICE, accepted, image, offer, rigsClosedAfterEach, waitFor } from './helpers.js';
import type { Rig } from './helpers.js';
import { NatRelay, dropNotifications } from './nat-relay.js';

const start = rigsClosedAfterEach();
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const POLL_MS = 20_000; // 200 ms of real time at 1:100

async function newServer(ports: { udp: number; dtls: number } = { udp: 0, dtls: 0 }, stateDir: string | null = null): Promise<UpdateServer> {
  const s = await UpdateServer.start({ port: ports.udp, dtlsPort: ports.dtls, adminPort: null, devices: [DEVICE], offerNewest: false, stateDir });
  return s;
}

function updatedTo(r: Rig, server: UpdateServer, version: string): boolean {
  return accepted(server).some((x) => x?.s === 3 && x.r === 1) && r.device.image?.version === version;
}

/** The agent has the answer to its registration (the server has it, and so has the device). */
function registered(r: Rig): boolean {
  return r.events.some((e) => e.type === 'manifest' && e.via === 'registration');
}

function statesSince(r: Rig, from: number, state: string): number {
  return r.events.slice(from).filter((e) => e.type === 'state' && e.state === state).length;
}

async function relayTo(port: number): Promise<NatRelay> {
  const relay = new NatRelay(port);
  await relay.start();
  cleanups.push(() => relay.close());
  return relay;
}

describe('the agent registers its Observe again', () => {
  it('DTLS: after the server silently lost the session, the agent re-handshakes, re-registers and gets the next release', async () => {
    const server = await newServer();
    cleanups.push(() => server.close());
    const r = await start({ transport: 'dtls', server, agent: { pollInterval_ms: POLL_MS } });
    r.device.powerOn();
    await waitFor(() => server.metrics().observers >= 1 && registered(r), 'the first registration');
    // the server forgets every DTLS session without a word (as after a crash of its session state)
    const dtls = (server as unknown as { dtls: { sessionTable: { entries(): [string, unknown][]; delete(k: string): boolean } } }).dtls;
    for (const [k] of dtls.sessionTable.entries()) dtls.sessionTable.delete(k);
    expect(server.metrics().activeSessions).toBe(0);
    const mark = r.events.length;
    await waitFor(() => server.metrics().activeSessions >= 1 && r.events.slice(mark).some((e) => e.type === 'manifest' && e.via === 'registration'), 'a new session and a new registration', 40_000);
    expect(statesSince(r, mark, 'connecting')).toBeGreaterThanOrEqual(1);
    await offer(server, image('1.1.0'));
    await waitFor(() => updatedTo(r, server, '1.1.0+0'), 'the update after the re-handshake', 40_000);
  });

  for (const transport of ['udp', 'dtls'] as const) {
    it(`${transport}: after the embedded server restarts on the same port with the same stateDir, the agent registers there and updates`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ota-observe-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const first = await newServer({ udp: 0, dtls: 0 }, dir);
      const ports = { udp: first.addresses().udp!.port, dtls: first.addresses().dtls!.port };
      const r = await start({ transport, server: first, agent: { pollInterval_ms: POLL_MS } });
      await offer(first, image('1.1.0'));
      r.device.powerOn();
      await waitFor(() => updatedTo(r, first, '1.1.0+0'), 'the first update');
      await waitFor(() => first.metrics().observers >= 1 && r.events.some((e, i) => i > r.events.findIndex((x) => x.type === 'confirmed') && e.type === 'manifest' && e.via === 'registration'), 'registered on 1.1.0');
      await first.close();
      const second = await newServer(ports, dir);
      cleanups.push(() => second.close());
      expect(second.model.listReleases()).toHaveLength(1); // the stateDir came back
      const mark = r.events.length;
      if (transport === 'udp') {
        // No connection to lose over UDP, and the new server knows no observation. A release of
        // another package changes the manifest; the next poll finds the change the old
        // registration missed, and the agent registers again (the component is not its own).
        const other = await second.model.addArtifact({ package: 'extra', version: '2.0.0', bytes: new Uint8Array(64).fill(7) });
        await second.model.createRelease({ artifacts: [other.id] });
        // (if a poll fell into the restart's downtime, the port was refused and the agent reconnected: a fresh registration)
        await waitFor(() => second.metrics().observers >= 1 && r.events.slice(mark).some((e) => e.type === 'reregistered' || (e.type === 'manifest' && e.via === 'registration')), 'a registration on the restarted server', 40_000);
      }
      // close_notify ended the DTLS session: the agent reconnects and registers on the new server
      await waitFor(() => second.metrics().observers >= 1, 'a registration on the restarted server', 40_000);
      await offer(second, image('1.2.0'));
      await waitFor(() => r.device.image?.version === '1.2.0+0' && accepted(second).some((x) => x?.s === 3 && x.r === 1 && x.v === '1.2.0+0'), 'the update from the restarted server', 40_000);
    });

    it(`${transport}: after NAT rebinding (a new source port) the agent still gets the next release`, async () => {
      const server = await newServer();
      cleanups.push(() => server.close());
      const relay = await relayTo(transport === 'udp' ? server.addresses().udp!.port : server.addresses().dtls!.port);
      const r = await start({ transport, server, agent: { pollInterval_ms: POLL_MS, server: { kind: transport, host: '127.0.0.1', port: relay.port, identity: DEVICE.identity, psk: DEVICE.key } } });
      r.device.powerOn();
      await waitFor(() => server.metrics().observers >= 1 && registered(r), 'the first registration');
      const mark = r.events.length;
      relay.rebind();
      if (transport === 'dtls') {
        // the server has no session for the new address: the next poll goes unanswered, the agent re-handshakes
        await waitFor(() => statesSince(r, mark, 'connecting') >= 1 && r.events.slice(mark).some((e) => e.type === 'manifest' && e.via === 'registration'), 'a re-handshake and a new registration', 40_000);
      } else {
        // The server answers the new port, but notifies the registration of the old one (lost).
        // A release of another package changes the manifest: the next poll (from the new port)
        // finds the change the registration missed, and the agent registers again.
        const other = await server.model.addArtifact({ package: 'extra', version: '2.0.0', bytes: new Uint8Array(64).fill(7) });
        await server.model.createRelease({ artifacts: [other.id] });
        await waitFor(() => r.events.slice(mark).some((e) => e.type === 'reregistered'), 're-registration after a poll', 40_000);
        expect(r.events.slice(mark).some((e) => e.type === 'manifest' && e.via === 'poll')).toBe(true);
        expect(statesSince(r, mark, 'connecting')).toBe(0); // on the same connection
      }
      await offer(server, image('1.1.0'));
      await waitFor(() => updatedTo(r, server, '1.1.0+0'), 'the update after the rebinding', 40_000);
      expect(relay.upstreamPorts.length).toBeGreaterThanOrEqual(2);
      expect(new Set(relay.upstreamPorts).size).toBe(relay.upstreamPorts.length);
    });
  }
});

describe('polling fallback when notifications stop (UDP, a relay drops every notification)', () => {
  it('ota-sim: the agent polls the manifest every pollInterval_ms and gets the release, and registers again', async () => {
    const server = await newServer();
    cleanups.push(() => server.close());
    const relay = await relayTo(server.addresses().udp!.port);
    relay.toClient = dropNotifications(0);
    const r = await start({ transport: 'udp', server, agent: { pollInterval_ms: POLL_MS, server: { kind: 'udp', host: '127.0.0.1', port: relay.port, identity: DEVICE.identity } } });
    r.device.powerOn();
    await waitFor(() => server.metrics().observers >= 1 && registered(r), 'the registration');
    await offer(server, image('1.1.0'));
    await waitFor(() => updatedTo(r, server, '1.1.0+0'), 'the update found by polling', 40_000);
    expect(relay.dropped).toBeGreaterThanOrEqual(1); // the notification of the release never arrived
    const viaPoll = r.events.filter((e) => e.type === 'manifest' && e.via === 'poll');
    expect(viaPoll.length).toBeGreaterThanOrEqual(1);
    expect(r.events.some((e) => e.type === 'manifest' && e.via === 'notification')).toBe(false);
  });

  it('golioth: the agent does not poll while its registration stands, so a lost notification is not made up for', async () => {
    const server = await newServer();
    cleanups.push(() => server.close());
    const relay = await relayTo(server.addresses().udp!.port);
    relay.toClient = dropNotifications(0);
    const r = await start({ transport: 'udp', server, agent: { profile: 'golioth', pollInterval_ms: POLL_MS, server: { kind: 'udp', host: '127.0.0.1', port: relay.port, identity: DEVICE.identity } } });
    r.device.powerOn();
    await waitFor(() => server.metrics().observers >= 1 && registered(r), 'the registration');
    const requests = (): number => server.metrics().requests.udp;
    const before = requests();
    await offer(server, image('1.1.0'));
    await waitFor(() => relay.dropped >= 1, 'the dropped notification');
    // ten poll intervals of simulated time pass: an ota-sim agent would have polled ten times
    const t0 = r.device.clock.now();
    await waitFor(() => r.device.clock.now() - t0 >= 10 * POLL_MS, 'ten poll intervals');
    expect(requests()).toBe(before);
    expect(r.events.some((e) => e.type === 'download-start')).toBe(false);
    expect(r.events.some((e) => e.type === 'manifest' && e.via === 'poll')).toBe(false);
  });
});
