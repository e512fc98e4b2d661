/**
 * Windowed Block2 download (RFC 7959 §2.4, random access to blocks): up to `window` block numbers
 * are requested at once, blocks are handed to `onBlock` strictly in order (the caller writes them
 * to flash), and no more than window × blockSize payload bytes are ever held — a block is
 * requested only when its slot in the window is free, and a slot frees only when `onBlock` for the
 * block at the window's start has finished. window = 1 is classic stop-and-wait.
 *
 * Resumable from any block number (`startBlock`, with the ETag recorded earlier). A failed block
 * (timeout, 5.xx) is retried after `blockRetryDelay_ms` on the client's clock, at most
 * `maxBlockRetries` times. An ETag or Size2 that changes aborts with a typed reason so the agent
 * restarts at block 0. The end is the block with M=0, or the last block Size2 implies; errors for
 * blocks past the end (requested before the end was known) are ignored.
 */
import { setMaxListeners } from 'node:events';
import type { TimerHandle } from '../clock.js';
import { assert } from '../errors.js';
import type { CoapClient, CoapResponse } from './client.js';
import { DownloadError, NetError } from './errors.js';
import type { DownloadAbortReason } from './errors.js';
import { codeClass } from './message.js';
import { MAX_BLOCK_NUM, OptionNumber, blockSzx, decodeBlock, encodeBlock, findOption, uintOption } from './options.js';
import type { CoapOption } from './options.js';

export interface DownloadProgress {
  /** Blocks handed to onBlock so far in this call, and their bytes. */
  blocksDelivered: number;
  bytesDelivered: number;
  /** The next block number to deliver (resume point). */
  nextBlock: number;
  /** Size2 from the server, when it sent one. */
  totalBytes: number | null;
}

export interface DownloadOptions {
  client: CoapClient;
  /** Resource path, e.g. "/.u/c/main@1.2.0". */
  uri: string;
  /** 16..1024, a power of two. */
  blockSize_bytes: number;
  /** Block requests outstanding at once, 1..MAX_WINDOW (bounded also by the client's maxOutstanding). */
  window: number;
  /** First block to fetch (default 0). */
  startBlock?: number;
  /** The ETag a resumed download must still see; otherwise the first response's ETag is adopted. */
  etag?: Buffer | null;
  /** Called once when the download adopts the server's ETag (the first response that carries one, when no `etag` was given). */
  onEtag?: (etag: Buffer) => void;
  /** Called for each block in order; the next one waits until its promise settles. Throwing aborts (SINK_FAILED). */
  onBlock: (blockNum: number, bytes: Buffer) => void | Promise<void>;
  onProgress?: (progress: DownloadProgress) => void;
  /** Delay before retrying a failed block (default 1000 ms). */
  blockRetryDelay_ms?: number;
  /** Retries per block before giving up (default 5, at most 100). */
  maxBlockRetries?: number;
  /** Extra request options (e.g. Accept). */
  options?: CoapOption[];
  signal?: AbortSignal;
}

export interface DownloadResult {
  etag: Buffer | null;
  totalBytes: number | null;
  /** Blocks and bytes delivered in this call (from startBlock). */
  blocks: number;
  bytes: number;
  lastBlock: number;
  retries: number;
  /** Most payload bytes held at once (received and not yet handed over, or being handed over). */
  highWater_bytes: number;
}

export const MAX_WINDOW = 64;
export const MAX_BLOCK_RETRIES = 100;

export function download(options: DownloadOptions): Promise<DownloadResult> {
  return new Block2Download(options).run();
}

