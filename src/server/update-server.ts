/**
 * The embedded update server: node-coap's server on a plain UDP socket and on the DTLS server
 * (through DtlsCoapSocket) with the same resources, the model (optionally persisted in a state
 * dir), the Observe registry, and the admin HTTP API. Starts in-process for scenarios and fleets
 * (`UpdateServer.start`) and standalone (`ota-sim serve`). Loopback only.
 *
 * Everything of ours (DTLS, deduplication, model timestamps) runs on the injected clock. node-coap
 * keeps its own timers (CON retransmission, exchange lifetime, reply cache) on real time; they are
 * scaled by the clock's scale (coap-timing.ts), so with a ScaledClock they keep in step, but a
 * ManualClock does not drive them.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import coap, { ObserveWriteStream } from 'coap';
import type { IncomingMessage, OutgoingMessage, Server as CoapServer } from 'coap';
import { ScaledClock } from '../clock.js';
import type { Clock } from '../clock.js';
import { DtlsCoapSocket, DtlsServer } from '../dtls/index.js';
import type { DtlsServerOptions } from '../dtls/index.js';
import { EnvironmentError, InputError } from '../errors.js';
import { AdminApi } from './admin.js';
import { dtlsFastPath } from './fast-path.js';
import { scanArtifactDir } from './artifact-dir.js';
import { CoapResources } from './coap-resources.js';
import { withCoapTimeScale } from './coap-timing.js';
import { gateSends, notificationToken } from './notification-gate.js';
import type { Requester } from './coap-resources.js';
import { emptyMetrics } from './metrics.js';
import type { ServerMetrics } from './metrics.js';
import { UpdateModel } from './model.js';
import type { ModelLimits } from './model.js';
import { ObserverRegistry } from './observers.js';
import { readPskFile } from './psk-file.js';
import { StateDir } from './state-dir.js';
import type { DeviceInfo } from './types.js';

export interface UpdateServerOptions {
  /** Loopback only (default 127.0.0.1). */
  host?: string;
  /** CoAP over UDP; 0 picks a free port; null: no UDP listener (default 0). */
  port?: number | null;
  /** CoAP over DTLS; 0 picks a free port; null: no DTLS listener (default 0). */
  dtlsPort?: number | null;
  /** Admin HTTP API; 0 picks a free port; null: none (default null). */
  adminPort?: number | null;
  clock?: Clock;
  /** Persist state here (journal + artifact files); restart with the same dir to get it back. */
  stateDir?: string | null;
  /** `identity,key[,board[,tag;tag]]` lines. */
  pskFile?: string | null;
  /** Devices to register (in addition to the PSK file), e.g. by a scenario. */
  devices?: DeviceInfo[];
  /** Signed images to load as artifacts of package `main`. */
  artifactsDir?: string | null;
  /**
   * When no release exists yet, create release `initial` offering the newest `main` artifact to
   * every device (default true).
   */
  offerNewest?: boolean;
  /** Register an unknown `?id=` on first use over plain UDP (default true). */
  udpAutoRegister?: boolean;
  /** Block size for an artifact request without Block2 (16..1024, default 1024). */
  defaultBlock_bytes?: number;
  limits?: Partial<ModelLimits>;
  /** Observations at most, over all devices (default 20 000). */
  maxObservers?: number;
  /** Observations per device at most; a new one ends the oldest (default 2). */
  maxObserversPerDevice?: number;
  /**
   * Multiply node-coap's message-layer times (ACK timeout, EXCHANGE_LIFETIME, reply cache) by this
   * (default: the clock's scale for a ScaledClock, else 1). See coap-timing.ts.
   */
  coapTimeScale?: number;
  dtls?: Omit<Partial<DtlsServerOptions>, 'psk' | 'host' | 'port' | 'clock'>;
  /**
   * Answer plain artifact Block2 GETs and manifest polls over DTLS without node-coap (fast-path.ts:
   * the same bytes, a fraction of the CPU). Default true; false sends every request through node-coap.
   */
  artifactFastPath?: boolean;
}

export interface ServerAddresses {
  udp: AddressInfo | null;
  dtls: AddressInfo | null;
  admin: AddressInfo | null;
}

