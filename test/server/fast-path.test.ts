/**
 * The DTLS fast path for artifact blocks and manifest polls answers exactly what node-coap's path
 * answers: the same requests to a server with it and one without give byte-identical replies
 * (ETag, Block2, Size2, Content-Format, payload, piggybacked ACK), the same metrics and the same
 * observations, and the fast path really took them (node-coap never saw them). Errors, Observe
 * registrations and anything unusual still go through node-coap.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { UpdateServer } from '../../src/server/index.js';
import { OPT, TestClient, code, decode, optUint, pathOptions, uint } from './coap-wire.js';
import { DEVICES, image, startServer } from './helpers.js';

const servers: UpdateServer[] = [];
const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
});

async function serverWith(fastPath: boolean): Promise<{ server: UpdateServer; uri: string; size: number }> {
  const server = await startServer({ artifactFastPath: fastPath, port: null });
  servers.push(server);
  const bytes = image('2.0.0', 5000);
  const art = await server.model.addArtifact({ package: 'main', bytes });
  return { server, uri: `/.u/c/${art.id}`, size: bytes.length };
}

async function client(server: UpdateServer): Promise<TestClient> {
  const d = DEVICES[0]!;
  const c = await TestClient.dtls(server.addresses().dtls!.port, d.identity, d.key);
  clients.push(c);
  return c;
}

/** The requests both servers get, in order; each with the same MID and token on both. */
function requests(uri: string): { type?: 0 | 1; options: { num: number; value: Buffer }[]; sameTokenAsPrevious?: boolean }[] {
  const p = pathOptions(uri);
  return [
    { options: [...p, { num: OPT.block2, value: uint(0x06) }] }, // block 0 of 1024
    { options: [...p, { num: OPT.block2, value: uint((2 << 4) | 6) }] }, // a middle block
    { options: [...p, { num: OPT.block2, value: uint((5 << 4) | 6) }, { num: OPT.size2, value: Buffer.alloc(0) }] }, // last block, Size2 asked
    { options: [...p, { num: OPT.block2, value: uint((3 << 4) | 5) }] }, // 512-byte blocks
    { options: [...p, { num: OPT.block2, value: uint((9 << 4) | 6) }] }, // past the end: 4.02 by node-coap
    { options: [...p, { num: OPT.block2, value: uint(0x07) }] }, // BERT: 4.02 by node-coap
    { options: [...pathOptions('/.u/c/nothing-here'), { num: OPT.block2, value: uint(0x06) }] }, // 4.04
    { type: 1, options: [...p, { num: OPT.block2, value: uint(0x16) }] }, // NON: node-coap
    { options: [...p] }, // no Block2: the first 1024 bytes, Block2 and Size2 in the answer
    { options: pathOptions('/.u/desired') }, // a manifest poll
    { options: [...pathOptions('/.u/desired'), { num: OPT.observe, value: Buffer.alloc(0) }] }, // Observe registration: node-coap
    { options: pathOptions('/.u/desired'), sameTokenAsPrevious: true }, // a poll with the observation's token ends it
    { options: pathOptions('/.u/nothing') }, // 4.04 by node-coap
  ];
}

let slowSize = 0;

async function run(fastPath: boolean): Promise<{ replies: Buffer[]; server: UpdateServer; observersAfter: number }> {
  const { server, uri, size } = await serverWith(fastPath);
  slowSize = size;
  const c = await client(server);
  const replies: Buffer[] = [];
  let mid = 100;
  let token = Buffer.alloc(0);
  for (const r of requests(uri)) {
    const from = c.inbox.length;
    if (!r.sameTokenAsPrevious) token = Buffer.of(0xf0, (mid + 1) & 0xff);
    const sent = c.send({ code: code('0.01'), type: r.type ?? 0, mid: mid++, token, options: r.options });
    const got = await c.waitFor((m) => m.token.equals(sent.token) && m.code !== 0, from);
    replies.push(c.raw[c.inbox.indexOf(got)]!);
  }
  // a retransmission of the first request (same MID, same token) gets the very same reply again
  const from = c.inbox.length;
  const first = requests(uri)[0]!;
  c.send({ code: code('0.01'), mid: 100, token: Buffer.of(0xf0, 101), options: first.options });
  const again = await c.waitFor((m) => m.code !== 0, from);
  replies.push(c.raw[c.inbox.indexOf(again)]!);
  return { replies, server, observersAfter: server.metrics().observers };
}

describe('DTLS fast path: artifact blocks and manifest polls', () => {
  it('answers byte for byte what node-coap answers, with the same metrics and observations', async () => {
    const slow = await run(false);
    const fast = await run(true);
    expect(fast.replies.length).toBe(slow.replies.length);
    for (let i = 0; i < slow.replies.length; i++) expect(fast.replies[i]!.toString('hex'), `reply ${i}`).toBe(slow.replies[i]!.toString('hex'));
    // the plain blocks were 2.05 piggybacked ACKs with the payload; the errors 4.02/4.04
    const codes = slow.replies.map((b) => `${b[1]! >> 5}.${String(b[1]! & 31).padStart(2, '0')}`);
    expect(codes).toEqual(['2.05', '2.05', '2.05', '2.05', '4.02', '4.02', '4.04', '2.05', '2.05', '2.05', '2.05', '2.05', '4.04', '2.05']);
    // the poll with the observation's token ended it, on both
    expect(slow.observersAfter).toBe(0);
    expect(fast.observersAfter).toBe(0);
    // Size2 asked on a later block is answered with the artifact's size (RFC 7959 §4), both ways
    const last = decode(slow.replies[2]!);
    expect(optUint(last, OPT.size2)).toBe(slowSize);
    const ms = slow.server.metrics();
    const mf = fast.server.metrics();
    for (const k of ['blocksServed', 'artifactBytesServed', 'errorResponses', 'manifestRequests'] as const) expect(mf[k], k).toBe(ms[k]);
    expect(mf.manifestRequests).toBe(3);
    expect(mf.requests.dtls).toBe(ms.requests.dtls);
  });

  it('takes the plain block requests away from node-coap (and leaves it the rest)', async () => {
    const { server, uri } = await serverWith(true);
    const c = await client(server);
    let seenByCoap = 0;
    // node-coap's 'request' event fires for every request it processes
    const coapServer = (server as unknown as { dtlsCoap: { on(e: 'request', f: () => void): void } }).dtlsCoap;
    coapServer.on('request', () => seenByCoap++);
    for (const [i, r] of requests(uri).entries()) {
      const from = c.inbox.length;
      const sent = c.send({ code: code('0.01'), type: r.type ?? 0, mid: 500 + i, options: r.options });
      await c.waitFor((m) => m.token.equals(sent.token) && m.code !== 0, from);
    }
    // 5 plain CON block requests and 2 polls answered by the fast path; 6 (4 errors, the NON, the
    // Observe registration) by node-coap
    expect(seenByCoap).toBe(6);
    expect(server.metrics().blocksServed).toBe(6);
  });
});
