/**
 * The device's CoAP request layer (RFC 7252 client side, RFC 7641 Observe) on any Transport.
 * Per device, not per process: tokens and message IDs come from the device's seeded PRNG, every
 * timer runs on the injected clock, and the transmission parameters are the device's own.
 *
 * Confirmable requests are retransmitted with exponential backoff (initial timeout randomised in
 * [ACK_TIMEOUT, ACK_TIMEOUT × ACK_RANDOM_FACTOR)) up to MAX_RETRANSMIT times; piggybacked and
 * separate responses are both accepted (a separate response that arrives before the ACK counts as
 * the ACK); RST fails the request; duplicate ACKs and responses are ignored, and duplicate
 * confirmable messages from the server get the same ACK again without being processed twice.
 * Observations ACK confirmable notifications, drop stale ones (RFC 7641 §3.4) and deregister
 * with Observe=1. Bounds: `maxOutstanding` requests and `maxObservations` observations at once
 * (excess is refused, not queued), MAX_RETRANSMIT ≤ 20, a bounded message-ID cache.
 *
 * `close()` fails whatever is outstanding with TRANSPORT_CLOSED; `abort()` is a power cut: timers
 * are cancelled, the transport is aborted, and no promise or callback settles afterwards.
 */
import type { Clock, TimerHandle } from '../clock.js';
import type { Prng } from '../prng.js';
import { DedupCache } from './dedup-cache.js';
import { NetError } from './errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES, EMPTY_CODE, codeClass, decodeMessage, encodeMessage, isResponseCode, peekHeader } from './message.js';
import type { CoapMessage, CoapType } from './message.js';
import { isFresh } from './observe-freshness.js';
import { OptionNumber, encodeUint, findOption, uintOption, uriPathOptions, uriQueryOptions } from './options.js';
import type { CoapOption } from './options.js';
import { initialTimeout_ms, resolveTiming } from './timing.js';
import type { CoapTiming, ResolvedCoapTiming } from './timing.js';
import type { Transport, TransportCloseReason } from './transport.js';

export type CoapMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'FETCH';

const METHOD_CODES: Record<CoapMethod, string> = { GET: '0.01', POST: '0.02', PUT: '0.03', DELETE: '0.04', FETCH: '0.05' };

export interface CoapRequest {
  method: CoapMethod;
  /** "/a/b?x=1": Uri-Path and Uri-Query options. */
  path: string;
  /** Further options (Block2, ETag, Content-Format, …). */
  options?: CoapOption[];
  payload?: Buffer;
  /** CON (default) or NON. */
  confirmable?: boolean;
  signal?: AbortSignal;
}

export interface CoapResponse {
  code: string;
  type: CoapType;
  messageId: number;
  token: Buffer;
  options: CoapOption[];
  payload: Buffer;
}

export interface CoapClientOptions {
  transport: Transport;
  clock: Clock;
  prng: Prng;
  timing?: Partial<CoapTiming>;
  /** Token length, 1..8 bytes (default 8). */
  tokenLength_bytes?: number;
  /** Requests awaiting a response at once (default 16, at most 1024). */
  maxOutstanding?: number;
  /** Observations at once (default 4, at most 64). */
  maxObservations?: number;
  /** Message IDs remembered for deduplication (default 512). */
  dedupCapacity?: number;
  /** Largest datagram to send (default 1280). */
  maxMessage_bytes?: number;
}

export interface CoapClientStats {
  requests: number;
  transmissions: number;
  retransmissions: number;
  timeouts: number;
  resets: number;
  /** Duplicate ACKs, RSTs and server messages ignored (already handled). */
  duplicates: number;
  acksSent: number;
  rstsSent: number;
  malformed: number;
  notifications: number;
  staleNotifications: number;
}

export type ObservationEnd =
  | { kind: 'cancelled' }
  /** The server ended it: an error code, or a response without Observe. */
  | { kind: 'server'; code: string }
  | { kind: 'closed'; message: string };

export interface Observation {
  /** The response to the registration. */
  readonly first: CoapResponse;
  /** False when the server answered without Observe (not observable): no notifications follow. */
  readonly registered: boolean;
  readonly active: boolean;
  /** Resolves once the observation ends, however (never rejects). */
  readonly ended: Promise<ObservationEnd>;
  /** Stop; with `deregister` (default true) send GET with Observe=1 first (RFC 7641 §3.6). */
  cancel(options?: { deregister?: boolean }): Promise<void>;
}

