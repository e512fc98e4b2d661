/**
 * Interop with independent DTLS 1.2 PSK clients over real UDP on 127.0.0.1: node-dtls-client,
 * OpenSSL s_client, GnuTLS gnutls-cli, and libcoap's coap-client-openssl through node-coap.
 * Every exchange carries application data both ways and checks it on both ends.
 */
import coap from 'coap';
import { afterEach, describe, expect, it } from 'vitest';
import { DtlsCoapSocket, DtlsServer } from '../../src/dtls/index.js';
import type { CipherSuiteName, DtlsSession } from '../../src/dtls/index.js';
import { IDENTITY, KEY_HEX, echoServer, hasTool, nodeDtlsRoundTrip, runTool } from './helpers.js';

const SUITES: { name: CipherSuiteName; openssl: string; gnutls: string }[] = [
  { name: 'TLS_PSK_WITH_AES_128_CCM_8', openssl: 'PSK-AES128-CCM8', gnutls: 'AES-128-CCM-8' },
  { name: 'TLS_PSK_WITH_AES_128_CCM', openssl: 'PSK-AES128-CCM', gnutls: 'AES-128-CCM' },
  { name: 'TLS_PSK_WITH_AES_128_GCM_SHA256', openssl: 'PSK-AES128-GCM-SHA256', gnutls: 'AES-128-GCM' },
];

let server: DtlsServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

/** Collect what the server received, and the sessions. */
function record(s: DtlsServer): { received: string[]; sessions: DtlsSession[] } {
  const out = { received: [] as string[], sessions: [] as DtlsSession[] };
  s.on('message', (d) => out.received.push(d.toString()));
  s.on('session', (x) => out.sessions.push(x));
  return out;
}

describe('node-dtls-client 2.0.3', () => {
  for (const suite of SUITES) {
    it(`${suite.name}: handshake and data both ways`, async () => {
      const started = await echoServer();
      server = started.server;
      const seen = record(server);
      const reply = await nodeDtlsRoundTrip(started.port, 'hello from node-dtls-client', suite.name);
      expect(reply).toBe('echo:hello from node-dtls-client');
      expect(seen.received).toEqual(['hello from node-dtls-client']);
      expect(seen.sessions[0]?.cipherSuite).toBe(suite.name);
      expect(seen.sessions[0]?.identity.toString()).toBe(IDENTITY);
    });
  }
});

describe.skipIf(!hasTool('openssl'))('openssl s_client -dtls1_2', () => {
  for (const suite of SUITES) {
    for (const hint of [undefined, 'ota-sim-hint']) {
      it(`${suite.openssl}, ${hint === undefined ? 'no identity hint' : 'with identity hint'}`, async () => {
        const started = await echoServer(hint === undefined ? {} : { identityHint: hint });
        server = started.server;
        const seen = record(server);
        const args = ['s_client', '-dtls1_2', '-connect', `127.0.0.1:${started.port}`, '-psk', KEY_HEX, '-psk_identity', IDENTITY, '-cipher', suite.openssl];
        const run = await runTool('openssl', args, 'hello from openssl\n', /echo:hello from openssl/);
        expect(run.stdout).toContain('echo:hello from openssl');
        expect(run.stdout).toContain(`Cipher is ${suite.openssl}`);
        expect(run.stdout).toContain('Extended master secret: yes');
        expect(run.stdout).toContain('Secure Renegotiation IS supported');
        expect(seen.received).toEqual(['hello from openssl\n']);
        expect(seen.sessions[0]?.cipherSuite).toBe(suite.name);
      });
    }
  }

  it('fragmented server flight at the smallest MTU s_client allows (-mtu 256, server mtu 64)', async () => {
    const started = await echoServer({ mtu_bytes: 64, identityHint: 'a-rather-long-identity-hint-that-needs-fragmenting-too' });
    server = started.server;
    const args = ['s_client', '-dtls1_2', '-mtu', '256', '-connect', `127.0.0.1:${started.port}`, '-psk', KEY_HEX, '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8'];
    const run = await runTool('openssl', args, 'small mtu\n', /echo:small mtu/);
    expect(run.stdout).toContain('echo:small mtu');
  });

  it('wrong key: the handshake fails with an alert on both sides', async () => {
    const started = await echoServer();
    server = started.server;
    const failures: string[] = [];
    server.on('handshake-failed', (f) => failures.push(f.reason));
    const args = ['s_client', '-dtls1_2', '-connect', `127.0.0.1:${started.port}`, '-psk', 'ffff' + KEY_HEX.slice(4), '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8'];
    const run = await runTool('openssl', args, 'never delivered\n', null);
    expect(run.stdout + run.stderr).toMatch(/alert bad record mac/);
    expect(failures).toHaveLength(1);
    expect(server.stats().sessions).toBe(0);
  });
});

describe.skipIf(!hasTool('gnutls-cli'))('gnutls-cli --udp', () => {
  for (const suite of SUITES) {
    it(`${suite.gnutls}: handshake and data both ways`, async () => {
      const started = await echoServer({ identityHint: 'ota-sim' });
      server = started.server;
      const seen = record(server);
      const priority = `NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+${suite.gnutls}`;
      const args = ['--udp', '--priority', priority, '--pskusername', IDENTITY, '--pskkey', KEY_HEX, '-p', String(started.port), '127.0.0.1'];
      const run = await runTool('gnutls-cli', args, 'hello from gnutls\n', /echo:hello from gnutls/);
      expect(run.stdout).toContain('echo:hello from gnutls');
      expect(run.stdout).toContain(`(DTLS1.2-X.509)-(PSK)-(${suite.gnutls})`);
      expect(seen.received).toEqual(['hello from gnutls\n']);
      expect(seen.sessions[0]?.cipherSuite).toBe(suite.name);
    });
  }
});

describe.skipIf(!hasTool('coap-client-openssl'))('coap-client-openssl (libcoap) through node-coap', () => {
  it('GET and POST over coaps:// reach the node-coap handler and come back', async () => {
    // libcoap's -k takes the key as text.
    const keyText = 'coap-secret-key';
    server = new DtlsServer({ psk: { [IDENTITY]: Buffer.from(keyText) } });
    const { port } = await server.listen();
    const socket = new DtlsCoapSocket(server);
    const coapServer = coap.createServer((req, res) => {
      res.end(`${req.method} ${req.url} [${req.payload.toString()}]`);
    });
    coapServer.listen(socket);
    try {
      const get = await runTool('coap-client-openssl', ['-m', 'get', '-u', IDENTITY, '-k', keyText, `coaps://127.0.0.1:${port}/fw/manifest`], '', null);
      expect(get.stdout).toContain('GET /fw/manifest []');
      const post = await runTool('coap-client-openssl', ['-m', 'post', '-e', 'state=ok', '-u', IDENTITY, '-k', keyText, `coaps://127.0.0.1:${port}/report`], '', null);
      expect(post.stdout).toContain('POST /report [state=ok]');
    } finally {
      coapServer.close();
      socket.close();
    }
  });
});
