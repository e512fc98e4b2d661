/**
 * A tiny CoAP (RFC 7252) codec and request/response client for the server tests, so tests
 * control every byte (message type, Message ID, token, Observe, Block2) over UDP and DTLS.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { DtlsPskClient } from '../../src/dtls/index.js';
import type { DtlsClientOptions } from '../../src/dtls/index.js';

export const OPT = { observe: 6, uriPath: 11, contentFormat: 12, uriQuery: 15, etag: 4, block2: 23, size2: 28 } as const;

export interface CoapMsg {
  type: 0 | 1 | 2 | 3;
  code: number;
  mid: number;
  token: Buffer;
  options: { num: number; value: Buffer }[];
  payload: Buffer;
}

export const code = (c: string): number => {
  const [a = '0', b = '0'] = c.split('.');
  return (Number(a) << 5) | Number(b);
};
export const codeText = (n: number): string => `${n >> 5}.${String(n & 31).padStart(2, '0')}`;

function ext(n: number): { nib: number; bytes: number[] } {
  if (n < 13) return { nib: n, bytes: [] };
  if (n < 269) return { nib: 13, bytes: [n - 13] };
  return { nib: 14, bytes: [(n - 269) >> 8, (n - 269) & 0xff] };
}

export function encode(m: CoapMsg): Buffer {
  const out: number[] = [0x40 | (m.type << 4) | m.token.length, m.code, m.mid >> 8, m.mid & 0xff, ...m.token];
  let prev = 0;
  for (const o of [...m.options].sort((a, b) => a.num - b.num)) {
    const d = ext(o.num - prev);
    const l = ext(o.value.length);
    out.push((d.nib << 4) | l.nib, ...d.bytes, ...l.bytes, ...o.value);
    prev = o.num;
  }
  if (m.payload.length > 0) out.push(0xff, ...m.payload);
  return Buffer.from(out);
}

export function decode(b: Buffer): CoapMsg {
  const tkl = (b[0] ?? 0) & 15;
  const m: CoapMsg = { type: (((b[0] ?? 0) >> 4) & 3) as 0 | 1 | 2 | 3, code: b[1] ?? 0, mid: b.readUInt16BE(2), token: b.subarray(4, 4 + tkl), options: [], payload: Buffer.alloc(0) };
  let i = 4 + tkl;
  let num = 0;
  while (i < b.length) {
    const byte = b[i++] ?? 0;
    if (byte === 0xff) {
      m.payload = b.subarray(i);
      break;
    }
    let d = byte >> 4;
    let l = byte & 15;
    if (d === 13) d = 13 + (b[i++] ?? 0);
    else if (d === 14) {
      d = 269 + b.readUInt16BE(i);
      i += 2;
    }
    if (l === 13) l = 13 + (b[i++] ?? 0);
    else if (l === 14) {
      l = 269 + b.readUInt16BE(i);
      i += 2;
    }
    num += d;
    m.options.push({ num, value: b.subarray(i, i + l) });
    i += l;
  }
  return m;
}

export function uint(n: number): Buffer {
  if (n === 0) return Buffer.alloc(0);
  const out: number[] = [];
  while (n > 0) {
    out.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Buffer.from(out);
}

export function optUint(m: CoapMsg, num: number): number | null {
  const o = m.options.find((x) => x.num === num);
  if (!o) return null;
  let v = 0;
  for (const b of o.value) v = v * 256 + b;
  return v;
}

export function pathOptions(path: string, query: string[] = []): { num: number; value: Buffer }[] {
  return [
    ...path.split('/').filter((s) => s !== '').map((s) => ({ num: OPT.uriPath, value: Buffer.from(s) })),
    ...query.map((q) => ({ num: OPT.uriQuery, value: Buffer.from(q) })),
  ];
}

/** How the client answers a confirmable message it receives (a notification, a separate response). */
export type Answer = 'ack' | 'rst' | 'ignore';

