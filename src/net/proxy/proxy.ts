/**
 * The chaos proxy (FAULTS.md "Network"): a UDP relay on 127.0.0.1 between devices and a server.
 * Each client source address is one flow with its own upstream socket, as behind a NAT; every
 * datagram, both ways, goes through the seeded schedule (schedule.ts): loss and burst loss, delay
 * and jitter, duplication, reordering, corruption. Blackhole windows and rebinds (a new upstream
 * source port, replies to the old one dropped) are placed in simulated time on the injected Clock.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { ScaledClock } from '../../clock.js';
import type { Clock, TimerHandle } from '../../clock.js';
import { EnvironmentError, InputError, assert } from '../../errors.js';
import { ChaosDecider, DEFAULT_REORDER_TIMEOUT_MS, MAX_DATAGRAM_BYTES, applyCorruption, validateSchedule } from './schedule.js';
import type { ChaosProxyOptions, ChaosSchedule, ProxyDirection, ProxyFault, ProxyFaultKind, ProxyStats } from './types.js';

export const DEFAULT_MAX_FLOWS = 20_000;
export const MAX_FLOWS_LIMIT = 60_000;
export const DEFAULT_MAX_HELD = 10_000;
export const DEFAULT_FAULT_LOG_LIMIT = 1000;
export const DEFAULT_IDLE_TIMEOUT_MS = 24 * 3600_000;
export const DEFAULT_STALE_LINGER_MS = 30_000;
/** Idle flows are looked for at least this often (simulated ms). */
const MAX_SWEEP_INTERVAL_MS = 60_000;

/** Loopback only: the proxy must never relay traffic off this machine. */
export function loopbackHost(where: string, host: string): string {
  if (host === 'localhost') return '127.0.0.1';
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (m && m.slice(1).every((p) => Number(p) <= 255)) return host;
  throw new InputError('NOT_LOOPBACK', `${where}: ${JSON.stringify(host)} is not a loopback IPv4 address (127.0.0.0/8 or localhost); the chaos proxy only relays on this machine`);
}

function portNumber(where: string, port: number, allowZero: boolean): void {
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new InputError('BAD_PORT', `${where}: expected a port ${allowZero ? 0 : 1}..65535, got ${port}`);
  }
}

/** Decisions, counters and held datagrams shared by every flow of one label. */
interface Stream {
  label: string;
  decider: ChaosDecider;
  /** Reordered datagrams, released right after the next one of this stream and direction. */
  held: Record<ProxyDirection, HeldDatagram[]>;
}

interface HeldDatagram {
  release: () => void;
  timer: TimerHandle;
}

interface Flow {
  key: string;
  client: { address: string; port: number };
  stream: Stream;
  upstream: Socket;
  upstreamPort: number | null;
  /** The upstream socket before the last rebind: replies to it are dropped (counted) until it is closed. */
  stale: { socket: Socket; timer: TimerHandle } | null;
  lastActive_ms: number;
  closed: boolean;
}

export class ChaosProxy {
  private readonly clock: Clock;
  private readonly seed: number;
  private schedule: ChaosSchedule;
  private readonly target: { host: string; port: number };
  private readonly flows = new Map<string, Flow>();
  private readonly streams = new Map<string, Stream>();
  private readonly faultLog: ProxyFault[] = [];
  private readonly faultCounts: Partial<Record<ProxyFaultKind, number>> = {};
  private readonly counters = {
    datagrams: { up: 0, down: 0 },
    forwarded: { up: 0, down: 0 },
    flows: 0,
    rebinds: 0,
    dropped: { overflow: 0, flowLimit: 0, oversize: 0, stale: 0 },
  };
  private heldCount = 0;
  private readonly delayTimers = new Set<TimerHandle>();
  /** Manual blackholes (blackhole(for_ms)), in ms since start, next to the schedule's. */
  private readonly manualBlackholes: { at_ms: number; for_ms: number }[] = [];
  private rebindEveryTimer: TimerHandle | null = null;
  private rebindAtTimers: TimerHandle[] = [];
  private sweepTimer: TimerHandle | null = null;
  private closed = false;
  private readonly maxFlows: number;
  private readonly maxHeld: number;
  private readonly faultLogLimit: number;
  private readonly idleTimeout_ms: number;
  private readonly staleLinger_ms: number;
  /** Clock time at start: blackhole windows, rebind times and fault times count from here. */
  readonly startedAt_ms: number;

