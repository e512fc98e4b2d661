/**
 * The live fleet dashboard: a loopback-only node:http server with three routes. `/` is one
 * self-contained page (inline CSS/JS/SVG, works offline), `/events` a Server-Sent Events stream
 * (on connect the kept history, then every published snapshot, plus heartbeat comments) and
 * `/snapshot.json` the latest snapshot. publish() never blocks: a client that does not read is
 * dropped once its unsent bytes pass a bound, and the number of clients is capped.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIPv4 } from 'node:net';
import { assert, EnvironmentError, InputError } from '../errors.js';
import { renderDashboardPage } from './page.js';
import { MAX_FAILING_ROWS, type FailingDevice, type FleetSnapshot } from './types.js';

export interface DashboardOptions {
  /** Loopback only: 127.0.0.0/8, ::1 or localhost (default 127.0.0.1). */
  host?: string;
  /** TCP port; 0 lets the OS pick a free one. */
  port: number;
  /** Shown in the page header and tab title. */
  title?: string;
  /** Snapshots kept for the charts and replayed to a new browser (default 2000, at most 100,000). */
  history?: number;
  /** Concurrent /events streams; more get 503 (default 64, at most 1024). */
  max_clients?: number;
  /** A client with more unsent bytes than this when the next event comes is dropped (default 8 MiB). */
  client_buffer_bytes?: number;
  /** Interval of the SSE heartbeat comment (default 15 s). */
  heartbeat_ms?: number;
}

export interface DashboardStats {
  clients: number;
  /** Streams ended because the client fell behind. */
  dropped: number;
  /** Streams refused with 503 because of the client cap. */
  refused: number;
  /** Snapshots kept for replay. */
  kept: number;
  published: number;
}

export interface Dashboard {
  url: string;
  port: number;
  /** Send a snapshot to every browser and keep it for late ones. Never blocks; ignored after close(). */
  publish(s: FleetSnapshot): void;
  stats(): DashboardStats;
  /** End every SSE stream and stop the server. Idempotent. */
  close(): Promise<void>;
}

export const DASHBOARD_DEFAULTS = {
  host: '127.0.0.1',
  title: 'ota-sim fleet',
  history: 2000,
  max_clients: 64,
  client_buffer_bytes: 8 * 1024 * 1024,
  heartbeat_ms: 15_000,
} as const;

const LIMITS = {
  history_max: 100_000,
  max_clients_max: 1024,
  /** Series (states or versions) per snapshot; the rest are summed into OTHER_SERIES. */
  series_max: 64,
  title_chars_max: 200,
  id_chars_max: 128,
  reason_chars_max: 200,
  detail_chars_max: 1000,
  /** How long close() waits for streams to flush before cutting connections. */
  close_grace_ms: 2000,
  /** EventSource reconnect delay the stream asks for. */
  retry_ms: 2000,
} as const;

export const OTHER_SERIES = '(other)';

/** The compact form kept in history and replayed: the failing list reduced to its count. */
type Point = Omit<FleetSnapshot, 'failing' | 'failingTotal'> & { seq: number; failing: number };

function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

