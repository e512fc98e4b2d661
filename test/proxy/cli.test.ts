/**
 * `ota-sim proxy` as users run it: the built executable as a child process in front of a UDP echo
 * server forwards datagrams both ways, and on SIGTERM exits 0 printing its statistics (text, or
 * one JSON document with --json). A taken port exits 3; bad flag values exit 2 naming the flag.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { ROOT, runBin, runCli } from '../helpers/cli.js';
import { onCleanup, peer, send, waitFor } from './helpers.js';

interface Child {
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code; throws (with the child's output) if it has not exited within 60 s. */
  exited: () => Promise<number | null>;
  kill: (signal: NodeJS.Signals) => void;
}

function startBin(args: string[]): Child {
  const child = spawn(process.execPath, [`${ROOT}bin/ota-sim.js`, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const done = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  // Bounded, and saying what the child printed if it does not exit (a loaded machine is slow, not stuck).
  const exited = async (): Promise<number | null> => {
    await waitFor(() => child.exitCode !== null || child.signalCode !== null, 'the proxy to exit', 60_000).catch((e: unknown) => {
      throw new Error(`${String(e)}; stdout: ${out}; stderr: ${err}`);
    });
    return done;
  };
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await done;
    }
  });
  return { stdout: () => out, stderr: () => err, exited, kill: (s) => child.kill(s) };
}

/** An echo server and a client; returns the proxy port once the child said it listens. */
async function echoRig(child: Child, where: 'stdout' | 'stderr'): Promise<number> {
  await waitFor(() => /127\.0\.0\.1:(\d+)\s+->/.test(child[where]()), 'the proxy to say where it listens', 60_000);
  return Number(/127\.0\.0\.1:(\d+)\s+->/.exec(child[where]())![1]);
}

describe('ota-sim proxy (the built executable)', { timeout: 240_000 }, () => {
  it('relays a datagram to the server and its echo back, then exits 0 on SIGTERM printing stats', async () => {
    const server = await peer((p, data, port) => send(p, port, data));
    onCleanup(() => server.close());
    const client = await peer();
    onCleanup(() => client.close());
    const child = startBin(['proxy', '--listen', '127.0.0.1:0', '--target', `127.0.0.1:${server.port}`, '--seed', '3']);
    const port = await echoRig(child, 'stdout');
    send(client, port, 'ping');
    await waitFor(() => client.inbox.length === 1, 'the echo through the proxy');
    expect(client.inbox[0]!.data.toString()).toBe('ping');
    expect(server.inbox[0]!.port).not.toBe(client.port); // the server saw the proxy's upstream socket
    child.kill('SIGTERM');
    expect(await child.exited()).toBe(0);
    expect(child.stdout()).toMatch(/datagrams\s+up 1 in, 1 forwarded; down 1 in, 1 forwarded/);
    expect(child.stdout()).toMatch(/faults\s+none/);
  });

  it('--json --log-faults: faults on stderr as they happen, one JSON document with the stats and the fault log at exit', async () => {
    const server = await peer((p, data, port) => send(p, port, data));
    onCleanup(() => server.close());
    const client = await peer();
    onCleanup(() => client.close());
    const child = startBin(['proxy', '--target', `127.0.0.1:${server.port}`, '--loss', '100%', '--direction', 'down', '--json', '--log-faults']);
    const port = await echoRig(child, 'stderr');
    send(client, port, 'ping');
    await waitFor(() => server.inbox.length === 1, 'the datagram at the server');
    // --log-faults: the echo's loss is printed on stderr as it happens
    await waitFor(() => /loss flow-0 down #0/.test(child.stderr()), 'the lost echo in the fault log');
    child.kill('SIGINT');
    expect(await child.exited()).toBe(0);
    const doc = JSON.parse(child.stdout()) as { stats: { datagrams: { up: number; down: number }; faults: Record<string, number> }; faults: { kind: string; direction: string }[] };
    expect(doc.stats.datagrams.up).toBe(1);
    expect(doc.stats.datagrams.down).toBe(1);
    expect(doc.stats.faults).toEqual({ loss: 1 });
    expect(doc.faults).toEqual([expect.objectContaining({ kind: 'loss', direction: 'down', index: 0, flow: 'flow-0' })]);
    expect(client.inbox).toEqual([]);
  });

  it('a listen port already in use: exit 3 with a clear message', async () => {
    const taken = createSocket('udp4');
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', () => r()));
    onCleanup(() => new Promise<void>((r) => taken.close(() => r())));
    const r = await runBin(['proxy', '--listen', `127.0.0.1:${taken.address().port}`, '--target', '127.0.0.1:5684']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/already in use/);
  });
});

describe('ota-sim proxy: bad flags exit 2 and name the flag', () => {
  const cases: [string[], RegExp][] = [
    [['--loss', '2'], /--loss: expected a probability/],
    [['--duplicate', 'often'], /--duplicate: expected a probability/],
    [['--reorder', '150%'], /--reorder: expected a probability/],
    [['--corrupt', '-1'], /--corrupt: expected a probability/],
    [['--delay-ms', 'slow'], /--delay-ms: expected milliseconds/],
    [['--jitter-ms', '9999999'], /--jitter-ms: expected milliseconds/],
    [['--burst', '0.1'], /--burst: expected ENTER:EXIT/],
    [['--blackhole', '10'], /--blackhole: expected AT_S:FOR_S/],
    [['--blackhole', '10:0'], /--blackhole: expected AT_S:FOR_S/],
    [['--rebind-every-s', 'x'], /--rebind-every-s: expected seconds/],
    [['--seed', 'abc'], /--seed: expected a number/],
    [['--time-scale', '0'], /--time-scale: expected a factor/],
    [['--direction', 'sideways'], /--direction: expected up, down or both/],
    [['--listen', '0.0.0.0:5683'], /--listen: "0\.0\.0\.0" is not a loopback/],
    [['--listen', 'nowhere'], /--listen: expected HOST:PORT/],
    [['--max-flows', '0'], /--max-flows: expected 1\.\.60000/],
  ];
  it.each(cases)('%j', async (flags, message) => {
    const r = await runCli(['proxy', '--target', '127.0.0.1:5684', ...flags]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('no --target, or a target off this machine', async () => {
    const none = await runCli(['proxy']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--target: required/);
    const remote = await runCli(['proxy', '--target', '192.168.1.10:5684']);
    expect(remote.code).toBe(2);
    expect(remote.stderr).toMatch(/--target: "192\.168\.1\.10" is not a loopback/);
  });
});