  private constructor(
    private readonly options: ChaosProxyOptions,
    private readonly listenSocket: Socket,
    private readonly listenAddress: { host: string; port: number },
  ) {
    this.clock = options.clock ?? new ScaledClock(1);
    this.seed = options.seed;
    this.schedule = { ...(options.schedule ?? {}) };
    this.target = { host: loopbackHost('target.host', options.target.host), port: options.target.port };
    this.maxFlows = options.maxFlows ?? DEFAULT_MAX_FLOWS;
    this.maxHeld = options.maxHeld ?? DEFAULT_MAX_HELD;
    this.faultLogLimit = options.faultLogLimit ?? DEFAULT_FAULT_LOG_LIMIT;
    this.idleTimeout_ms = options.idleTimeout_ms ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.staleLinger_ms = options.staleLinger_ms ?? DEFAULT_STALE_LINGER_MS;
    this.startedAt_ms = this.clock.now();
  }

  /** Validate the options, bind the listening socket (EnvironmentError if the port is taken). */
  static async start(options: ChaosProxyOptions): Promise<ChaosProxy> {
    const listen = options.listen ?? { host: '127.0.0.1', port: 0 };
    const listenHost = loopbackHost('listen.host', listen.host);
    portNumber('listen.port', listen.port, true);
    loopbackHost('target.host', options.target.host);
    portNumber('target.port', options.target.port, false);
    if (!Number.isSafeInteger(options.seed)) throw new InputError('BAD_SEED', `seed: expected a whole number, got ${options.seed}`);
    validateSchedule(options.schedule ?? {});
    const bounded = (name: string, v: number | undefined, min: number, max: number): void => {
      if (v !== undefined && !(Number.isInteger(v) && v >= min && v <= max)) throw new InputError('BAD_LIMIT', `${name}: expected a whole number ${min}..${max}, got ${v}`);
    };
    bounded('maxFlows', options.maxFlows, 1, MAX_FLOWS_LIMIT);
    bounded('maxHeld', options.maxHeld, 0, 1_000_000);
    bounded('faultLogLimit', options.faultLogLimit, 0, 1_000_000);
    bounded('idleTimeout_ms', options.idleTimeout_ms, 1, Number.MAX_SAFE_INTEGER);
    bounded('staleLinger_ms', options.staleLinger_ms, 0, Number.MAX_SAFE_INTEGER);

    const socket = createSocket({ type: 'udp4', reuseAddr: false });
    const port = await new Promise<number>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        socket.close();
        reject(
          err.code === 'EADDRINUSE'
            ? new EnvironmentError('PORT_IN_USE', `chaos proxy: ${listenHost}:${listen.port} is already in use (pick another --listen port, or 0 for any)`)
            : new EnvironmentError('LISTEN_FAILED', `chaos proxy: cannot listen on ${listenHost}:${listen.port}: ${err.code ?? err.message}`),
        );
      };
      socket.once('error', onError);
      socket.bind(listen.port, listenHost, () => {
        socket.off('error', onError);
        resolve(socket.address().port);
      });
    });
    const proxy = new ChaosProxy(options, socket, { host: listenHost, port });
    socket.on('error', () => {
      // A send to a client that went away (ICMP) must not take the proxy down; the datagram is simply lost.
    });
    socket.on('message', (msg, rinfo) => proxy.fromClient(msg, rinfo));
    proxy.armTimers();
    return proxy;
  }

  get address(): { host: string; port: number } {
    return { ...this.listenAddress };
  }

  /** The last `faultLogLimit` faults, oldest first (stats() keeps counting past it). */
  get faults(): ProxyFault[] {
    return [...this.faultLog];
  }

  stats(): ProxyStats {
    const c = this.counters;
    return {
      datagrams: { ...c.datagrams },
      forwarded: { ...c.forwarded },
      faults: { ...this.faultCounts },
      flows: c.flows,
      rebinds: c.rebinds,
      activeFlows: this.flows.size,
      held: this.heldCount,
      dropped: { ...c.dropped },
    };
  }

  /** The schedule in force now (a copy). */
  currentSchedule(): ChaosSchedule {
    return { ...this.schedule };
  }

  /** Change part of the schedule from now on (the given fields replace the old ones). */
  setSchedule(partial: ChaosSchedule): void {
    validateSchedule(partial);
    this.schedule = { ...this.schedule, ...partial };
    if ('rebindEvery_ms' in partial) this.armRebindEvery();
    if ('rebindAt_ms' in partial) this.armRebindAt();
  }

  /** Drop every datagram, both ways, for the next `for_ms` simulated ms. */
  blackhole(for_ms: number): void {
    if (!(Number.isFinite(for_ms) && for_ms > 0)) throw new InputError('BAD_SCHEDULE', `blackhole: expected simulated ms > 0, got ${for_ms}`);
    if (this.manualBlackholes.length >= 1000) this.manualBlackholes.shift();
    this.manualBlackholes.push({ at_ms: this.elapsed(), for_ms });
  }

  /** Give every flow a new upstream source port now (NAT rebinding). */
  rebind(): void {
    for (const flow of this.flows.values()) this.rebindFlow(flow);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rebindEveryTimer?.cancel();
    for (const t of this.rebindAtTimers) t.cancel();
    this.sweepTimer?.cancel();
    for (const t of this.delayTimers) t.cancel();
    this.delayTimers.clear();
    for (const stream of this.streams.values()) {
      for (const d of ['up', 'down'] as const) for (const h of stream.held[d].splice(0)) h.timer.cancel();
    }
    this.heldCount = 0;
    const closing: Promise<void>[] = [];
    for (const flow of this.flows.values()) closing.push(...this.closeFlow(flow));
    this.flows.clear();
    closing.push(new Promise<void>((r) => this.listenSocket.close(() => r())));
    await Promise.all(closing);
  }

  // ---- internals ----

  private elapsed(): number {
    return this.clock.now() - this.startedAt_ms;
  }

  private inBlackhole(t_ms: number): { at_ms: number; for_ms: number } | null {
    for (const w of this.schedule.blackholes ?? []) if (t_ms >= w.at_ms && t_ms < w.at_ms + w.for_ms) return w;
    for (const w of this.manualBlackholes) if (t_ms >= w.at_ms && t_ms < w.at_ms + w.for_ms) return w;
    return null;
  }

  private fault(kind: ProxyFaultKind, flow: string, direction: ProxyDirection | null, index: number | null, detail?: string): void {
    const f: ProxyFault = { at_ms: this.elapsed(), flow, direction, index, kind };
    if (detail !== undefined) f.detail = detail;
    this.faultCounts[kind] = (this.faultCounts[kind] ?? 0) + 1;
    if (this.faultLogLimit > 0) {
      if (this.faultLog.length >= this.faultLogLimit) this.faultLog.shift();
      this.faultLog.push(f);
    }
    this.options.onFault?.(f);
  }

  private armTimers(): void {
    this.armRebindEvery();
    this.armRebindAt();
    const interval = Math.min(MAX_SWEEP_INTERVAL_MS, Math.max(1, this.idleTimeout_ms / 2));
    const sweep = (): void => {
      if (this.closed) return;
      this.expireIdle();
      this.sweepTimer = this.clock.setTimeout(sweep, interval);
    };
    this.sweepTimer = this.clock.setTimeout(sweep, interval);
  }

  private armRebindEvery(): void {
    this.rebindEveryTimer?.cancel();
    this.rebindEveryTimer = null;
    const every = this.schedule.rebindEvery_ms ?? null;
    if (every === null) return;
    const tick = (): void => {
      if (this.closed) return;
      this.rebind();
      this.rebindEveryTimer = this.clock.setTimeout(tick, every);
    };
    this.rebindEveryTimer = this.clock.setTimeout(tick, every);
  }

  private armRebindAt(): void {
    for (const t of this.rebindAtTimers) t.cancel();
    const now = this.elapsed();
    this.rebindAtTimers = (this.schedule.rebindAt_ms ?? [])
      .filter((at) => at >= now)
      .map((at) => this.clock.setTimeout(() => {
        if (!this.closed) this.rebind();
      }, at - now));
  }

  private expireIdle(): void {
    const now = this.elapsed();
    for (const flow of [...this.flows.values()]) {
      if (now - flow.lastActive_ms >= this.idleTimeout_ms) {
        this.flows.delete(flow.key);
        void Promise.all(this.closeFlow(flow));
      }
    }
  }

  private closeFlow(flow: Flow): Promise<void>[] {
    flow.closed = true;
    const out = [new Promise<void>((r) => flow.upstream.close(() => r()))];
    if (flow.stale) {
      flow.stale.timer.cancel();
      const s = flow.stale.socket;
      out.push(new Promise<void>((r) => s.close(() => r())));
      flow.stale = null;
    }
    // Without a label each flow has its own stream; it goes with the flow (a returning client is a new flow-N).
    if (this.options.label === undefined) {
      const stream = this.streams.get(flow.stream.label);
      if (stream) {
        for (const d of ['up', 'down'] as const) {
          for (const h of stream.held[d].splice(0)) {
            h.timer.cancel();
            this.heldCount--;
          }
        }
        this.streams.delete(flow.stream.label);
      }
    }
    return out;
  }

  private streamFor(): Stream {
    const label = this.options.label ?? `flow-${this.counters.flows}`;
    let stream = this.streams.get(label);
    if (!stream) {
      stream = { label, decider: new ChaosDecider(this.seed, label), held: { up: [], down: [] } };
      this.streams.set(label, stream);
    }
    return stream;
  }

  /** A new upstream socket for `flow`; only the flow's current socket forwards replies. */
  private openUpstream(flow: () => Flow): Socket {
    const socket = createSocket('udp4');
    socket.on('error', () => {
      // The server went away (ICMP port unreachable) or similar: the datagram is lost, as on a real link.
    });
    socket.on('message', (msg) => {
      const f = flow();
      if (f.closed || f.upstream !== socket) return;
      this.fromServer(f, msg);
    });
    socket.bind(0, '127.0.0.1', () => {
      const f = flow();
      if (f.upstream === socket) f.upstreamPort = socket.address().port;
    });
    return socket;
  }

  private fromClient(msg: Buffer, rinfo: { address: string; port: number }): void {
    if (this.closed) return;
    const key = `${rinfo.address}:${rinfo.port}`;
    let flow = this.flows.get(key);
    if (!flow) {
      if (this.flows.size >= this.maxFlows) this.expireIdle();
      if (this.flows.size >= this.maxFlows) {
        this.counters.datagrams.up++;
        this.counters.dropped.flowLimit++;
        return;
      }
      const stream = this.streamFor();
      this.counters.flows++;
      const created: Flow = {
        key,
        client: { address: rinfo.address, port: rinfo.port },
        stream,
        upstream: this.openUpstream(() => created),
        upstreamPort: null,
        stale: null,
        lastActive_ms: this.elapsed(),
        closed: false,
      };
      this.flows.set(key, created);
      flow = created;
    }
    this.route(flow, 'up', msg);
  }

  private fromServer(flow: Flow, msg: Buffer): void {
    if (this.closed) return;
    this.route(flow, 'down', msg);
  }

  private sendNow(flow: Flow, direction: ProxyDirection, bytes: Buffer): void {
    if (this.closed || flow.closed) return;
    this.counters.forwarded[direction]++;
    // Errors (e.g. the peer's port is closed) mean the datagram is lost, which UDP allows.
    if (direction === 'up') flow.upstream.send(bytes, this.target.port, this.target.host, () => {});
    else this.listenSocket.send(bytes, flow.client.port, flow.client.address, () => {});
  }

  private route(flow: Flow, direction: ProxyDirection, msg: Buffer): void {
    this.counters.datagrams[direction]++;
    flow.lastActive_ms = this.elapsed();
    if (msg.length > MAX_DATAGRAM_BYTES) {
      this.counters.dropped.oversize++;
      return;
    }
    const stream = flow.stream;
    const label = stream.label;
    // Decide first, whatever happens next, so indices and burst state advance once per datagram.
    const d = stream.decider.decide(direction, this.schedule);
    const window = this.inBlackhole(this.elapsed());
    if (window) {
      this.fault('blackhole', label, direction, d.index, `link down ${window.at_ms}..${window.at_ms + window.for_ms} ms`);
      return;
    }
    if (d.drop) {
      this.fault(d.drop, label, direction, d.index);
      return;
    }
    if (this.heldCount >= this.maxHeld && (d.reorder || d.delay_ms > 0)) {
      // Bounded memory: no room to hold it, so it is lost (counted, not a scheduled fault).
      this.counters.dropped.overflow++;
      return;
    }
    let bytes = msg;
    if (d.corruptSeed !== null && msg.length > 0) {
      const c = applyCorruption(msg, d.corruptSeed);
      bytes = c.bytes;
      this.fault('corrupt', label, direction, d.index, `bytes ${c.offsets.join(',')} flipped`);
    }
    if (d.duplicate) this.fault('duplicate', label, direction, d.index);

    const deliver = (): void => {
      // A held datagram whose time comes inside a blackhole was still on the link when it went down.
      const late = this.inBlackhole(this.elapsed());
      if (late) {
        this.fault('blackhole', label, direction, d.index, `link down ${late.at_ms}..${late.at_ms + late.for_ms} ms (while held)`);
        return;
      }
      this.sendNow(flow, direction, bytes);
      if (d.duplicate) this.sendNow(flow, direction, bytes);
    };
    const held = stream.held[direction];
    const releaseHeld = (): void => {
      // Released in arrival order, right after the datagram that overtook them.
      for (const h of held.splice(0)) {
        h.timer.cancel();
        this.heldCount--;
        h.release();
      }
    };

    if (d.reorder) {
      this.fault('reorder', label, direction, d.index);
      const timeout_ms = (this.schedule.reorderTimeout_ms ?? DEFAULT_REORDER_TIMEOUT_MS) + d.delay_ms;
      const entry: HeldDatagram = {
        release: deliver,
        timer: this.clock.setTimeout(() => {
          const i = held.indexOf(entry);
          if (i < 0) return;
          held.splice(i, 1);
          this.heldCount--;
          deliver();
        }, timeout_ms),
      };
      held.push(entry);
      this.heldCount++;
      assert(this.heldCount <= this.maxHeld, 'held datagrams within maxHeld');
      return;
    }
    if (d.delay_ms > 0) {
      this.fault('delay', label, direction, d.index, `${Math.round(d.delay_ms)} ms`);
      this.heldCount++;
      const timer = this.clock.setTimeout(() => {
        this.delayTimers.delete(timer);
        this.heldCount--;
        deliver();
        releaseHeld();
      }, d.delay_ms);
      this.delayTimers.add(timer);
      return;
    }
    deliver();
    releaseHeld();
  }

  private rebindFlow(flow: Flow): void {
    if (flow.closed) return;
    // Open the new socket before closing the old one, so the OS cannot hand out the same port again.
    const old = flow.upstream;
    const oldPort = flow.upstreamPort;
    if (flow.stale) {
      flow.stale.timer.cancel();
      flow.stale.socket.close();
      flow.stale = null;
    }
    flow.upstreamPort = null;
    flow.upstream = this.openUpstream(() => flow);
    old.removeAllListeners('message');
    old.on('message', () => {
      this.counters.dropped.stale++;
    });
    if (this.staleLinger_ms > 0) {
      const timer = this.clock.setTimeout(() => {
        if (flow.stale?.socket === old) flow.stale = null;
        old.close();
      }, this.staleLinger_ms);
      flow.stale = { socket: old, timer };
    } else {
      old.close();
    }
    this.counters.rebinds++;
    this.fault('rebind', flow.stream.label, null, null, `upstream port ${oldPort ?? '(binding)'} replaced`);
  }
}