function isLoopback(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export class UpdateServer {
  readonly model: UpdateModel;
  /** What loading --artifacts skipped, and a torn journal line dropped at start. */
  readonly notes: string[] = [];
  private readonly counters: ServerMetrics = emptyMetrics();
  private readonly defaultBlock_bytes: number;
  private readonly observers: ObserverRegistry;
  private readonly resources: CoapResources;
  private udpSocket: Socket | null = null;
  private udpCoap: CoapServer | null = null;
  private dtls: DtlsServer | null = null;
  private dtlsSocket: DtlsCoapSocket | null = null;
  private dtlsCoap: CoapServer | null = null;
  private admin: AdminApi | null = null;
  private closed = false;
  private readonly coapTimeScale: number;
  /** Requests being handled (async: a state-dir write), by transport, endpoint and Message ID. */
  private readonly inFlight = new Set<string>();
  private readonly onChanged = (): void => {
    this.counters.notifications += this.observers.notify((device) => this.model.manifestFor(device));
  };

  private constructor(
    model: UpdateModel,
    private readonly stateDir: StateDir | null,
    private readonly clock: Clock,
    options: UpdateServerOptions,
  ) {
    this.model = model;
    this.coapTimeScale = options.coapTimeScale ?? (clock instanceof ScaledClock ? clock.scale : 1);
    if (!(this.coapTimeScale > 0 && Number.isFinite(this.coapTimeScale))) throw new InputError('BAD_TIME_SCALE', `coapTimeScale must be > 0, got ${this.coapTimeScale}`);
    this.observers = new ObserverRegistry(options.maxObservers ?? 20_000, options.maxObserversPerDevice ?? 2);
    const block = options.defaultBlock_bytes ?? 1024;
    this.defaultBlock_bytes = block;
    if (![16, 32, 64, 128, 256, 512, 1024].includes(block)) throw new InputError('BAD_BLOCK_SIZE', `defaultBlock_bytes must be a power of two 16..1024, got ${block}`);
    this.resources = new CoapResources({
      model,
      observers: this.observers,
      metrics: this.counters,
      defaultBlock_bytes: block,
      udpAutoRegister: options.udpAutoRegister ?? true,
    });
    model.on('changed', this.onChanged);
  }

  /** Load state, artifacts and devices, then listen on every transport asked for. */
  static async start(options: UpdateServerOptions = {}): Promise<UpdateServer> {
    const host = options.host ?? '127.0.0.1';
    if (!isLoopback(host)) throw new InputError('BAD_HOST', `--host ${host}: the update server listens on loopback (127.0.0.0/8) only`);
    const clock = options.clock ?? new ScaledClock(1);
    let stateDir: StateDir | null = null;
    const notes: string[] = [];
    let model: UpdateModel;
    if (options.stateDir) {
      const opened = await StateDir.open(options.stateDir);
      stateDir = opened.stateDir;
      if (opened.droppedTornLine) notes.push(`${options.stateDir}: dropped a torn last journal line (a write interrupted before it was acknowledged)`);
      model = new UpdateModel(stateDir, { clock, limits: options.limits ?? {} });
      // Devices from the PSK file and options are not journaled: know them before the replay, or
      // the journal's reports from them would be dropped as reports from unknown devices.
      if (options.pskFile) model.loadDevices(readPskFile(options.pskFile));
      if (options.devices) model.loadDevices(options.devices);
      model.replay(opened.entries);
    } else {
      model = new UpdateModel(null, { clock, limits: options.limits ?? {} });
    }
    if (options.pskFile) model.loadDevices(readPskFile(options.pskFile));
    if (options.devices) model.loadDevices(options.devices);
    if (options.artifactsDir) {
      const { images, skipped } = scanArtifactDir(options.artifactsDir, model.limits.maxArtifact_bytes);
      for (const s of skipped) notes.push(`--artifacts: skipped ${s}`);
      for (const img of images) await model.addArtifact({ package: 'main', version: img.version, board: img.board, bytes: img.bytes });
    }
    if ((options.offerNewest ?? true) && model.listReleases().length === 0) {
      const newest = model.newestArtifact('main');
      if (newest) await model.createRelease({ id: 'initial', artifacts: [newest.id] });
    }
    const server = new UpdateServer(model, stateDir, clock, options);
    server.notes.push(...notes);
    try {
      await server.listen(host, options);
    } catch (e) {
      await server.close();
      throw e;
    }
    return server;
  }

  private async listen(host: string, options: UpdateServerOptions): Promise<void> {
    const port = options.port === undefined ? 0 : options.port;
    if (port !== null) {
      const socket = createSocket({ type: 'udp4' });
      await new Promise<void>((resolve, reject) => {
        socket.once('error', (e) => reject(new EnvironmentError('PORT_IN_USE', `cannot bind CoAP/UDP to ${host}:${port}: ${e.message}`)));
        socket.bind(port, host, () => resolve());
      });
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      this.udpSocket = socket;
      gateSends(socket, (data, p, address) => this.mayLeave('udp', data, p, address), () => this.counters.notificationsDropped++);
      const udpCoap = this.scaled(() => coap.createServer({ piggybackReplyMs: 50 }, (req, res) => this.onRequest('udp', req, res)));
      this.scaled(() => udpCoap.listen(socket));
      this.udpCoap = udpCoap;
    }
    const dtlsPort = options.dtlsPort === undefined ? 0 : options.dtlsPort;
    if (dtlsPort !== null) {
      const dtls = new DtlsServer({ ...options.dtls, host, port: dtlsPort, clock: this.clock, psk: (identity) => this.model.pskFor(identity.toString('utf8')) });
      try {
        await dtls.listen();
      } catch (e) {
        throw new EnvironmentError('PORT_IN_USE', e instanceof Error ? e.message : String(e));
      }
      dtls.on('error', () => {});
      dtls.on('session-closed', (session) => this.observers.dropSession(session.serial));
      this.dtls = dtls;
      const fastPath = options.artifactFastPath ?? true;
      const dtlsSocket = new DtlsCoapSocket(dtls, {
        clock: this.clock,
        ...(fastPath ? { intercept: dtlsFastPath({ model: this.model, observers: this.observers, counters: this.counters, defaultBlock_bytes: this.defaultBlock_bytes }) } : {}),
      });
      this.dtlsSocket = dtlsSocket;
      gateSends(dtlsSocket, (data, p, address) => this.mayLeave('dtls', data, p, address), () => this.counters.notificationsDropped++);
      const dtlsCoap = this.scaled(() => coap.createServer({ piggybackReplyMs: 50 }, (req, res) => this.onRequest('dtls', req, res)));
      this.scaled(() => dtlsCoap.listen(dtlsSocket));
      this.dtlsCoap = dtlsCoap;
    }
    const adminPort = options.adminPort ?? null;
    if (adminPort !== null) {
      this.admin = new AdminApi(this);
      await this.admin.listen(host, adminPort);
    }
  }

  private scaled<T>(fn: () => T): T {
    return withCoapTimeScale(this.coapTimeScale, fn);
  }

  /**
   * May this datagram leave? Everything but an Observe notification may; a notification only
   * while its observation is registered and, over DTLS, into the session it was registered on.
   */
  private mayLeave(transport: 'udp' | 'dtls', data: Buffer, port: number, address: string): boolean {
    const token = notificationToken(data);
    if (token === null) return true;
    const o = this.observers.get(`${transport}|${address}:${port}|${token.toString('hex')}`);
    if (!o || o.stream.writableEnded) return false;
    if (transport === 'dtls') return o.sessionSerial !== null && this.dtls?.getSession(address, port)?.serial === o.sessionSerial;
    return true;
  }

  private onRequest(transport: 'udp' | 'dtls', req: IncomingMessage, res: OutgoingMessage): void {
    // A duplicate of a request still being answered. node-coap answers a duplicate from its reply
    // cache only once the first answer is sent; before that it hands the duplicate over as a new
    // request, and a report would be recorded twice. Drop it, and stop node-coap's empty-ACK
    // timer for it: the client's next retransmission gets the cached answer. (Over DTLS,
    // DtlsCoapSocket already does this; the check costs nothing there.)
    const flightKey = `${transport}|${req.rsinfo.address}:${req.rsinfo.port}/${req._packet.messageId ?? ''}`;
    if (this.inFlight.has(flightKey)) {
      if (!(res instanceof ObserveWriteStream) && res._ackTimer !== null) {
        clearTimeout(res._ackTimer);
        res._ackTimer = null;
      }
      this.counters.duplicatesInFlight++;
      return;
    }
    // Every message node-coap sends for this exchange (response, notifications and their
    // retransmissions) gets its timers on the server's time scale.
    if (this.coapTimeScale !== 1) {
      const target: { _send: (m: never, p: never) => void } = res instanceof ObserveWriteStream ? (res as ObserveWriteStream) : res;
      const send = target._send.bind(target);
      target._send = (m, p) => this.scaled(() => send(m, p));
    }
    const who = (): Promise<Requester> | Requester => {
      if (transport === 'udp') return this.resources.udpRequester(req);
      const session = this.dtls?.getSession(req.rsinfo.address, req.rsinfo.port);
      if (!session) return { identity: null, sessionSerial: null, problem: 'no DTLS session' };
      return { identity: session.identity.toString('utf8'), sessionSerial: session.serial };
    };
    this.inFlight.add(flightKey);
    void this.resources.handle(transport, req, res, who).finally(() => this.inFlight.delete(flightKey));
  }

  addresses(): ServerAddresses {
    return {
      udp: this.udpSocket ? this.udpSocket.address() : null,
      dtls: this.dtls ? this.dtls.address() : null,
      admin: this.admin ? this.admin.address() : null,
    };
  }

  metrics(): ServerMetrics {
    return {
      ...this.counters,
      requests: { ...this.counters.requests },
      observers: this.observers.size,
      activeSessions: this.dtls ? this.dtls.stats().sessions : 0,
      handshakesFailed: this.dtls ? this.dtls.stats().handshakesFailed : 0,
      devices: this.model.deviceCount(),
      artifacts: this.model.listArtifacts().length,
      releases: this.model.listReleases().length,
    };
  }

  /** Stop listening, end every observation, flush and close the journal. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.model.off('changed', this.onChanged);
    this.observers.closeAll();
    await this.admin?.close();
    this.udpCoap?.close();
    this.dtlsCoap?.close();
    this.dtlsSocket?.close();
    await this.dtls?.close();
    const udp = this.udpSocket;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    await this.stateDir?.close();
  }
}