class Block2Download {
  private readonly blockSize_bytes: number;
  private readonly window: number;
  private readonly retryDelay_ms: number;
  private readonly maxRetries: number;
  private readonly budget_bytes: number;
  private etag: Buffer | null;
  private totalBytes: number | null = null;
  /** Last block number, once known (M=0 seen, or Size2). */
  private lastBlock: number | null = null;
  private nextToDeliver: number;
  private nextToRequest: number;
  private readonly received = new Map<number, Buffer>();
  /**
   * Block numbers requested and not answered yet. Their requests share one AbortController,
   * aborted at the end: one AbortController per block cost ~20 % of the CPU of a DTLS download
   * (bench/agent.ts). A request dropped from here (past the end) is left to finish; its answer is ignored.
   */
  private readonly inFlight = new Set<number>();
  private readonly cancelInFlight = new AbortController();
  private readonly retryTimers = new Map<number, TimerHandle>();
  private readonly retriesPerBlock = new Map<number, number>();
  /** 4.xx answers for blocks not yet known to exist: judged when the window reaches them. */
  private readonly refused = new Map<number, string>();
  private held_bytes = 0;
  private highWater_bytes = 0;
  private retries = 0;
  private blocksDelivered = 0;
  private bytesDelivered = 0;
  private delivering = false;
  private done = false;
  private resolve: (r: DownloadResult) => void = () => {};
  private reject: (e: DownloadError) => void = () => {};

  constructor(private readonly o: DownloadOptions) {
    blockSzx(o.blockSize_bytes);
    const bad = (what: string): never => {
      throw new NetError('BAD_REQUEST', what);
    };
    if (!(Number.isInteger(o.window) && o.window >= 1 && o.window <= MAX_WINDOW)) bad(`window ${o.window} must be in 1..${MAX_WINDOW}`);
    if (o.window > o.client.maxOutstanding) bad(`window ${o.window} exceeds the client's maxOutstanding ${o.client.maxOutstanding}`);
    const start = o.startBlock ?? 0;
    if (!(Number.isInteger(start) && start >= 0 && start <= MAX_BLOCK_NUM)) bad(`startBlock ${start} must be in 0..${MAX_BLOCK_NUM}`);
    this.retryDelay_ms = o.blockRetryDelay_ms ?? 1000;
    this.maxRetries = o.maxBlockRetries ?? 5;
    if (!(this.retryDelay_ms >= 0)) bad('blockRetryDelay_ms must be ≥ 0');
    if (!(Number.isInteger(this.maxRetries) && this.maxRetries >= 0 && this.maxRetries <= MAX_BLOCK_RETRIES)) bad(`maxBlockRetries must be in 0..${MAX_BLOCK_RETRIES}`);
    this.blockSize_bytes = o.blockSize_bytes;
    this.window = o.window;
    this.budget_bytes = o.window * o.blockSize_bytes;
    this.etag = o.etag ?? null;
    this.nextToDeliver = start;
    this.nextToRequest = start;
    // in flight at once: the window, plus requests past the end left to finish (fewer than a window)
    setMaxListeners(2 * MAX_WINDOW + 1, this.cancelInFlight.signal);
  }

