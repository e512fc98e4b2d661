/** Shared helpers for the DTLS tests: a server on 127.0.0.1:0, external tools, small waits. */
import { spawn, spawnSync } from 'node:child_process';
import { dtls } from 'node-dtls-client';
import { DtlsServer } from '../../src/dtls/index.js';
import type { CipherSuiteName, DtlsServerOptions } from '../../src/dtls/index.js';

export const IDENTITY = 'device-0001';
export const KEY = Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex');
export const KEY_HEX = KEY.toString('hex');

/** A server that echoes "echo:" + data back on every session, listening on a free port. */
export async function echoServer(options: Partial<DtlsServerOptions> = {}): Promise<{ server: DtlsServer; port: number }> {
  const server = new DtlsServer({ psk: { [IDENTITY]: KEY }, ...options });
  server.on('message', (data, _rinfo, session) => session.send(Buffer.concat([Buffer.from('echo:'), data])));
  const { port } = await server.listen();
  return { server, port };
}

export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export interface ToolRun {
  stdout: string;
  stderr: string;
  code: number | null;
}

/**
 * Run a tool; write `input` to its stdin, and once stdout matches `until`, end stdin so the tool
 * closes the connection and exits. Rejects after timeout_ms with everything it printed.
 */
export function runTool(cmd: string, args: string[], input: string, until: RegExp | null, timeout_ms = 20_000): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let ended = false;
    const endInput = (): void => {
      if (!ended) {
        ended = true;
        child.stdin.end();
      }
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} timed out\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeout_ms);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (until && until.test(stdout)) endInput();
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => {});
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
    child.stdin.write(input);
    if (until === null) endInput();
  });
}

/** Resolve when `predicate` holds, polling (no timing assertion: only the test timeout bounds it). */
export async function waitFor(predicate: () => boolean, poll_ms = 10): Promise<void> {
  while (!predicate()) await new Promise((r) => setTimeout(r, poll_ms));
}

/** node-dtls-client 2.0.3 connects with the test PSK, sends `text`, and resolves with the first reply. */
export function nodeDtlsRoundTrip(port: number, text: string, cipher: CipherSuiteName = 'TLS_PSK_WITH_AES_128_CCM_8'): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const sock = dtls.createSocket({ type: 'udp4', address: '127.0.0.1', port, psk: { [IDENTITY]: KEY }, timeout: 20_000, ciphers: [cipher] });
    sock.on('connected', () => sock.send(Buffer.from(text)));
    sock.on('message', (m: Buffer) => {
      sock.close();
      resolve(m.toString());
    });
    sock.on('error', reject);
  });
}
