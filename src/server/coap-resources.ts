/**
 * The CoAP resources, the same on UDP and DTLS (FORMATS.md "Update protocol over CoAP"):
 *   GET  /.u/desired            the device's CBOR manifest; with Observe 0 it registers
 *   GET  /.u/c/<artifact id>     artifact bytes, Block2 at any block number, ETag, Size2
 *   POST /.u/c/<package>         a CBOR state report; 2.04, or 4.00 with a diagnostic
 * The device is the DTLS PSK identity; over plain UDP (local use only: no authentication at all)
 * it is the `id` Uri-Query parameter, `coap://host/.u/desired?id=IDENTITY`, on manifest and
 * report requests (artifacts need none). Errors carry a one-line diagnostic payload.
 */
import { ObserveWriteStream } from 'coap';
import type { IncomingMessage, OutgoingMessage } from 'coap';
import { OCTET_STREAM_FORMAT, artifactAnswer } from './artifact-block.js';
import { checkReport } from './reports.js';
import type { ServerMetrics } from './metrics.js';
import type { UpdateModel } from './model.js';
import type { ObserverRegistry } from './observers.js';
import type { ReportRecord } from './types.js';

export const CBOR_FORMAT = 60;

export type Transport = 'udp' | 'dtls';

/** Who sent a request: the device identity (null: unknown) and, over DTLS, the session. */
export interface Requester {
  identity: string | null;
  sessionSerial: number | null;
  /** Why identity is null, for the 4.01 diagnostic. */
  problem?: string;
}

type Response = OutgoingMessage | ObserveWriteStream;

export interface ResourceOptions {
  model: UpdateModel;
  observers: ObserverRegistry;
  metrics: ServerMetrics;
  /** Block size when the request has no Block2 option (default 1024). */
  defaultBlock_bytes: number;
  /** Over UDP, an unknown `id` is registered on first use (board and tags empty). */
  udpAutoRegister: boolean;
}

/** Reply with a code and an optional payload, bypassing node-coap's own blockwise and ETag. */
function reply(res: Response, code: string, payload?: Buffer, format?: number): void {
  res.statusCode = code;
  if (format !== undefined) res.setOption('Content-Format', format);
  if (res instanceof ObserveWriteStream) {
    // An error to an Observe registration: one response without Observe, no observation.
    res._doSend(payload);
    return;
  }
  if (payload && payload.length > 0) res.write(payload);
  res.end();
}

/** Whether the request carries the option (node-coap turns some values into numbers: Size2 0). */
function hasOption(req: IncomingMessage, name: string): boolean {
  return (req._packet.options ?? []).some((o) => o.name === name);
}

function rawOption(req: IncomingMessage, name: string): Buffer | null {
  for (const o of req._packet.options ?? []) if (o.name === name && Buffer.isBuffer(o.value)) return o.value;
  return null;
}

function splitUrl(url: string): { path: string; query: Map<string, string> } {
  const q = url.indexOf('?');
  const query = new Map<string, string>();
  if (q >= 0) {
    for (const part of url.slice(q + 1).split('&')) {
      const eq = part.indexOf('=');
      if (eq > 0) query.set(part.slice(0, eq), part.slice(eq + 1));
      else if (part !== '') query.set(part, '');
    }
  }
  return { path: q >= 0 ? url.slice(0, q) : url, query };
}

export class CoapResources {
  constructor(private readonly o: ResourceOptions) {}

  /** Identify an UDP request from its `id` query (auto-registering if allowed). */
  async udpRequester(req: IncomingMessage): Promise<Requester> {
    const id = splitUrl(req.url).query.get('id');
    if (id === undefined || id === '') return { identity: null, sessionSerial: null, problem: 'plain-UDP requests must name the device: add ?id=IDENTITY (DTLS uses the PSK identity)' };
    if (!this.o.model.device(id)) {
      if (!this.o.udpAutoRegister) return { identity: null, sessionSerial: null, problem: `unknown device ${id}` };
      try {
        await this.o.model.addDevice({ identity: id, key: null, board: null, tags: [] });
      } catch (e) {
        return { identity: null, sessionSerial: null, problem: e instanceof Error ? e.message : String(e) };
      }
    }
    return { identity: id, sessionSerial: null };
  }

