/**
 * Test helpers for the dashboard: an SSE reader that parses the wire framing itself (fields,
 * comments, blank-line dispatch) over a fetch() body, and a snapshot factory.
 */
import type { FleetSnapshot } from '../../src/dashboard/index.js';

export interface SseEvent {
  event: string;
  id: string | undefined;
  data: string;
}

/** Reads one text/event-stream body and splits it into events exactly as the SSE spec frames them. */
export class SseReader {
  readonly comments: string[] = [];
  readonly retries: number[] = [];
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private queue: SseEvent[] = [];
  private ended = false;
  private event = '';
  private data: string[] = [];
  private id: string | undefined;

  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader();
  }

  /** The next event, or null when the stream ends; rejects after timeout_ms of silence. */
  async next(timeout_ms = 20_000): Promise<SseEvent | null> {
    for (let reads = 0; reads < 100_000; reads++) {
      const ev = this.queue.shift();
      if (ev) return ev;
      if (this.ended) return null;
      await this.pull(timeout_ms);
    }
    throw new Error('SseReader: too many reads without an event');
  }

  /** Read until a comment line arrives (heartbeats). */
  async nextComment(timeout_ms = 20_000): Promise<string> {
    const seen = this.comments.length;
    for (let reads = 0; reads < 100_000; reads++) {
      const c = this.comments[seen];
      if (c !== undefined) return c;
      if (this.ended) throw new Error('SseReader: stream ended before a comment');
      await this.pull(timeout_ms);
    }
    throw new Error('SseReader: too many reads without a comment');
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }

  private async pull(timeout_ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`SseReader: nothing for ${timeout_ms} ms`)), timeout_ms);
    });
    try {
      const r = await Promise.race([this.reader.read(), timeout]);
      if (r.done) {
        this.ended = true;
        this.buffer += this.decoder.decode();
      } else this.buffer += this.decoder.decode(r.value, { stream: true });
    } finally {
      clearTimeout(timer);
    }
    this.parse();
  }

  private parse(): void {
    for (;;) {
      const nl = this.buffer.search(/\r\n|\r|\n/);
      if (nl < 0) return;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + (this.buffer.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (this.data.length > 0) this.queue.push({ event: this.event || 'message', id: this.id, data: this.data.join('\n') });
        this.event = '';
        this.data = [];
        continue;
      }
      if (line.startsWith(':')) {
        this.comments.push(line.slice(1).trim());
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') this.event = value;
      else if (field === 'data') this.data.push(value);
      else if (field === 'id') this.id = value;
      else if (field === 'retry') this.retries.push(Number(value));
    }
  }
}

/** Open /events and return its reader (throws unless 200 text/event-stream). */
export async function openEvents(url: string): Promise<{ res: Response; sse: SseReader }> {
  const res = await fetch(new URL('events', url));
  if (res.status !== 200 || !res.body) throw new Error(`GET /events: ${res.status}`);
  return { res, sse: new SseReader(res.body) };
}

/** A fleet snapshot of `devices` devices, `updated` of them on 1.1.0 and idle, the rest downloading 1.0.0. */
export function snapshot(i: number, devices: number, updated: number, extra: Partial<FleetSnapshot> = {}): FleetSnapshot {
  return {
    at_ms: i * 1000,
    wall_ms: i * 10,
    devices,
    byState: updated < devices ? { idle: updated, downloading: devices - updated } : { idle: devices },
    byVersion: updated > 0 ? { '1.0.0': devices - updated, '1.1.0': updated } : { '1.0.0': devices },
    updated,
    bricked: 0,
    failing: [],
    done: false,
    ...extra,
  };
}
