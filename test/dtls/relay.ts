/**
 * A deterministic UDP relay for tests: clients talk to the relay, the relay talks to the server
 * from one socket per client. Every datagram gets an index per client and direction, and a decision function
 * of (direction, index, bytes) says what happens to it: pass, drop, duplicate, hold (released
 * after the next datagram in that direction: a reorder), or be replaced by other datagrams.
 * Decisions are pure functions of the index (and a seed), so a run replays exactly.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';

export type Direction = 'to-server' | 'to-client';
export type Decision = 'pass' | 'drop' | 'dup' | 'hold' | Buffer[];
export type Decide = (direction: Direction, index: number, datagram: Buffer) => Decision;

export class Relay {
  private readonly front: Socket = createSocket('udp4');
  private readonly backs = new Map<string, Socket>();
  private readonly held: Record<Direction, Buffer[]> = { 'to-server': [], 'to-client': [] };
  readonly counts: Record<Direction, number> = { 'to-server': 0, 'to-client': 0 };
  /** Every datagram seen, before the decision (for replay tests). */
  readonly log: { direction: Direction; datagram: Buffer; client: { address: string; port: number } }[] = [];
  port = 0;

  constructor(
    private readonly serverPort: number,
    private readonly decide: Decide = () => 'pass',
  ) {}

  async start(): Promise<number> {
    await new Promise<void>((r) => this.front.bind(0, '127.0.0.1', () => r()));
    this.port = this.front.address().port;
    this.front.on('message', (msg, rinfo) => {
      const key = `${rinfo.address}/${rinfo.port}`;
      let back = this.backs.get(key);
      if (!back) {
        const b = createSocket('udp4');
        b.bind(0, '127.0.0.1');
        b.on('message', (reply) => this.route('to-client', reply, (d) => this.front.send(d, rinfo.port, rinfo.address), rinfo));
        this.backs.set(key, b);
        back = b;
      }
      const s = back;
      this.route('to-server', msg, (d) => s.send(d, this.serverPort, '127.0.0.1'), rinfo);
    });
    return this.port;
  }

  /** Send raw bytes to the server as if from the client at `client` (for injection tests). */
  inject(client: { address: string; port: number }, datagram: Buffer): void {
    this.backs.get(`${client.address}/${client.port}`)?.send(datagram, this.serverPort, '127.0.0.1');
  }

  private readonly perClient = new Map<string, number>();

  private route(direction: Direction, datagram: Buffer, send: (d: Buffer) => void, client: { address: string; port: number }): void {
    // Indices count per client and direction, so concurrent clients do not shift each other's decisions.
    const counter = `${direction}/${client.address}/${client.port}`;
    const index = this.perClient.get(counter) ?? 0;
    this.perClient.set(counter, index + 1);
    this.counts[direction]++;
    this.log.push({ direction, datagram: Buffer.from(datagram), client: { address: client.address, port: client.port } });
    const d = this.decide(direction, index, datagram);
    const flush = (): void => {
      for (const h of this.held[direction].splice(0)) send(h);
    };
    if (d === 'hold') {
      this.held[direction].push(datagram);
      return;
    }
    if (d === 'drop') return;
    if (Array.isArray(d)) for (const part of d) send(part);
    else send(datagram);
    if (d === 'dup') send(datagram);
    flush();
  }

  close(): void {
    this.front.close();
    for (const b of this.backs.values()) b.close();
  }
}
