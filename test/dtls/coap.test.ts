/**
 * node-coap's server on the DTLS socket adapter: requests reach the handler once, and a duplicate
 * confirmable request (same Message ID, e.g. the ACK was lost) is answered with the very same
 * ACK — node-coap alone would not, since the adapter is not a dgram.Socket.
 */
import coap from 'coap';
import { afterEach, describe, expect, it } from 'vitest';
import { DtlsPskClient } from '../../src/dtls/client.js';
import { DtlsCoapSocket, DtlsServer } from '../../src/dtls/index.js';
import { IDENTITY, KEY, waitFor } from './helpers.js';

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** A CoAP request: version 1, type, token "tok1", Uri-Path "fw". */
function coapRequest(type: 0 | 1, messageId: number): Buffer {
  const b = Buffer.from([0x44 | (type << 4), 0x01, messageId >> 8, messageId & 0xff, ...Buffer.from('tok1'), 0xb2, ...Buffer.from('fw')]);
  return b;
}

async function setup(handlerDelay_ms = 0): Promise<{ client: DtlsPskClient; calls: () => number; socket: DtlsCoapSocket }> {
  const server = new DtlsServer({ psk: { [IDENTITY]: KEY } });
  const { port } = await server.listen();
  const socket = new DtlsCoapSocket(server);
  let calls = 0;
  const coapServer = coap.createServer((req, res) => {
    calls++;
    const answer = (): void => {
      res.end(`manifest for ${req.url} #${calls}`);
    };
    if (handlerDelay_ms > 0) setTimeout(answer, handlerDelay_ms);
    else answer();
  });
  coapServer.listen(socket);
  const client = await DtlsPskClient.connect({ host: '127.0.0.1', port, identity: IDENTITY, psk: KEY });
  cleanup.push(() => server.close(), () => socket.close(), () => coapServer.close(), () => client.close());
  return { client, calls: () => calls, socket };
}

describe('DtlsCoapSocket with node-coap', () => {
  it('a duplicated CON request is processed once and both copies get the same piggybacked ACK', async () => {
    const { client, calls, socket } = await setup();
    const replies: Buffer[] = [];
    client.on('message', (m) => replies.push(m));
    client.send(coapRequest(0, 0x1234));
    await waitFor(() => replies.length === 1);
    client.send(coapRequest(0, 0x1234));
    await waitFor(() => replies.length === 2);
    expect(calls()).toBe(1);
    expect(replies[1]?.equals(replies[0] ?? Buffer.alloc(0))).toBe(true);
    expect((replies[0]?.[0] ?? 0) >> 4).toBe(0x6); // version 1, ACK
    expect(replies[0]?.readUInt16BE(2)).toBe(0x1234);
    expect(replies[0]?.toString()).toContain('manifest for /fw #1');
    expect(socket.counters.duplicatesAnswered).toBe(1);
    // a new Message ID is a new request
    client.send(coapRequest(0, 0x1235));
    await waitFor(() => replies.length === 3);
    expect(calls()).toBe(2);
  });

  it('a slow handler: the duplicate gets the same empty ACK, and the separate response still comes once', async () => {
    const { client, calls } = await setup(300);
    const replies: Buffer[] = [];
    client.on('message', (m) => replies.push(m));
    client.send(coapRequest(0, 0x0042));
    await waitFor(() => replies.length === 1); // empty ACK after node-coap's piggyback wait
    client.send(coapRequest(0, 0x0042));
    await waitFor(() => replies.length === 3);
    const [ack, dupAck, separate] = replies;
    expect(ack?.length).toBe(4);
    expect(dupAck?.equals(ack ?? Buffer.alloc(0))).toBe(true);
    expect((separate?.[0] ?? 0) >> 4).toBe(0x4); // CON separate response
    expect(separate?.toString()).toContain('manifest for /fw #1');
    expect(calls()).toBe(1);
  });

  it('a duplicated NON request is processed once', async () => {
    const { client, calls, socket } = await setup();
    const replies: Buffer[] = [];
    client.on('message', (m) => replies.push(m));
    client.send(coapRequest(1, 0x0777));
    await waitFor(() => replies.length === 1);
    client.send(coapRequest(1, 0x0777));
    await waitFor(() => socket.counters.duplicatesDropped === 1);
    expect(calls()).toBe(1);
  });
});