  async handle(transport: Transport, req: IncomingMessage, res: Response, who: () => Promise<Requester> | Requester): Promise<void> {
    this.o.metrics.requests[transport]++;
    // A separate (CON) response the device never ACKs ends in node-coap's RetrySendError on the
    // response; unhandled, that 'error' event would take the whole process down.
    if (!(res instanceof ObserveWriteStream)) res.on('error', () => undefined);
    const { path } = splitUrl(req.url);
    try {
      if (path === '/.u/desired') {
        if (req.method !== 'GET') return this.error(res, '4.05', `${req.method} is not allowed on /.u/desired (GET, with Observe to watch it)`);
        return await this.desired(transport, req, res, await who());
      }
      if (path.startsWith('/.u/c/')) {
        const rest = path.slice('/.u/c/'.length);
        if (req.method === 'GET') return this.artifact(req, res, path);
        if (req.method === 'POST') return await this.report(transport, req, res, rest, await who());
        return this.error(res, '4.05', `${req.method} is not allowed on ${path} (GET an artifact, POST a report)`);
      }
      return this.error(res, '4.04', `no resource ${path} (known: /.u/desired, /.u/c/<artifact>, POST /.u/c/<package>)`);
    } catch (e) {
      // Already answered (the send itself failed, e.g. the server is closing): nothing to add.
      if (res.writableEnded) return;
      return this.error(res, '5.00', `internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private error(res: Response, code: string, message: string): void {
    this.o.metrics.errorResponses++;
    reply(res, code, Buffer.from(message, 'utf8'));
  }

  private async desired(transport: Transport, req: IncomingMessage, res: Response, who: Requester): Promise<void> {
    this.o.metrics.manifestRequests++;
    if (who.identity === null) return this.error(res, '4.01', who.problem ?? 'unknown device');
    const identity = who.identity;
    this.o.model.touch(identity);
    const token = (req._packet.token ?? Buffer.alloc(0)).toString('hex');
    const key = `${transport}|${req.rsinfo.address}:${req.rsinfo.port}|${token}`;
    const manifest = this.o.model.manifestFor(identity);
    if (res instanceof ObserveWriteStream) {
      // Notifications are confirmable whatever the registration was (node-coap would copy the
      // request's type, and mark NON-registration notifications as ACKs).
      res._request.confirmable = true;
      res.statusCode = '2.05';
      res.setOption('Content-Format', CBOR_FORMAT);
      this.o.observers.add({ key, device: identity, transport, sessionSerial: who.sessionSerial, stream: res, last: manifest });
      res.write(manifest);
      return;
    }
    // A GET without Observe (or with Observe 1) from the same endpoint and token deregisters.
    this.o.observers.remove(key);
    reply(res, '2.05', manifest, CBOR_FORMAT);
  }

  private artifact(req: IncomingMessage, res: Response, path: string): void {
    const a = artifactAnswer(this.o.model, path, rawOption(req, 'Block2'), hasOption(req, 'Size2'), this.o.defaultBlock_bytes);
    if (!a.ok) return this.error(res, a.code, a.message);
    res.setOption('ETag', a.etag);
    if (a.block2 !== null) res.setOption('Block2', a.block2);
    if (a.size2 !== null) res.setOption('Size2', a.size2);
    this.o.metrics.blocksServed++;
    this.o.metrics.artifactBytesServed += a.payload.length;
    reply(res, '2.05', a.payload, OCTET_STREAM_FORMAT);
  }

  private async report(transport: Transport, req: IncomingMessage, res: Response, pkg: string, who: Requester): Promise<void> {
    if (who.identity === null) return this.error(res, '4.01', who.problem ?? 'unknown device');
    if (!this.o.model.hasPackage(pkg)) {
      this.o.metrics.reportsRejected++;
      return this.error(res, '4.04', `unknown package ${JSON.stringify(pkg)}: no artifact of that package`);
    }
    this.o.model.touch(who.identity);
    const payload = req.payload ?? Buffer.alloc(0);
    const check = checkReport(payload, pkg);
    const record: ReportRecord = {
      at_ms: this.o.model.now(),
      package: pkg,
      transport,
      report: check.ok ? check.report : null,
      error: check.ok ? null : check.error,
      rawHex: check.ok ? null : payload.subarray(0, 256).toString('hex'),
    };
    await this.o.model.recordReport(who.identity, record);
    if (!check.ok) {
      this.o.metrics.reportsRejected++;
      return this.error(res, '4.00', `bad state report: ${check.error}`);
    }
    this.o.metrics.reportsAccepted++;
    reply(res, '2.04');
  }
}
