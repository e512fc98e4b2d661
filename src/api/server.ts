/**
 * API facade, the embedded update server: `startServer(options)` starts an UpdateServer on
 * loopback (CoAP over DTLS with PSKs and plain CoAP over UDP, port 0 by default) and returns a
 * small handle: URLs, artifacts (bytes or a file), releases, rollback, devices, close. The
 * UpdateServer itself stays reachable as `handle.server` for everything else.
 */
import { readFileSync } from 'node:fs';
import { ScaledClock } from '../clock.js';
import type { Clock } from '../clock.js';
import { EnvironmentError, InputError } from '../errors.js';
import { UpdateServer } from '../server/index.js';
import type { ArtifactInfo, DeviceInfo, ReleaseInfo, ReportRecord, StateReport, UpdateServerOptions } from '../server/index.js';

export interface ServerDevice {
  identity: string;
  /** The PSK (ASCII); null for a device known only over plain UDP. */
  psk: string | null;
  board?: string | null;
  tags?: string[];
}

export interface StartServerOptions {
  /** Which listeners to open (default 'both'): 'dtls' is CoAP over DTLS 1.2 PSK, 'udp' plain CoAP. */
  transport?: 'dtls' | 'udp' | 'both';
  /** The server's clock (default: a ScaledClock of `timeScale`). Give devices the same clock. */
  clock?: Clock;
  /** Wall time per simulated time when no clock is given (default 1: real time; 0.01: 100× faster). */
  timeScale?: number;
  /** PSK devices known from the start. */
  devices?: ServerDevice[];
  /** `identity,key[,board[,tag;tag]]` lines (the CLI's --psk-file). */
  pskFile?: string;
  /** Persist artifacts, releases and reports here (restart with the same dir to get them back). */
  stateDir?: string;
  /** Also serve the admin HTTP API on this port (0: a free one; default: none). */
  adminPort?: number;
  /**
   * With no release yet, offer the newest artifact to every device (release `initial`).
   * Default false: nothing is offered until createRelease (explicit is easier to test).
   */
  offerNewest?: boolean;
  /** Any further UpdateServer option (limits, block size, DTLS tuning ...). */
  advanced?: Omit<UpdateServerOptions, 'clock' | 'port' | 'dtlsPort' | 'adminPort' | 'devices' | 'pskFile' | 'stateDir' | 'offerNewest'>;
}

export interface AddArtifactOptions {
  /** Firmware package (default 'main', the one the agent updates). */
  package?: string;
  /** Default: the version in the image header. */
  version?: string;
  /** Default: the image's board TLV, else any board. */
  board?: string | null;
}

export interface CreateReleaseOptions {
  /** Release id (default r1, r2, ...). */
  id?: string;
  /** Artifacts (ids such as `main@1.1.0+0`, or what addArtifact returned). */
  artifacts: (string | ArtifactInfo)[];
  /** Share of the targeted devices that get it, 0..100 (default 100). */
  rolloutPercent?: number;
  /** Only devices with at least one of these tags. */
  tags?: string[];
  /** Only these boards. */
  boards?: string[];
  /** Only these device identities. */
  devices?: string[];
  /** Active at once (default true); false leaves a draft for `activate`. */
  activate?: boolean;
}

/** A device the server knows, with what it last reported. */
export interface ServerDeviceStatus {
  identity: string;
  board: string | null;
  tags: string[];
  /** The last accepted report (null: none yet). */
  lastReport: StateReport | null;
  /** Reports received (accepted or not). */
  reports: number;
  /** Simulated ms (server clock) of the last request, null if never seen. */
  lastSeen_ms: number | null;
  /** The version the server wants this device to run (package main), null when nothing is offered. */
  desiredVersion: string | null;
}

export interface ServerHandle {
  /** The URL devices should use: `coaps://127.0.0.1:PORT` (DTLS PSK) when DTLS listens, else `coap://`. */
  readonly url: string;
  /** Every listener: `coaps` DTLS PSK, `coap` plain UDP (devices name themselves with ?id=), `admin` HTTP. */
  readonly urls: { readonly coaps: string | null; readonly coap: string | null; readonly admin: string | null };
  readonly clock: Clock;
  /** The UpdateServer underneath (metrics, model, everything not wrapped here). */
  readonly server: UpdateServer;
  readonly closed: boolean;
  /** Upload a signed image (bytes or a file path) as an artifact. */
  addArtifact(image: Uint8Array | string, options?: AddArtifactOptions): Promise<ArtifactInfo>;
  createRelease(options: CreateReleaseOptions): Promise<ReleaseInfo>;
  activate(releaseId: string): Promise<ReleaseInfo>;
  setRollout(releaseId: string, percent: number): Promise<ReleaseInfo>;
  /** Roll back a release (default: the newest active one); the previous active one is offered again. */
  rollback(releaseId?: string): Promise<{ rolledBack: ReleaseInfo; restored: ReleaseInfo | null }>;
  /** Register (or update) a PSK device. */
  addDevice(device: ServerDevice): Promise<DeviceInfo>;
  devices(): ServerDeviceStatus[];
  /** What the server recorded from one device, oldest first (UNKNOWN_DEVICE if it does not know it). */
  reports(identity: string): ReportRecord[];
  close(): Promise<void>;
}

function checkPort(what: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 65535)) throw new InputError('BAD_ARGUMENT', `startServer: ${what} must be a port 0..65535, got ${v}`);
}