function intOption(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) throw new InputError('dashboard-option', `dashboard: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  return value;
}

function cut(text: unknown, max_chars: number): string {
  const s = typeof text === 'string' ? text : String(text);
  return s.length > max_chars ? `${s.slice(0, max_chars - 1)}…` : s;
}

function count(name: string, v: unknown): number {
  assert(typeof v === 'number' && Number.isFinite(v) && v >= 0, `snapshot ${name} must be a finite number >= 0, got ${String(v)}`);
  return v;
}

/** Copy a counts map, bounded to LIMITS.series_max keys (largest kept, the rest folded into "(other)"). */
function boundedCounts(name: string, m: Record<string, number>): Record<string, number> {
  assert(m !== null && typeof m === 'object', `snapshot ${name} must be an object`);
  const entries = Object.entries(m).map(([k, v]): [string, number] => [cut(k, LIMITS.id_chars_max), count(`${name}.${k}`, v)]);
  if (entries.length <= LIMITS.series_max) return Object.fromEntries(entries);
  entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const out: Record<string, number> = Object.fromEntries(entries.slice(0, LIMITS.series_max - 1));
  let rest = 0;
  for (const [, v] of entries.slice(LIMITS.series_max - 1)) rest += v;
  out[OTHER_SERIES] = (out[OTHER_SERIES] ?? 0) + rest;
  return out;
}

/** Validate and bound one published snapshot (a malformed one is a bug in the publisher). */
function sanitize(s: FleetSnapshot): FleetSnapshot {
  assert(Array.isArray(s.failing), 'snapshot failing must be an array');
  const failing: FailingDevice[] = s.failing.slice(0, MAX_FAILING_ROWS).map((f) => ({
    id: cut(f.id, LIMITS.id_chars_max),
    reason: cut(f.reason, LIMITS.reason_chars_max),
    detail: cut(f.detail, LIMITS.detail_chars_max),
    since_ms: count('failing.since_ms', f.since_ms),
  }));
  const failingTotal = Math.max(s.failingTotal === undefined ? 0 : count('failingTotal', s.failingTotal), s.failing.length);
  return {
    at_ms: count('at_ms', s.at_ms),
    wall_ms: count('wall_ms', s.wall_ms),
    devices: count('devices', s.devices),
    byState: boundedCounts('byState', s.byState),
    byVersion: boundedCounts('byVersion', s.byVersion),
    updated: count('updated', s.updated),
    bricked: count('bricked', s.bricked),
    failing,
    failingTotal,
    done: s.done === true,
  };
}

function frame(event: string, seq: number | null, data: unknown): string {
  // JSON.stringify escapes newlines, so the payload is always one `data:` line.
  return `${seq === null ? '' : `id: ${seq}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The Host header must name a loopback host (guards against DNS rebinding). */
function hostAllowed(req: IncomingMessage): boolean {
  const host = req.headers.host;
  if (host === undefined) return false;
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(host);
  const name = m?.[1] ?? m?.[2];
  return name !== undefined && isLoopbackHost(name.toLowerCase());
}

const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const host = options.host ?? DASHBOARD_DEFAULTS.host;
  if (typeof host !== 'string' || !isLoopbackHost(host))
    throw new InputError('dashboard-host', `dashboard: host must be a loopback address (127.0.0.1, ::1 or localhost), got ${String(host)}`);
  if (options.port === undefined) throw new InputError('dashboard-option', 'dashboard: port must be an integer from 0 to 65535 (0 = any free port), got nothing');
  const port = intOption('port', options.port, 0, 0, 65535);
  const history_max = intOption('history', options.history, DASHBOARD_DEFAULTS.history, 1, LIMITS.history_max);
  const max_clients = intOption('max_clients', options.max_clients, DASHBOARD_DEFAULTS.max_clients, 1, LIMITS.max_clients_max);
  const client_buffer_bytes = intOption('client_buffer_bytes', options.client_buffer_bytes, DASHBOARD_DEFAULTS.client_buffer_bytes, 1024, 1024 * 1024 * 1024);
  const heartbeat_ms = intOption('heartbeat_ms', options.heartbeat_ms, DASHBOARD_DEFAULTS.heartbeat_ms, 10, 3_600_000);
  const title = cut(options.title ?? DASHBOARD_DEFAULTS.title, LIMITS.title_chars_max);

  const page = renderDashboardPage({ title, history_max });
  /** SSE frames of the kept points, oldest first; at most history_max. */
  const history: string[] = [];
  let latest: FleetSnapshot | null = null;
  let latestFrame: string | null = null;
  let seq = 0;
  const clients = new Set<ServerResponse>();
  const stats = { dropped: 0, refused: 0, published: 0 };
  let closed = false;

  /** Write to one stream unless it is too far behind, in which case it is dropped. */
  const send = (res: ServerResponse, chunk: string): void => {
    if (res.writableLength > client_buffer_bytes) {
      clients.delete(res);
      stats.dropped++;
      res.destroy();
      return;
    }
    res.write(chunk);
  };

  const openStream = (req: IncomingMessage, res: ServerResponse): void => {
    if (clients.size >= max_clients) {
      stats.refused++;
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5', 'cache-control': 'no-store' });
      res.end(`dashboard: at most ${max_clients} live streams; close another tab or try again\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Ends the TCP connection with the stream, so close() does not wait on idle keep-alives.
      connection: 'close',
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    clients.add(res);
    const done = (): void => {
      clients.delete(res);
    };
    req.on('close', done);
    res.on('close', done);
    // One write for the whole replay: `hello` tells the page to start over (it may be a reconnect).
    const replay = [`retry: ${LIMITS.retry_ms}\n\n`, frame('hello', null, { title, kept: history.length, history_max }), ...history];
    if (latestFrame !== null) replay.push(latestFrame);
    res.write(replay.join(''));
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (!hostAllowed(req)) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('dashboard: the Host header must name a loopback address\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('dashboard: only GET and HEAD\n');
      return;
    }
    if (closed) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end('dashboard: closing\n');
      return;
    }
    switch (path) {
      case '/':
      case '/index.html':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...PAGE_HEADERS });
        res.end(page);
        return;
      case '/events':
        openStream(req, res);
        return;
      case '/snapshot.json':
        if (latest === null) {
          res.writeHead(204, { 'cache-control': 'no-store' });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
        res.end(JSON.stringify(latest));
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('dashboard: not found (routes: /, /events, /snapshot.json)\n');
    }
  };

  const server: Server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EADDRINUSE')
        reject(new EnvironmentError('dashboard-port-in-use', `dashboard: port ${port} on ${host} is already in use; pass another --dashboard PORT, or 0 for any free port`));
      else if (err.code === 'EACCES')
        reject(new EnvironmentError('dashboard-port-denied', `dashboard: not allowed to listen on ${host}:${port} (ports below 1024 need privileges); pass a port from 1024 to 65535`));
      else reject(new EnvironmentError('dashboard-listen', `dashboard: cannot listen on ${host}:${port}: ${err.message}`));
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // Later socket errors belong to one connection; the server keeps serving the others.
  server.on('error', () => undefined);

  const address = server.address();
  assert(address !== null && typeof address === 'object', 'dashboard server has an address');
  const boundPort = address.port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${boundPort}/`;

  const heartbeat = setInterval(() => {
    for (const res of [...clients]) send(res, ': heartbeat\n\n');
  }, heartbeat_ms);
  heartbeat.unref();

  const publish = (s: FleetSnapshot): void => {
    if (closed) return;
    const snap = sanitize(s);
    seq++;
    stats.published++;
    const point: Point = {
      seq,
      at_ms: snap.at_ms,
      wall_ms: snap.wall_ms,
      devices: snap.devices,
      byState: snap.byState,
      byVersion: snap.byVersion,
      updated: snap.updated,
      bricked: snap.bricked,
      failing: snap.failingTotal ?? snap.failing.length,
      done: snap.done,
    };
    history.push(frame('point', seq, point));
    if (history.length > history_max) history.splice(0, history.length - history_max);
    latest = snap;
    latestFrame = frame('snapshot', seq, { ...snap, seq });
    for (const res of [...clients]) send(res, latestFrame);
  };

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    if (closing) return closing;
    closed = true;
    clearInterval(heartbeat);
    for (const res of clients) res.end();
    clients.clear();
    closing = new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), LIMITS.close_grace_ms);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections();
    });
    return closing;
  };

  return {
    url,
    port: boundPort,
    publish,
    stats: () => ({ clients: clients.size, dropped: stats.dropped, refused: stats.refused, kept: history.length, published: stats.published }),
    close,
  };
}