export const MAX_OUTSTANDING_LIMIT = 1024;
export const MAX_OBSERVATIONS_LIMIT = 64;

interface Exchange {
  token: Buffer;
  tokenKey: string;
  messageId: number;
  datagram: Buffer;
  confirmable: boolean;
  request: CoapRequest;
  retransmissions: number;
  timeout_ms: number;
  /** When the exchange's timer is due (simulated ms on the client's clock), or null when none runs. */
  deadline_ms: number | null;
  /** What the due timer does: retransmit (until ACKed), or give up waiting for a separate response. */
  timerKind: 'retransmit' | 'response';
  acked: boolean;
  observe: boolean;
  onFirst: ((token: Buffer, tokenKey: string, response: CoapResponse) => void) | undefined;
  resolve: (response: CoapResponse) => void;
  reject: (err: NetError) => void;
}

/** Uri-Path/Uri-Query options remembered per path string (a download asks for one path hundreds of times). */
const PATH_CACHE_ENTRIES = 32;

interface ObservationState {
  tokenKey: string;
  request: CoapRequest;
  token: Buffer;
  last: { sequence: number; at_ms: number } | null;
  onNotification: (response: CoapResponse) => void;
  end: (reason: ObservationEnd) => void;
  active: boolean;
}

export class CoapClient {
  readonly timing: ResolvedCoapTiming;
  readonly stats: CoapClientStats = {
    requests: 0,
    transmissions: 0,
    retransmissions: 0,
    timeouts: 0,
    resets: 0,
    duplicates: 0,
    acksSent: 0,
    rstsSent: 0,
    malformed: 0,
    notifications: 0,
    staleNotifications: 0,
  };
  private readonly transport: Transport;
  readonly clock: Clock;
  private readonly prng: Prng;
  private readonly tokenLength_bytes: number;
  readonly maxOutstanding: number;
  private readonly maxObservations: number;
  private readonly maxMessage_bytes: number;
  private readonly dedup: DedupCache;
  private readonly byMessageId = new Map<number, Exchange>();
  private readonly byToken = new Map<string, Exchange>();
  private readonly observations = new Map<string, ObservationState>();
  /**
   * One clock timer for all exchanges, armed for the earliest deadline: a clock timer per request
   * (through the device clock and the scaled clock) was a good part of the request layer's CPU.
   */
  private timer: TimerHandle | null = null;
  private timerDue_ms = Number.POSITIVE_INFINITY;
  /** One 'abort' listener per AbortSignal shared by several requests (a window of block requests). */
  private readonly signalGroups = new Map<AbortSignal, { exchanges: Set<Exchange>; onAbort: () => void }>();
  private readonly exchangeSignal = new Map<Exchange, AbortSignal>();
  private readonly pathOptions = new Map<string, readonly CoapOption[]>();
  private nextMessageId: number;
  private state: 'open' | 'closed' | 'aborted' = 'open';
  private closeHandler: ((reason: TransportCloseReason) => void) | null = null;

  constructor(options: CoapClientOptions) {
    this.transport = options.transport;
    this.clock = options.clock;
    this.prng = options.prng;
    this.timing = resolveTiming(options.timing);
    this.tokenLength_bytes = options.tokenLength_bytes ?? 8;
    this.maxOutstanding = options.maxOutstanding ?? 16;
    this.maxObservations = options.maxObservations ?? 4;
    this.maxMessage_bytes = options.maxMessage_bytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const check = (ok: boolean, what: string): void => {
      if (!ok) throw new NetError('BAD_REQUEST', what);
    };
    check(Number.isInteger(this.tokenLength_bytes) && this.tokenLength_bytes >= 1 && this.tokenLength_bytes <= 8, 'tokenLength_bytes must be in 1..8');
    check(Number.isInteger(this.maxOutstanding) && this.maxOutstanding >= 1 && this.maxOutstanding <= MAX_OUTSTANDING_LIMIT, `maxOutstanding must be in 1..${MAX_OUTSTANDING_LIMIT}`);
    check(Number.isInteger(this.maxObservations) && this.maxObservations >= 0 && this.maxObservations <= MAX_OBSERVATIONS_LIMIT, `maxObservations must be in 0..${MAX_OBSERVATIONS_LIMIT}`);
    check(this.maxMessage_bytes >= 64 && this.maxMessage_bytes <= 65_507, 'maxMessage_bytes must be in 64..65507');
    this.dedup = new DedupCache(this.timing.exchangeLifetime_ms, options.dedupCapacity ?? 512);
    this.nextMessageId = this.prng.below(0x1_0000);
    this.transport.onMessage((d) => this.onDatagram(d));
    this.transport.onClose((reason) => this.onTransportClose(reason));
  }

