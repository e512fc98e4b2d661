import { afterEach } from 'vitest';
/** Shared set-up for the agent tests: signed images, an nrf52840 device running the agent, the embedded server, waiting. */
import { programSlot } from '../../src/boot/program.js';
import { ScaledClock } from '../../src/clock.js';
import { agentFirmware } from '../../src/agent/index.js';
import type { AgentConfig, AgentEvent } from '../../src/agent/index.js';
import { Device } from '../../src/device/index.js';
import { Flash, loadBoard } from '../../src/flash/index.js';
import { behaviourTlv, boardTlv, createTrustStore, ed25519KeyPemFromSeed, parseSigningKeyPem, publicKeyOf, signImage } from '../../src/image/index.js';
import type { FirmwareBehaviour, SigningKey } from '../../src/image/index.js';
import { Prng } from '../../src/prng.js';
import { UpdateServer } from '../../src/server/index.js';
import type { ReportRecord } from '../../src/server/index.js';

export const board = loadBoard('nrf52840');
export const key: SigningKey = parseSigningKeyPem(ed25519KeyPemFromSeed(new Prng(1).bytes(32)));
export const otherKey: SigningKey = parseSigningKeyPem(ed25519KeyPemFromSeed(new Prng(2).bytes(32)));
export const DEVICE = { identity: 'dev-1', key: 'secret-1', board: 'nrf52840', tags: [] as string[] };

/** A 16 KiB signed image for nrf52840 (or another board), with a behaviour TLV. */
export function image(version: string, opts: { behaviour?: Partial<FirmwareBehaviour>; board?: string; signWith?: SigningKey; size?: number } = {}): Uint8Array {
  const payload = new Prng(version.length * 131 + version.charCodeAt(version.length - 1)).bytes(opts.size ?? 16 * 1024);
  return signImage(payload, {
    key: opts.signWith ?? key,
    headerSize_bytes: 0x200,
    padHeader: true,
    slotSize_bytes: board.partitions.slot0.size,
    align: 4,
    version,
    customTlvs: [behaviourTlv(opts.behaviour ?? {}), boardTlv(opts.board ?? 'nrf52840')],
  });
}

export interface Rig {
  server: UpdateServer;
  device: Device;
  flash: Flash;
  events: AgentEvent[];
  close(): Promise<void>;
}

/**
 * `cutAfterBlock`: cut the power once, right after the first block event with that number or
 * higher (on the next turn of the event loop: between two blocks, outside the firmware's stack).
 * `port`: connect there instead of the server's own port (a relay or chaos proxy in front of it);
 * `clock`: the device clock (default ScaledClock(0.01)), to share with a server or proxy.
 */
export async function rig(opts: { transport: 'udp' | 'dtls'; initial?: Uint8Array; agent?: Partial<AgentConfig>; flash?: Flash; server?: UpdateServer; cutAfterBlock?: number; port?: number; clock?: ScaledClock }): Promise<Rig> {
  const server = opts.server ?? (await UpdateServer.start({ port: 0, dtlsPort: 0, adminPort: null, devices: [DEVICE], offerNewest: false }));
  const addr = server.addresses();
  const flash = opts.flash ?? Flash.create(board);
  if (!opts.flash) programSlot(flash, 'slot0', opts.initial ?? image('1.0.0'), 'confirm', 'swap-move');
  const clock = opts.clock ?? new ScaledClock(0.01);
  const events: AgentEvent[] = [];
  const port = opts.port ?? (opts.transport === 'udp' ? addr.udp!.port : addr.dtls!.port);
  let cutArmed = opts.cutAfterBlock !== undefined;
  const deviceRef: { d: Device | null } = { d: null };
  const device = new Device({
    flash,
    strategy: 'swap-move',
    trustedKeys: [publicKeyOf(key)],
    clock,
    firmware: agentFirmware({
      server: { kind: opts.transport, host: '127.0.0.1', port, identity: DEVICE.identity, psk: DEVICE.key },
      board: 'nrf52840',
      strategy: 'swap-move',
      trust: createTrustStore([publicKeyOf(key)]),
      seed: 7,
      blockSize_bytes: 512,
      window: 4,
      rollbackTimer_ms: 300_000,
      coapTiming: { ackTimeout_ms: 2000, ackRandomFactor: 1.5, maxRetransmit: 4, maxLatency_ms: 1000, processingDelay_ms: 500 },
      onEvent: (e) => {
        events.push(e);
        if (cutArmed && e.type === 'block' && e.block >= (opts.cutAfterBlock ?? 0)) {
          cutArmed = false;
          setImmediate(() => deviceRef.d?.powerCut());
        }
      },
      ...opts.agent,
    }),
  });
  deviceRef.d = device;
  return {
    server,
    device,
    flash,
    events,
    async close() {
      device.powerOff();
      if (!opts.server) await server.close();
    },
  };
}

/** Wait (real time, polling) until `pred` holds; throws with `what` after `timeout_ms`. */
export async function waitFor(pred: () => boolean, what: string, timeout_ms = 20_000): Promise<void> {
  const start = performance.now();
  while (!pred()) {
    if (performance.now() - start > timeout_ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function accepted(server: UpdateServer, identity = DEVICE.identity): ReportRecord['report'][] {
  try {
    return server.model.reports(identity).history.map((h) => h.report).filter((r) => r !== null);
  } catch {
    return [];
  }
}

export async function offer(server: UpdateServer, bytes: Uint8Array): Promise<string> {
  const a = await server.model.addArtifact({ package: 'main', bytes });
  await server.model.createRelease({ artifacts: [a.id] });
  return a.version;
}

/** A `start(options)` that makes a rig and closes every rig it made after each test. */
export function rigsClosedAfterEach(): (o: Parameters<typeof rig>[0]) => Promise<Rig> {
  let rigs: Rig[] = [];
  afterEach(async () => {
    for (const r of rigs) await r.close();
    rigs = [];
  });
  return async (o) => {
    const r = await rig(o);
    rigs.push(r);
    return r;
  };
}
