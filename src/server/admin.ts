/**
 * The admin HTTP JSON API (node:http, loopback only). Routes:
 *   GET  /api/metrics
 *   GET  /api/artifacts                      POST /api/artifacts?package=P[&version=V][&board=B]  (body: the bytes)
 *   GET  /api/artifacts/<id>                 (id URL-encoded, e.g. main%401.2.0)
 *   GET  /api/releases                       POST /api/releases  {artifacts, id?, boards?, tags?, devices?, rolloutPercent?, activate?}
 *   GET  /api/releases/<id>
 *   POST /api/releases/<id>/activate | /pause | /rollback      POST /api/rollback (the newest active release)
 *   PUT  /api/releases/<id>/rollout  {rolloutPercent}
 *   GET  /api/devices                        POST /api/devices  {identity, key?, board?, tags?}
 *   GET  /api/devices/<identity>             (with report history and desired release)
 * Answers are JSON; errors are `{"error": {"code", "message"}}` with 400/404/405/409/413/415.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EnvironmentError } from '../errors.js';
import { RequestError, badRequest, notFound } from './errors.js';
import type { UpdateModel } from './model.js';
import type { ServerMetrics } from './metrics.js';
import { REPORT_REASONS, REPORT_STATES } from './types.js';
import type { NewRelease } from './model.js';
import type { DeviceInfo } from './types.js';

interface AdminHost {
  readonly model: UpdateModel;
  metrics(): ServerMetrics;
}

const MAX_JSON_BYTES = 64 * 1024;

class HttpError extends RequestError {}

function readBody(req: IncomingMessage, max_bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > max_bytes) {
      reject(new HttpError(413, 'BODY_TOO_LARGE', `the body is ${declared} bytes; at most ${max_bytes}`));
      req.resume();
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max_bytes) {
        reject(new HttpError(413, 'BODY_TOO_LARGE', `the body is over ${max_bytes} bytes`));
        req.destroy();
        return;
      }
      parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBody(req, MAX_JSON_BYTES);
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw badRequest('BAD_JSON', `the body is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest('BAD_JSON', 'the body must be a JSON object');
  return v as Record<string, unknown>;
}

/** A text field that may be absent or null; anything else is a 400. */
function optionalText(body: Record<string, unknown>, key: string, what: string): string | null {
  const v = body[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw badRequest('BAD_FIELD', `"${key}" must be text (${what}), got ${JSON.stringify(v)}`);
  return v;
}

function decodeSegment(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw badRequest('BAD_PATH', `path segment ${JSON.stringify(p)} is not valid percent-encoding`);
  }
}

export class AdminApi {
  private server: Server | null = null;

  constructor(private readonly host: AdminHost) {}