/** A CoAP endpoint over UDP or DTLS that collects every message it receives. */
export class TestClient {
  readonly inbox: CoapMsg[] = [];
  /** Every datagram received, as bytes, in order (parallel to inbox). */
  readonly raw: Buffer[] = [];
  /** What to answer a confirmable message with (default: ACK, like a real client). */
  answer: (m: CoapMsg) => Answer = () => 'ack';
  /** The DTLS connection, when this is a DTLS client. */
  dtlsClient: DtlsPskClient | null = null;
  private static instances = 0;
  /** Tokens differ between clients too, so a token names one exchange in a whole test. */
  private readonly tokenPrefix = TestClient.instances++ & 0xffff;
  private mid = 1;
  private tok = 1;
  private waiters: (() => void)[] = [];

  private constructor(private readonly sendRaw: (b: Buffer) => void, private readonly closer: () => void) {}

  static async udp(port: number): Promise<TestClient> {
    const sock: Socket = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const c = new TestClient((b) => sock.send(b, port, '127.0.0.1'), () => sock.close());
    sock.on('message', (m) => c.receive(m));
    return c;
  }

  static async dtls(port: number, identity: string, key: string, options: Partial<DtlsClientOptions> = {}): Promise<TestClient> {
    const d = await DtlsPskClient.connect({ host: '127.0.0.1', port, identity, psk: Buffer.from(key), ...options });
    const c = new TestClient((b) => d.send(b), () => d.close());
    c.dtlsClient = d;
    d.on('message', (m) => c.receive(m));
    return c;
  }

  private receive(b: Buffer): void {
    const m = decode(b);
    this.inbox.push(m);
    this.raw.push(Buffer.from(b));
    // Acknowledge confirmable messages (notifications, separate responses) like a real client.
    if (m.type === 0 && m.code !== 0) {
      const a = this.answer(m);
      if (a !== 'ignore') this.sendRaw(encode({ type: a === 'ack' ? 2 : 3, code: 0, mid: m.mid, token: Buffer.alloc(0), options: [], payload: Buffer.alloc(0) }));
    }
    for (const w of this.waiters.splice(0)) w();
  }

  send(m: Partial<CoapMsg> & { code: number }): CoapMsg {
    const full: CoapMsg = { type: 0, mid: this.mid++ & 0xffff, token: Buffer.from([0xa0, this.tokenPrefix >> 8, this.tokenPrefix & 0xff, this.tok & 0xff, (this.tok++ >> 8) & 0xff]), options: [], payload: Buffer.alloc(0), ...m };
    this.sendRaw(encode(full));
    return full;
  }

  sendRawBytes(b: Buffer): void {
    this.sendRaw(b);
  }

  /** Wait for the first message (from now on, or already received) that satisfies pred. */
  async waitFor(pred: (m: CoapMsg) => boolean, from = 0): Promise<CoapMsg> {
    for (;;) {
      const found = this.inbox.slice(from).find((m) => pred(m) && !(m.code === 0 && m.type === 2));
      if (found) return found;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Like waitFor, but gives up after `within_ms` of real time (null). */
  async poll(pred: (m: CoapMsg) => boolean, from: number, within_ms: number): Promise<CoapMsg | null> {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      for (const w of this.waiters.splice(0)) w();
    }, within_ms);
    try {
      for (;;) {
        const found = this.inbox.slice(from).find((m) => pred(m) && !(m.code === 0 && m.type === 2));
        if (found) return found;
        if (expired) return null;
        await new Promise<void>((r) => this.waiters.push(r));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A confirmable request over a lossy path: sent, and sent again with the same Message ID and
   * token (a CoAP retransmission) until its response arrives; the wait doubles from `first_ms`.
   */
  async reliable(m: Partial<CoapMsg> & { code: number }, first_ms = 20, max_ms = 200): Promise<CoapMsg> {
    const from = this.inbox.length;
    const sent = this.send(m);
    const bytes = encode(sent);
    for (let wait = first_ms; ; wait = Math.min(max_ms, wait * 2)) {
      const r = await this.poll((x) => x.token.equals(sent.token) && x.code !== 0, from, wait);
      if (r) return r;
      this.sendRaw(bytes);
    }
  }

  /** Send a request and wait for its response (piggybacked or separate, matched by token). */
  async request(m: Partial<CoapMsg> & { code: number }): Promise<CoapMsg> {
    const from = this.inbox.length;
    const sent = this.send(m);
    return this.waitFor((r) => r.token.equals(sent.token) && r.code !== 0, from);
  }

  close(): void {
    this.closer();
  }
}
