/**
 * A UDP relay between one device and the update server for the agent tests (127.0.0.1 only):
 * - `rebind()` models NAT rebinding: the relay's upstream sockets are closed and the next datagram
 *   from the device leaves from a new source port, so the server sees a new address (and, over
 *   DTLS, has no session for it). Answers sent to the old port are lost.
 * - `toClient(datagram)` may drop a server→device datagram (return null) or rewrite it.
 * Counts what it dropped, for assertions.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { decodeMessage, encodeMessage } from '../../src/net/message.js';
import { OptionNumber, findOption } from '../../src/net/options.js';

export class NatRelay {
  private readonly front: Socket = createSocket('udp4');
  private readonly backs = new Map<string, Socket>();
  private closed = false;
  port = 0;
  dropped = 0;
  /** Upstream source ports used so far (one per rebind per device address). */
  readonly upstreamPorts: number[] = [];

  constructor(
    private readonly serverPort: number,
    public toClient: (datagram: Buffer) => Buffer | null = (d) => d,
  ) {}

  async start(): Promise<number> {
    await new Promise<void>((r) => this.front.bind(0, '127.0.0.1', () => r()));
    this.port = this.front.address().port;
    this.front.on('message', (msg, rinfo) => {
      if (this.closed) return;
      const key = `${rinfo.address}/${rinfo.port}`;
      let back = this.backs.get(key);
      if (!back) {
        const b = createSocket('udp4');
        b.on('message', (reply) => {
          if (this.closed || this.backs.get(key) !== b) return;
          const out = this.toClient(reply);
          if (out === null) {
            this.dropped++;
            return;
          }
          this.front.send(out, rinfo.port, rinfo.address);
        });
        b.on('error', () => {});
        this.backs.set(key, b);
        back = b;
        b.bind(0, '127.0.0.1', () => {
          this.upstreamPorts.push(b.address().port);
          b.send(msg, this.serverPort, '127.0.0.1');
        });
        return;
      }
      back.send(msg, this.serverPort, '127.0.0.1');
    });
    return this.port;
  }

  /** NAT rebinding: every device address gets a new upstream source port from its next datagram on. */
  rebind(): void {
    for (const b of this.backs.values()) b.close();
    this.backs.clear();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.front.close();
    this.rebind();
  }
}

/**
 * A toClient filter (plain CoAP only) dropping every Observe notification — a CON or NON message
 * with the Observe option — after the first `keep` of them. Responses piggybacked on ACKs
 * (registrations, polls, blocks) pass.
 */
export function dropNotifications(keep = 0): (d: Buffer) => Buffer | null {
  let seen = 0;
  return (d) => {
    const m = decodeMessage(d);
    if (!m || (m.type !== 'CON' && m.type !== 'NON') || findOption(m.options, OptionNumber.Observe) === undefined) return d;
    seen++;
    return seen <= keep ? d : null;
  };
}

/** A toClient rewrite (plain CoAP only): every response carrying an ETag gets `etag` instead. */
export function replaceEtag(etag: Buffer): (d: Buffer) => Buffer | null {
  return (d) => {
    const m = decodeMessage(d);
    if (!m || findOption(m.options, OptionNumber.ETag) === undefined) return d;
    return encodeMessage({ ...m, options: m.options.map((o) => (o.number === OptionNumber.ETag ? { number: o.number, value: etag } : o)) });
  };
}