  /** Requests awaiting their response now. */
  get outstanding(): number {
    return this.byToken.size;
  }

  get activeObservations(): number {
    return this.observations.size;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Called once if the transport ends by itself (not after close() or abort()). */
  onClose(handler: (reason: TransportCloseReason) => void): void {
    this.closeHandler = handler;
  }

  request(request: CoapRequest): Promise<CoapResponse> {
    return this.start(request, false);
  }

  /** Register an observation (GET with Observe=0); notifications after the first response go to `onNotification`. */
  async observe(request: Omit<CoapRequest, 'method'> & { method?: 'GET' | 'FETCH' }, onNotification: (response: CoapResponse) => void): Promise<Observation> {
    if (this.observations.size >= this.maxObservations) {
      throw new NetError('TOO_MANY_OUTSTANDING', `at most ${this.maxObservations} observations at once`);
    }
    const full: CoapRequest = { ...request, method: request.method ?? 'GET' };
    let state: ObservationState | null = null;
    let endResolve: (reason: ObservationEnd) => void = () => {};
    const ended = new Promise<ObservationEnd>((r) => (endResolve = r));
    const first = await this.start(full, true, (token, tokenKey, response) => {
      const sequence = uintOption(response.options, OptionNumber.Observe);
      if (sequence === null || codeClass(response.code) !== 2 || this.observations.size >= this.maxObservations) return;
      state = {
        tokenKey,
        token,
        request: full,
        last: { sequence, at_ms: this.clock.now() },
        onNotification,
        active: true,
        end: (reason) => {
          if (!s.active) return;
          s.active = false;
          this.observations.delete(tokenKey);
          endResolve(reason);
        },
      };
      const s: ObservationState = state;
      this.observations.set(tokenKey, s);
    });
    const registered: ObservationState | null = state;
    if (registered === null) endResolve({ kind: 'server', code: first.code });
    const self = this;
    return {
      first,
      registered: registered !== null,
      get active() {
        return registered !== null && (registered as ObservationState).active;
      },
      ended,
      async cancel(options: { deregister?: boolean } = {}): Promise<void> {
        if (registered === null) return;
        const s: ObservationState = registered;
        if (!s.active) return;
        s.end({ kind: 'cancelled' });
        if (options.deregister === false || self.state !== 'open') return;
        try {
          await self.start({ ...s.request, options: withObserve(s.request.options, 1), signal: undefined }, false, undefined, s.token);
        } catch {
          // a lost deregistration is harmless: the next notification gets an RST
        }
      },
    };
  }

  /** Graceful end: outstanding requests fail with TRANSPORT_CLOSED, the transport closes (DTLS: close_notify). */
  close(): void {
    if (this.state !== 'open') return;
    this.state = 'closed';
    this.failAll('TRANSPORT_CLOSED', 'the CoAP client was closed', { kind: 'closed', message: 'client closed' });
    this.transport.close();
  }

  /** Power cut: everything stops where it is; nothing settles afterwards. */
  abort(): void {
    if (this.state === 'aborted') return;
    this.state = 'aborted';
    this.cancelTimer();
    for (const ex of this.byToken.values()) ex.deadline_ms = null;
    for (const [signal, group] of this.signalGroups) signal.removeEventListener('abort', group.onAbort);
    this.signalGroups.clear();
    this.exchangeSignal.clear();
    this.byToken.clear();
    this.byMessageId.clear();
    this.observations.clear();
    this.transport.abort();
  }

  private start(
    request: CoapRequest,
    observe: boolean,
    onFirst?: (token: Buffer, tokenKey: string, response: CoapResponse) => void,
    reuseToken?: Buffer,
  ): Promise<CoapResponse> {
    return new Promise<CoapResponse>((resolve, reject) => {
      if (this.state !== 'open') {
        reject(new NetError('TRANSPORT_CLOSED', 'the CoAP client is closed'));
        return;
      }
      if (request.signal?.aborted) {
        reject(new NetError('CANCELLED', 'request cancelled before it was sent'));
        return;
      }
      if (this.byToken.size >= this.maxOutstanding) {
        reject(new NetError('TOO_MANY_OUTSTANDING', `at most ${this.maxOutstanding} requests at once`));
        return;
      }
      const token = reuseToken ?? this.newToken();
      const tokenKey = token.toString('hex');
      if (this.byToken.has(tokenKey)) {
        reject(new NetError('TOO_MANY_OUTSTANDING', 'a request with this token is already outstanding'));
        return;
      }
      const confirmable = request.confirmable ?? true;
      const messageId = this.newMessageId();
      const extra = observe ? withObserve(request.options, 0) : (request.options ?? []);
      const options = [...this.uriOptions(request.path), ...extra];
      let datagram: Buffer;
      try {
        datagram = encodeMessage(
          { type: confirmable ? 'CON' : 'NON', code: METHOD_CODES[request.method], messageId, token, options, payload: request.payload ?? Buffer.alloc(0) },
          this.maxMessage_bytes,
        );
      } catch (err) {
        reject(err);
        return;
      }
      const ex: Exchange = {
        token,
        tokenKey,
        messageId,
        datagram,
        confirmable,
        request,
        retransmissions: 0,
        timeout_ms: initialTimeout_ms(this.timing, this.prng),
        deadline_ms: null,
        timerKind: 'retransmit',
        acked: !confirmable,
        observe,
        onFirst,
        resolve,
        reject,
      };
      if (request.signal) this.attachSignal(ex, request.signal);
      this.byToken.set(tokenKey, ex);
      if (confirmable) this.byMessageId.set(messageId, ex);
      this.stats.requests++;
      this.transmit(ex);
      if (confirmable) this.armRetransmit(ex);
      else this.armResponseTimer(ex);
    });
  }

  private newToken(): Buffer {
    for (let i = 0; i < 64; i++) {
      const t = Buffer.alloc(this.tokenLength_bytes);
      for (let b = 0; b < t.length; b += 4) {
        const word = this.prng.nextU32();
        for (let k = 0; k < 4 && b + k < t.length; k++) t[b + k] = (word >>> (8 * k)) & 0xff;
      }
      const key = t.toString('hex');
      if (!this.byToken.has(key) && !this.observations.has(key)) return t;
    }
    throw new NetError('TOO_MANY_OUTSTANDING', 'no free token after 64 draws');
  }

  private newMessageId(): number {
    const id = this.nextMessageId;
    this.nextMessageId = (id + 1) & 0xffff;
    return id;
  }

  private transmit(ex: Exchange): void {
    this.stats.transmissions++;
    this.transport.send(ex.datagram);
  }

  /** Uri-Path and Uri-Query options of a path, from a small cache (cleared when full). */
  private uriOptions(path: string): readonly CoapOption[] {
    let options = this.pathOptions.get(path);
    if (options === undefined) {
      options = [...uriPathOptions(path), ...uriQueryOptions(path)];
      if (this.pathOptions.size >= PATH_CACHE_ENTRIES) this.pathOptions.clear();
      this.pathOptions.set(path, options);
    }
    return options;
  }

  private attachSignal(ex: Exchange, signal: AbortSignal): void {
    let group = this.signalGroups.get(signal);
    if (group === undefined) {
      const exchanges = new Set<Exchange>();
      const onAbort = (): void => {
        for (const e of [...exchanges]) this.finish(e, new NetError('CANCELLED', 'request cancelled'));
      };
      group = { exchanges, onAbort };
      this.signalGroups.set(signal, group);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    group.exchanges.add(ex);
    this.exchangeSignal.set(ex, signal);
  }

  private detachSignal(ex: Exchange): void {
    const signal = this.exchangeSignal.get(ex);
    if (signal === undefined) return;
    this.exchangeSignal.delete(ex);
    const group = this.signalGroups.get(signal);
    if (group === undefined) return;
    group.exchanges.delete(ex);
    if (group.exchanges.size === 0) {
      this.signalGroups.delete(signal);
      signal.removeEventListener('abort', group.onAbort);
    }
  }

  private armRetransmit(ex: Exchange): void {
    ex.timerKind = 'retransmit';
    this.setDeadline(ex, this.clock.now() + ex.timeout_ms);
  }

  private armResponseTimer(ex: Exchange): void {
    ex.timerKind = 'response';
    this.setDeadline(ex, this.clock.now() + this.timing.separateResponseTimeout_ms);
  }

  /** Give the exchange a deadline; re-arm the shared timer only when it is the new earliest. */
  private setDeadline(ex: Exchange, deadline_ms: number): void {
    ex.deadline_ms = deadline_ms;
    if (deadline_ms < this.timerDue_ms) this.armTimer(deadline_ms);
  }

  private armTimer(due_ms: number): void {
    this.timer?.cancel();
    this.timerDue_ms = due_ms;
    this.timer = this.clock.setTimeout(() => this.onTimer(), due_ms - this.clock.now());
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = null;
    this.timerDue_ms = Number.POSITIVE_INFINITY;
  }

  /**
   * The shared timer fired: every exchange due by now — or by the time the timer was armed for, as a
   * scaled clock's timer may fire a little before its simulated due time — acts in deadline order;
   * then the timer is re-armed for the earliest deadline left. At most maxOutstanding exchanges.
   */
  private onTimer(): void {
    const due_ms = Math.max(this.clock.now(), this.timerDue_ms);
    this.timer = null;
    this.timerDue_ms = Number.POSITIVE_INFINITY;
    if (this.state !== 'open') return;
    const expired: Exchange[] = [];
    for (const ex of this.byToken.values()) if (ex.deadline_ms !== null && ex.deadline_ms <= due_ms) expired.push(ex);
    expired.sort((a, b) => (a.deadline_ms ?? 0) - (b.deadline_ms ?? 0));
    for (const ex of expired) {
      if (this.byToken.get(ex.tokenKey) !== ex || ex.deadline_ms === null) continue;
      ex.deadline_ms = null;
      if (ex.timerKind === 'response') {
        this.stats.timeouts++;
        this.finish(ex, new NetError('TIMEOUT', `no response within ${this.timing.separateResponseTimeout_ms} ms (${ex.request.method} ${ex.request.path})`));
        continue;
      }
      if (ex.acked) continue;
      if (ex.retransmissions >= this.timing.maxRetransmit) {
        this.stats.timeouts++;
        this.finish(ex, new NetError('TIMEOUT', `no ACK after ${ex.retransmissions} retransmissions (${ex.request.method} ${ex.request.path})`));
        continue;
      }
      ex.retransmissions++;
      ex.timeout_ms *= 2;
      this.stats.retransmissions++;
      this.transmit(ex);
      this.armRetransmit(ex);
    }
    if (this.state !== 'open') return;
    // retransmissions above may have armed the timer for their own (later) deadline: the earliest wins
    let next_ms = Number.POSITIVE_INFINITY;
    for (const ex of this.byToken.values()) if (ex.deadline_ms !== null && ex.deadline_ms < next_ms) next_ms = ex.deadline_ms;
    if (next_ms < this.timerDue_ms) this.armTimer(next_ms);
  }

  /** Remove an exchange and settle it (with a response or an error). */
  private finish(ex: Exchange, outcome: CoapResponse | NetError): void {
    if (this.byToken.get(ex.tokenKey) !== ex) return;
    this.byToken.delete(ex.tokenKey);
    if (this.byMessageId.get(ex.messageId) === ex) this.byMessageId.delete(ex.messageId);
    ex.deadline_ms = null;
    // the shared timer stays armed while others wait (it skips finished exchanges); none left: stop it
    if (this.byToken.size === 0) this.cancelTimer();
    this.detachSignal(ex);
    if (outcome instanceof NetError) ex.reject(outcome);
    else {
      ex.onFirst?.(ex.token, ex.tokenKey, outcome);
      ex.resolve(outcome);
    }
  }

  private onDatagram(datagram: Buffer): void {
    if (this.state !== 'open') return;
    const msg = decodeMessage(datagram);
    if (!msg) {
      this.stats.malformed++;
      const header = peekHeader(datagram);
      if (header?.type === 'CON') this.sendEmpty('RST', header.messageId);
      return;
    }
    if (msg.type === 'ACK' || msg.type === 'RST') this.onAckOrReset(msg);
    else this.onConOrNon(msg);
  }

  private onAckOrReset(msg: CoapMessage): void {
    const ex = this.byMessageId.get(msg.messageId);
    if (!ex || ex.acked) {
      this.stats.duplicates++;
      return;
    }
    if (msg.type === 'RST') {
      this.stats.resets++;
      this.finish(ex, new NetError('RESET', `the server reset ${ex.request.method} ${ex.request.path}`));
      return;
    }
    ex.acked = true;
    this.byMessageId.delete(ex.messageId);
    if (msg.code !== EMPTY_CODE && msg.token.equals(ex.token) && isResponseCode(msg.code)) {
      this.finish(ex, toResponse(msg));
      return;
    }
    // an empty ACK (or one whose response is not for us): a separate response will follow
    this.armResponseTimer(ex);
  }

  private onConOrNon(msg: CoapMessage): void {
    const now_ms = this.clock.now();
    const seen = this.dedup.get(msg.messageId, now_ms);
    if (seen) {
      this.stats.duplicates++;
      if (seen.reply) this.sendRaw(seen.reply, seen.reply.length === 4 && ((seen.reply[0] ?? 0) & 0x30) === 0x30 ? 'RST' : 'ACK');
      return;
    }
    const deliver = isResponseCode(msg.code) ? this.route(msg) : null;
    let reply: Buffer | null = null;
    if (msg.type === 'CON') reply = this.sendEmpty(deliver ? 'ACK' : 'RST', msg.messageId);
    else if (!deliver) reply = this.sendEmpty('RST', msg.messageId);
    this.dedup.remember(msg.messageId, reply, now_ms);
    deliver?.();
  }

  /** Who a response belongs to: a pending request, or an observation. Returns the delivery, or null. */
  private route(msg: CoapMessage): (() => void) | null {
    const key = msg.token.toString('hex');
    const ex = this.byToken.get(key);
    if (ex) {
      // a separate response before the ACK: it acknowledges the request too
      ex.acked = true;
      if (this.byMessageId.get(ex.messageId) === ex) this.byMessageId.delete(ex.messageId);
      return () => this.finish(ex, toResponse(msg));
    }
    const obs = this.observations.get(key);
    if (!obs || !obs.active) return null;
    const response = toResponse(msg);
    const sequence = uintOption(msg.options, OptionNumber.Observe);
    if (codeClass(msg.code) !== 2 || sequence === null) {
      return () => {
        this.stats.notifications++;
        obs.onNotification(response);
        obs.end({ kind: 'server', code: msg.code });
      };
    }
    const now_ms = this.clock.now();
    if (!isFresh(obs.last, sequence, now_ms)) {
      this.stats.staleNotifications++;
      return () => {};
    }
    obs.last = { sequence, at_ms: now_ms };
    return () => {
      this.stats.notifications++;
      obs.onNotification(response);
    };
  }

  private sendEmpty(type: 'ACK' | 'RST', messageId: number): Buffer {
    const d = encodeMessage({ type, code: EMPTY_CODE, messageId, token: Buffer.alloc(0), options: [], payload: Buffer.alloc(0) });
    this.sendRaw(d, type);
    return d;
  }

  private sendRaw(datagram: Buffer, type: 'ACK' | 'RST'): void {
    if (type === 'ACK') this.stats.acksSent++;
    else this.stats.rstsSent++;
    this.transport.send(datagram);
  }

  private onTransportClose(reason: TransportCloseReason): void {
    if (this.state !== 'open') return;
    this.state = 'closed';
    const message = reason.kind === 'failed' ? reason.message : reason.kind;
    this.failAll('TRANSPORT_CLOSED', `the transport closed: ${message}`, { kind: 'closed', message });
    this.closeHandler?.(reason);
  }

  private failAll(code: 'TRANSPORT_CLOSED', message: string, end: ObservationEnd): void {
    for (const ex of [...this.byToken.values()]) this.finish(ex, new NetError(code, message));
    for (const obs of [...this.observations.values()]) obs.end(end);
  }
}

function withObserve(options: CoapOption[] | undefined, value: 0 | 1): CoapOption[] {
  return [...(options ?? []).filter((o) => o.number !== OptionNumber.Observe), { number: OptionNumber.Observe, value: encodeUint(value) }];
}

function toResponse(msg: CoapMessage): CoapResponse {
  return { code: msg.code, type: msg.type, messageId: msg.messageId, token: msg.token, options: msg.options, payload: msg.payload };
}

/** Convenience: the ETag of a response, or null. */
export function responseEtag(response: CoapResponse): Buffer | null {
  return findOption(response.options, OptionNumber.ETag)?.value ?? null;
}
