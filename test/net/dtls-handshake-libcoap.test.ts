/**
 * Both DtlsTransport handshake backends against an independent server, libcoap's
 * coap-server-openssl (OpenSSL's DTLS 1.2: cookie exchange, an identity hint, its own suite
 * preference) on 127.0.0.1: connect, GET a resource PUT there by coap-client-openssl, close; the
 * suite taken when only one is offered; a wrong key fails with HANDSHAKE_FAILED for both (after
 * every attempt: OpenSSL drops the Finished silently, no alert).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScaledClock } from '../../src/clock.js';
import type { CipherSuiteName } from '../../src/dtls/index.js';
import { CoapClient, DtlsTransport, NetError } from '../../src/net/index.js';
import type { DtlsHandshakeBackend } from '../../src/net/dtls-transport.js';
import { Prng } from '../../src/prng.js';
import { hasLibcoap, startLibcoapServer } from './libcoap.js';
import type { LibcoapServer } from './libcoap.js';

const BACKENDS: DtlsHandshakeBackend[] = ['ota-sim', 'node-dtls-client'];
const clock = new ScaledClock(1);
const CONTENT = 'resource body put by coap-client-openssl\n'.repeat(3);

let libcoap: LibcoapServer | null = null;

describe.skipIf(!hasLibcoap())('handshake backends against libcoap coap-server-openssl', () => {
  beforeAll(async () => {
    libcoap = await startLibcoapServer();
    const dir = mkdtempSync(join(tmpdir(), 'ota-sim-hs-'));
    const file = join(dir, 'r.txt');
    writeFileSync(file, CONTENT);
    await libcoap.put('/r', file);
  }, 60_000);
  afterAll(() => libcoap?.stop());

  const open = (backend: DtlsHandshakeBackend, extra: Partial<Parameters<typeof DtlsTransport.open>[0]> = {}): Promise<DtlsTransport> => {
    if (!libcoap) throw new Error('libcoap did not start');
    return DtlsTransport.open({ host: '127.0.0.1', port: libcoap.dtlsPort, identity: 'ota-sim-test', psk: libcoap.key, clock, handshake: backend, handshakeTimeout_ms: 4000, ...extra });
  };

  async function getResource(t: DtlsTransport): Promise<{ code: string; text: string }> {
    const client = new CoapClient({ transport: t, clock, prng: new Prng(t.localPort), timing: { ackTimeout_ms: 2000 } });
    const r = await client.request({ method: 'GET', path: '/r' });
    return { code: r.code, text: r.payload.toString() };
  }

  for (const backend of BACKENDS) {
    it(`${backend}: connects (cookie, identity hint), GETs the resource, closes`, async () => {
      const t = await open(backend);
      try {
        expect(t.handshakeBackend).toBe(backend);
        expect(t.recordLayer).toBe('own');
        expect(t.handshakeAttempts).toBe(1);
        expect(await getResource(t)).toEqual({ code: '2.05', text: CONTENT });
        const sealedBefore = t.recordStats?.sealed ?? 0;
        t.close();
        expect(t.closed).toBe(true);
        expect(t.recordStats?.sealed).toBe(sealedBefore + 1); // the close_notify
      } finally {
        t.abort();
      }
    });

    for (const only of ['TLS_PSK_WITH_AES_128_CCM', 'TLS_PSK_WITH_AES_128_GCM_SHA256', 'TLS_PSK_WITH_AES_128_CCM_8'] as CipherSuiteName[]) {
      it(`${backend}: offering ${only} only, it is what runs`, async () => {
        const t = await open(backend, { ciphers: [only] });
        try {
          if (backend === 'ota-sim') expect(t.cipherSuite).toBe(only);
          expect(t.recordLayer).toBe('own');
          expect(await getResource(t)).toEqual({ code: '2.05', text: CONTENT });
        } finally {
          t.abort();
        }
      });
    }

    it(`${backend}: a wrong key fails with HANDSHAKE_FAILED after its attempts (OpenSSL sends no alert)`, async () => {
      const err = await open(backend, { psk: 'not-the-key', handshakeTimeout_ms: 300, handshakeAttempts: 2 }).then(
        (t) => {
          t.abort();
          return null;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NetError);
      expect((err as NetError).code).toBe('HANDSHAKE_FAILED');
      // OpenSSL drops a Finished that does not authenticate without an alert (DTLS may): both
      // backends wait out every attempt, unlike against our server, which sends bad_record_mac
      expect((err as NetError).message).toMatch(/attempt 1: no handshake within 300 ms; attempt 2: no handshake within 600 ms/);
    });
  }

  it('ota-sim without the default suites: a list ota-sim cannot offer falls back to node-dtls-client', async () => {
    const t = await open('ota-sim', { ciphers: ['TLS_PSK_WITH_AES_256_GCM_SHA384'] });
    try {
      expect(t.handshakeBackend).toBe('node-dtls-client');
      expect(t.recordLayer).toBe('library');
      expect(await getResource(t)).toEqual({ code: '2.05', text: CONTENT });
    } finally {
      t.abort();
    }
  });
});
