/**
 * libcoap's `coap-server-openssl` as an independent peer, on 127.0.0.1 only. libcoap needs an
 * explicit port (UDP on P, DTLS on P+1): pick P by binding throwaway sockets to port 0, then retry
 * with another if the server cannot bind. Resources are created with `coap-client-openssl -m put`.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';

export interface LibcoapServer {
  udpPort: number;
  dtlsPort: number;
  identityHint: string;
  key: string;
  put(path: string, file: string): Promise<void>;
  stop(): void;
}

export function hasLibcoap(): boolean {
  return ['coap-server-openssl', 'coap-client-openssl'].every((t) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status === 0);
}

async function freeUdpPortPair(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const a = createSocket('udp4');
    await new Promise<void>((r) => a.bind(0, '127.0.0.1', () => r()));
    const port = a.address().port;
    const b = createSocket('udp4');
    const ok = await new Promise<boolean>((r) => {
      b.once('error', () => r(false));
      b.bind(port + 1, '127.0.0.1', () => r(true));
    });
    a.close();
    b.close();
    if (ok && port < 65535) return port;
  }
  throw new Error('no free UDP port pair on 127.0.0.1');
}

/** Resolve once the server answers a CoAP ping (empty CON → RST) on its UDP port. */
async function pingable(port: number, child: ChildProcess): Promise<boolean> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  try {
    for (let i = 0; i < 50 && child.exitCode === null; i++) {
      const got = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 100);
        s.once('message', () => {
          clearTimeout(t);
          resolve(true);
        });
        s.send(Buffer.from([0x40, 0x00, 0x12, i]), port, '127.0.0.1');
      });
      if (got) return true;
    }
    return false;
  } finally {
    s.close();
  }
}

export async function startLibcoapServer(options: { key?: string; identityHint?: string; maxResources?: number } = {}): Promise<LibcoapServer> {
  const key = options.key ?? 'ota-sim-secret-key';
  const identityHint = options.identityHint ?? 'ota-sim';
  for (let attempt = 0; attempt < 5; attempt++) {
    const udpPort = await freeUdpPortPair();
    const child = spawn('coap-server-openssl', ['-A', '127.0.0.1', '-p', String(udpPort), '-d', String(options.maxResources ?? 10), '-k', key, '-h', identityHint, '-v', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.resume();
    if (!(await pingable(udpPort, child))) {
      child.kill('SIGKILL');
      continue;
    }
    return {
      udpPort,
      dtlsPort: udpPort + 1,
      identityHint,
      key,
      put: (path, file) =>
        new Promise<void>((resolve, reject) => {
          const c = spawn('coap-client-openssl', ['-m', 'put', '-b', '1024', '-f', file, `coap://127.0.0.1:${udpPort}${path}`], { stdio: 'ignore' });
          c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`coap-client-openssl put ${path}: exit ${code}`))));
        }),
      stop: () => {
        child.kill('SIGKILL');
      },
    };
  }
  throw new Error('coap-server-openssl did not start on 127.0.0.1 after 5 attempts');
}