  async listen(hostname: string, port: number): Promise<void> {
    const server = createServer((req, res) => void this.route(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new EnvironmentError('PORT_IN_USE', `cannot bind the admin API to ${hostname}:${port}: ${e.message}`)));
      server.listen(port, hostname, () => resolve());
    });
    this.server = server;
  }

  address(): AddressInfo {
    const a = this.server?.address();
    if (!a || typeof a === 'string') throw new EnvironmentError('NOT_LISTENING', 'the admin API is not listening');
    return a;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = null;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body, null, 2) + '\n';
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://admin');
      const parts = url.pathname.split('/').filter((p) => p !== '').map(decodeSegment);
      const method = req.method ?? 'GET';
      const [api, collection, id, action, ...extra] = parts;
      if (api !== 'api' || extra.length > 0) throw notFound('NO_ROUTE', `no route ${method} ${url.pathname} (see the routes under /api)`);
      const model = this.host.model;
      const allow = (m: string): void => {
        if (method !== m) throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} ${url.pathname}: use ${m}`);
      };
      if (collection === 'metrics' && id === undefined) {
        allow('GET');
        return this.send(res, 200, this.host.metrics());
      }
      if (collection === 'rollback' && id === undefined) {
        allow('POST');
        return this.send(res, 200, await model.rollback());
      }
      if (collection === 'artifacts') {
        if (id === undefined) {
          if (method === 'GET') return this.send(res, 200, model.listArtifacts());
          allow('POST');
          const pkg = url.searchParams.get('package');
          if (pkg === null) throw badRequest('MISSING_FIELD', 'POST /api/artifacts needs ?package=NAME (and ?version=V unless the body is an MCUboot image)');
          const bytes = await readBody(req, model.limits.maxArtifact_bytes);
          const info = await model.addArtifact({
            package: pkg,
            version: url.searchParams.get('version'),
            board: url.searchParams.has('board') ? url.searchParams.get('board') : undefined,
            bytes,
          });
          return this.send(res, 201, info);
        }
        allow('GET');
        const a = model.getArtifact(id);
        if (!a || action !== undefined) throw notFound('UNKNOWN_ARTIFACT', `no artifact ${id}`);
        return this.send(res, 200, a);
      }
      if (collection === 'releases') {
        if (id === undefined) {
          if (method === 'GET') return this.send(res, 200, model.listReleases());
          allow('POST');
          const body = (await readJson(req)) as unknown as NewRelease; // every field is checked by the model
          return this.send(res, 201, await model.createRelease(body));
        }
        if (action === undefined) {
          allow('GET');
          return this.send(res, 200, model.getRelease(id));
        }
        if (action === 'rollout') {
          if (method !== 'PUT') allow('POST');
          const body = await readJson(req);
          if (!('rolloutPercent' in body)) throw badRequest('MISSING_FIELD', 'the body needs "rolloutPercent": 0..100');
          return this.send(res, 200, await model.setRollout(id, body.rolloutPercent));
        }
        allow('POST');
        if (action === 'activate') return this.send(res, 200, await model.activate(id));
        if (action === 'pause') return this.send(res, 200, await model.pause(id));
        if (action === 'rollback') return this.send(res, 200, await model.rollback(id));
        throw notFound('NO_ROUTE', `no release action ${action} (activate, pause, rollback, rollout)`);
      }
      if (collection === 'devices') {
        if (id === undefined) {
          if (method === 'GET') return this.send(res, 200, model.listDevices().map((d) => this.deviceView(d, false)));
          allow('POST');
          const body = await readJson(req);
          if (typeof body.identity !== 'string') throw badRequest('MISSING_FIELD', 'the body needs "identity" (text)');
          // A field of the wrong type is refused, not dropped: a device without the key the
          // caller meant to give it would fail its DTLS handshake with no hint why.
          const info = await model.addDevice({
            identity: body.identity,
            key: optionalText(body, 'key', 'the PSK, 1..64 printable ASCII characters'),
            board: optionalText(body, 'board', 'a board name'),
            tags: body.tags ?? [], // checked by the model: an array of names
          } as DeviceInfo);
          return this.send(res, 201, this.deviceView(info, false));
        }
        allow('GET');
        const d = model.device(id);
        if (!d || action !== undefined) throw notFound('UNKNOWN_DEVICE', `no device ${id}`);
        return this.send(res, 200, this.deviceView(d, true));
      }
      throw notFound('NO_ROUTE', `no route ${method} ${url.pathname} (metrics, artifacts, releases, devices, rollback)`);
    } catch (e) {
      if (e instanceof RequestError) return this.send(res, e.status, { error: { code: e.code, message: e.message } });
      if (e instanceof EnvironmentError) return this.send(res, 500, { error: { code: e.code, message: e.message } });
      return this.send(res, 500, { error: { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) } });
    }
  }

  private deviceView(d: DeviceInfo, withHistory: boolean): object {
    const model = this.host.model;
    const { history, total, lastSeen_ms } = model.reports(d.identity);
    const last = [...history].reverse().find((r) => r.report !== null)?.report ?? null;
    const desired = model.desiredFor(d.identity);
    return {
      identity: d.identity,
      board: d.board,
      tags: d.tags,
      hasKey: d.key !== null,
      lastSeen_ms,
      reportedVersion: last?.v ?? null,
      targetVersion: last?.t ?? null,
      state: last ? (REPORT_STATES[last.s] ?? null) : null,
      reason: last ? (REPORT_REASONS[last.r] ?? null) : null,
      reports: total,
      desiredRelease: desired.release?.id ?? null,
      desiredVersions: Object.fromEntries(desired.components.map((c) => [c.package, c.version])),
      ...(withHistory ? { history } : {}),
    };
  }
}