  run(): Promise<DownloadResult> {
    return new Promise<DownloadResult>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      if (this.o.signal?.aborted) {
        this.abort('CANCELLED', 'download cancelled before it started');
        return;
      }
      this.o.signal?.addEventListener('abort', this.onAbortSignal, { once: true });
      this.fill();
    });
  }

  private readonly onAbortSignal = (): void => this.abort('CANCELLED', 'download cancelled');

  /** Request every block number the window allows. */
  private fill(): void {
    while (
      !this.done &&
      this.nextToRequest < this.nextToDeliver + this.window &&
      (this.lastBlock === null || this.nextToRequest <= this.lastBlock) &&
      this.nextToRequest <= MAX_BLOCK_NUM
    ) {
      this.requestBlock(this.nextToRequest++);
    }
  }

  private requestBlock(num: number): void {
    this.inFlight.add(num);
    this.o.client
      .request({
        method: 'GET',
        path: this.o.uri,
        options: [...(this.o.options ?? []), { number: OptionNumber.Block2, value: encodeBlock({ num, more: false, size_bytes: this.blockSize_bytes }) }],
        signal: this.cancelInFlight.signal,
      })
      .then(
        (response) => this.onResponse(num, response),
        (err: unknown) => this.onRequestError(num, err),
      );
  }

  private onRequestError(num: number, err: unknown): void {
    if (this.done || !this.inFlight.has(num)) return;
    this.inFlight.delete(num);
    const e = err instanceof NetError ? err : null;
    if (e?.code === 'CANCELLED') return;
    if (e?.code === 'TRANSPORT_CLOSED') {
      this.abort('TRANSPORT_CLOSED', e.message);
      return;
    }
    this.retryLater(num, null, e ? `${e.code}: ${e.message}` : String(err));
  }

  private retryLater(num: number, responseCode: string | null, why: string): void {
    if (this.lastBlock !== null && num > this.lastBlock) return;
    const used = this.retriesPerBlock.get(num) ?? 0;
    if (used >= this.maxRetries) {
      this.abort('BLOCK_FAILED', `block ${num} failed ${used + 1} times (last: ${why})`, responseCode);
      return;
    }
    this.retriesPerBlock.set(num, used + 1);
    this.retries++;
    this.retryTimers.set(num, this.o.client.clock.setTimeout(() => this.retryNow(num), this.retryDelay_ms));
  }

  private retryNow(num: number): void {
    this.retryTimers.delete(num);
    if (this.done || (this.lastBlock !== null && num > this.lastBlock)) return;
    this.requestBlock(num);
  }

  private onResponse(num: number, response: CoapResponse): void {
    if (this.done || !this.inFlight.has(num)) return;
    this.inFlight.delete(num);
    const cls = codeClass(response.code);
    if (cls === 5) {
      this.retryLater(num, response.code, `server error ${response.code}`);
      return;
    }
    if (cls !== 2) {
      if (this.lastBlock !== null && num > this.lastBlock) return;
      this.refused.set(num, response.code);
      this.judgeRefusals();
      return;
    }
    // ETag: adopt the first, abort on any change
    const etag = findOption(response.options, OptionNumber.ETag)?.value ?? null;
    if (etag !== null) {
      if (this.etag === null) {
        this.etag = Buffer.from(etag);
        this.o.onEtag?.(this.etag);
      } else if (!this.etag.equals(etag)) {
        this.abort('ETAG_CHANGED', `ETag changed at block ${num}: ${this.etag.toString('hex')} → ${etag.toString('hex')}`);
        return;
      }
    }
    const size2 = uintOption(response.options, OptionNumber.Size2);
    if (size2 !== null) {
      if (this.totalBytes !== null && this.totalBytes !== size2) {
        this.abort('SIZE_CHANGED', `Size2 changed at block ${num}: ${this.totalBytes} → ${size2}`);
        return;
      }
      this.totalBytes = size2;
      this.setLastBlock(Math.max(0, Math.ceil(size2 / this.blockSize_bytes) - 1), `Size2 ${size2}`);
      if (this.done) return;
    }
    const blockOption = findOption(response.options, OptionNumber.Block2);
    const block = blockOption ? decodeBlock(blockOption.value) : null;
    let more: boolean;
    if (blockOption === undefined) {
      // the whole representation in one response: only valid as block 0 and no bigger than a block
      if (num !== 0 || response.payload.length > this.blockSize_bytes) {
        this.abort('BAD_RESPONSE', `block ${num}: a response without Block2 (${response.payload.length} bytes)`);
        return;
      }
      more = false;
    } else if (block === null || block.num !== num || block.size_bytes !== this.blockSize_bytes) {
      this.abort('BAD_RESPONSE', `asked for block ${num}/${this.blockSize_bytes}, got ${block ? `${block.num}/${block.size_bytes}` : 'a malformed Block2'}`);
      return;
    } else more = block.more;
    if (response.payload.length > this.blockSize_bytes || (more && response.payload.length !== this.blockSize_bytes)) {
      this.abort('BAD_RESPONSE', `block ${num} has ${response.payload.length} bytes (block size ${this.blockSize_bytes}, M=${more ? 1 : 0})`);
      return;
    }
    if (!more) this.setLastBlock(num, `M=0 at block ${num}`);
    if (this.done) return;
    if (num < this.nextToDeliver || this.received.has(num)) return; // a duplicate
    const bytes = Buffer.from(response.payload); // own copy: do not pin the datagram
    this.held_bytes += bytes.length;
    assert(this.held_bytes <= this.budget_bytes, `download holds ${this.held_bytes} bytes > window × block size ${this.budget_bytes}`);
    this.highWater_bytes = Math.max(this.highWater_bytes, this.held_bytes);
    this.received.set(num, bytes);
    void this.pump();
  }

  private setLastBlock(last: number, why: string): void {
    if (this.lastBlock !== null && this.lastBlock !== last) {
      this.abort('SIZE_CHANGED', `the end moved from block ${this.lastBlock} to ${last} (${why})`);
      return;
    }
    if (last < this.nextToDeliver) {
      this.abort('BAD_RESPONSE', `the resource ends at block ${last}, before block ${this.nextToDeliver} (${why})`);
      return;
    }
    this.lastBlock = last;
    // forget whatever lies past the end
    for (const n of this.inFlight) if (n > last) this.inFlight.delete(n);
    for (const [n, t] of this.retryTimers) if (n > last) (this.retryTimers.delete(n), t.cancel());
    for (const n of this.refused.keys()) if (n > last) this.refused.delete(n);
    this.judgeRefusals();
  }

  /** A 4.xx for the block the window waits on is final: that block exists (the one before it had M=1). */
  private judgeRefusals(): void {
    const code = this.refused.get(this.nextToDeliver);
    if (code !== undefined && !this.done) this.abort('SERVER_REFUSED', `the server answered ${code} for block ${this.nextToDeliver}`, code);
  }

  private async pump(): Promise<void> {
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (;;) {
        if (this.done) return;
        const bytes = this.received.get(this.nextToDeliver);
        if (bytes === undefined) break;
        const num = this.nextToDeliver;
        try {
          await this.o.onBlock(num, bytes);
        } catch (err) {
          this.abort('SINK_FAILED', `onBlock(${num}) failed: ${(err as Error).message}`, null, err);
          return;
        }
        if (this.done) return;
        this.received.delete(num);
        this.held_bytes -= bytes.length;
        this.nextToDeliver = num + 1;
        this.blocksDelivered++;
        this.bytesDelivered += bytes.length;
        this.o.onProgress?.({ blocksDelivered: this.blocksDelivered, bytesDelivered: this.bytesDelivered, nextBlock: this.nextToDeliver, totalBytes: this.totalBytes });
        if (this.lastBlock !== null && num >= this.lastBlock) {
          this.finishOk(num);
          return;
        }
        this.judgeRefusals();
        this.fill();
      }
    } finally {
      this.delivering = false;
    }
  }

  private finishOk(lastBlock: number): void {
    this.cleanup();
    this.resolve({
      etag: this.etag,
      totalBytes: this.totalBytes,
      blocks: this.blocksDelivered,
      bytes: this.bytesDelivered,
      lastBlock,
      retries: this.retries,
      highWater_bytes: this.highWater_bytes,
    });
  }

  private abort(reason: DownloadAbortReason, message: string, responseCode: string | null = null, cause?: unknown): void {
    if (this.done) return;
    this.cleanup();
    this.reject(new DownloadError(reason, message, this.nextToDeliver, responseCode, cause === undefined ? {} : { cause }));
  }

  private cleanup(): void {
    this.done = true;
    this.o.signal?.removeEventListener('abort', this.onAbortSignal);
    this.cancelInFlight.abort();
    this.inFlight.clear();
    for (const t of this.retryTimers.values()) t.cancel();
    this.retryTimers.clear();
    this.received.clear();
    this.held_bytes = 0;
  }
}