/** Start the embedded update server on 127.0.0.1 (free ports unless told otherwise). */
export async function startServer(options: StartServerOptions = {}): Promise<ServerHandle> {
  const transport = options.transport ?? 'both';
  if (!['dtls', 'udp', 'both'].includes(transport)) throw new InputError('BAD_ARGUMENT', `startServer: transport must be dtls, udp or both, got ${JSON.stringify(transport)}`);
  checkPort('adminPort', options.adminPort);
  const scale = options.timeScale ?? 1;
  if (!(typeof scale === 'number' && scale > 0 && Number.isFinite(scale))) throw new InputError('BAD_TIME_SCALE', `startServer: timeScale must be a number > 0, got ${String(scale)}`);
  const clock = options.clock ?? new ScaledClock(scale);
  const devices: DeviceInfo[] = (options.devices ?? []).map((d, i) => {
    if (typeof d.identity !== 'string' || d.identity === '') throw new InputError('BAD_ARGUMENT', `startServer: devices[${i}].identity must be a non-empty string`);
    return { identity: d.identity, key: d.psk, board: d.board ?? null, tags: d.tags ?? [] };
  });
  const server = await UpdateServer.start({
    ...options.advanced,
    clock,
    port: transport === 'dtls' ? null : 0,
    dtlsPort: transport === 'udp' ? null : 0,
    adminPort: options.adminPort ?? null,
    devices,
    pskFile: options.pskFile ?? null,
    stateDir: options.stateDir ?? null,
    offerNewest: options.offerNewest ?? false,
  });
  // Registration through the model checks each field (and journals it like any other device).
  try {
    for (const d of devices) await server.model.addDevice(d);
  } catch (e) {
    await server.close();
    throw e;
  }
  const addr = server.addresses();
  const host = '127.0.0.1';
  const urls = {
    coaps: addr.dtls ? `coaps://${host}:${addr.dtls.port}` : null,
    coap: addr.udp ? `coap://${host}:${addr.udp.port}` : null,
    admin: addr.admin ? `http://${host}:${addr.admin.port}` : null,
  };
  let closed = false;
  const open = (what: string): UpdateServer => {
    if (closed) throw new EnvironmentError('SERVER_CLOSED', `${what}: the server was closed`);
    return server;
  };
  const handle: ServerHandle = {
    url: urls.coaps ?? urls.coap!,
    urls,
    clock,
    server,
    get closed() {
      return closed;
    },
    async addArtifact(image, o = {}) {
      const s = open('addArtifact');
      let bytes: Uint8Array;
      if (typeof image === 'string') {
        try {
          bytes = readFileSync(image);
        } catch (e) {
          throw new InputError('NO_FILE', `addArtifact: cannot read ${image} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
        }
      } else if (image instanceof Uint8Array) bytes = image;
      else throw new InputError('BAD_ARGUMENT', 'addArtifact: expected the image bytes (Uint8Array) or a file path');
      return s.model.addArtifact({ package: o.package ?? 'main', bytes, ...(o.version !== undefined ? { version: o.version } : {}), ...(o.board !== undefined ? { board: o.board } : {}) });
    },
    async createRelease(o) {
      const s = open('createRelease');
      if (typeof o !== 'object' || o === null || !Array.isArray(o.artifacts)) throw new InputError('BAD_ARGUMENT', 'createRelease: expected { artifacts: [...] }');
      return s.model.createRelease({
        artifacts: o.artifacts.map((a) => (typeof a === 'string' ? a : a.id)),
        ...(o.id !== undefined ? { id: o.id } : {}),
        ...(o.rolloutPercent !== undefined ? { rolloutPercent: o.rolloutPercent } : {}),
        ...(o.tags !== undefined ? { tags: o.tags } : {}),
        ...(o.boards !== undefined ? { boards: o.boards } : {}),
        ...(o.devices !== undefined ? { devices: o.devices } : {}),
        ...(o.activate !== undefined ? { activate: o.activate } : {}),
      });
    },
    activate: async (id) => open('activate').model.activate(id),
    setRollout: async (id, percent) => open('setRollout').model.setRollout(id, percent),
    rollback: async (id) => open('rollback').model.rollback(id),
    async addDevice(d) {
      return open('addDevice').model.addDevice({ identity: d.identity, key: d.psk, board: d.board ?? null, tags: d.tags ?? [] });
    },
    devices() {
      const s = open('devices');
      return s.model.listDevices().map((d) => {
        const r = s.model.reports(d.identity);
        const accepted = r.history.filter((h) => h.report !== null);
        const main = s.model.desiredFor(d.identity).components.find((c) => c.package === 'main');
        return { identity: d.identity, board: d.board, tags: [...d.tags], lastReport: accepted[accepted.length - 1]?.report ?? null, reports: r.total, lastSeen_ms: r.lastSeen_ms, desiredVersion: main?.version ?? null };
      });
    },
    reports: (identity) => open('reports').model.reports(identity).history,
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
    },
  };
  return handle;
}

/** Whether `x` is a handle made by startServer (duck-typed: it crosses package copies). */
export function isServerHandle(x: unknown): x is ServerHandle {
  return typeof x === 'object' && x !== null && 'server' in x && (x as { server: unknown }).server instanceof UpdateServer && 'urls' in x;
}
