/**
 * `ota-sim serve`: the embedded update server, standalone, until SIGINT/SIGTERM. CoAP over UDP
 * (`--port`, devices named by `?id=`) and DTLS PSK (`--dtls-port`, devices from `--psk-file`),
 * artifacts from `--artifacts DIR` (the newest is offered to every device until a release says
 * otherwise), state kept in `--state-dir`, the admin JSON API on `--admin-port`.
 */
import { renameSync, writeFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { EnvironmentError, InputError } from '../errors.js';
import { UpdateServer } from '../server/index.js';
import { emit, parseIntArg } from './output.js';
import type { GlobalArgs } from './output.js';

interface ServeArgs extends GlobalArgs {
  host: string;
  port: string;
  'dtls-port': string;
  'admin-port': string;
  'psk-file'?: string;
  artifacts?: string;
  'state-dir'?: string;
  'block-size': string;
  'udp-auto-register': boolean;
  'ready-file'?: string;
}

function port(name: string, v: string): number | null {
  if (v === 'off') return null;
  const n = parseIntArg(name, v);
  if (n > 65535) throw new InputError('BAD_ARGUMENT', `${name}: ${n} is not a port (0..65535, or off)`);
  return n;
}

/** Resolves when the process is asked to stop (tests pass their own signal). */
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export const serveCommand: CommandModule<GlobalArgs, ServeArgs> = {
  command: 'serve',
  describe: 'run the embedded update server (CoAP/UDP, CoAP/DTLS PSK, admin HTTP API) until interrupted',
  builder: (y) =>
    y
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'loopback address to listen on' })
      .option('port', { type: 'string', default: '5683', describe: 'CoAP over UDP port (0: any free port, off: none)' })
      .option('dtls-port', { type: 'string', default: '5684', describe: 'CoAP over DTLS port (0: any, off: none)' })
      .option('admin-port', { type: 'string', default: '8080', describe: 'admin HTTP JSON API port (0: any, off: none)' })
      .option('psk-file', { type: 'string', describe: 'devices, one per line: identity,key[,board[,tag;tag]]' })
      .option('artifacts', { type: 'string', describe: 'folder of signed images: each becomes an artifact of package main' })
      .option('state-dir', { type: 'string', describe: 'keep artifacts, releases, devices and reports here across restarts' })
      .option('block-size', { type: 'string', default: '1024', describe: 'block size for an artifact GET without Block2 (16..1024)' })
      .option('udp-auto-register', { type: 'boolean', default: true, describe: 'register an unknown plain-UDP ?id= on first use (--no-udp-auto-register refuses it)' })
      .option('ready-file', { type: 'string', describe: 'once listening, write the addresses as JSON here (what --json prints; written to a temporary file, then renamed): scripts wait for it and read the ports chosen for 0' }) as Argv<ServeArgs>,
  handler: async (argv) => {
    const server = await UpdateServer.start({
      host: argv.host,
      port: port('--port', argv.port),
      dtlsPort: port('--dtls-port', argv['dtls-port']),
      adminPort: port('--admin-port', argv['admin-port']),
      pskFile: argv['psk-file'] ?? null,
      artifactsDir: argv.artifacts ?? null,
      stateDir: argv['state-dir'] ?? null,
      defaultBlock_bytes: parseIntArg('--block-size', argv['block-size']),
      udpAutoRegister: argv['udp-auto-register'],
    });
    const a = server.addresses();
    const info = {
      udp: a.udp ? `coap://${a.udp.address}:${a.udp.port}` : null,
      dtls: a.dtls ? `coaps://${a.dtls.address}:${a.dtls.port}` : null,
      admin: a.admin ? `http://${a.admin.address}:${a.admin.port}/api` : null,
      devices: server.model.deviceCount(),
      artifacts: server.model.listArtifacts().map((x) => x.id),
      releases: server.model.listReleases().map((r) => ({ id: r.id, state: r.state })),
      notes: server.notes,
    };
    // Scripts that pass port 0 wait for this file; the rename makes it appear complete or not at all.
    const readyFile = argv['ready-file'];
    if (readyFile !== undefined) {
      try {
        writeFileSync(`${readyFile}.tmp`, JSON.stringify(info, null, 2) + '\n');
        renameSync(`${readyFile}.tmp`, readyFile);
      } catch (err) {
        await server.close();
        throw new EnvironmentError('FILE_NOT_WRITABLE', `--ready-file: cannot write ${readyFile}: ${(err as Error).message}`);
      }
    }
    emit(
      argv,
      () =>
        [
          `ota-sim update server`,
          `  CoAP/UDP   ${info.udp ?? 'off'}   (devices named by ?id=IDENTITY; local use only, no authentication)`,
          `  CoAP/DTLS  ${info.dtls ?? 'off'}   (PSK identities: ${info.devices} devices)`,
          `  admin API  ${info.admin ?? 'off'}`,
          `  artifacts  ${info.artifacts.join(', ') || 'none'}`,
          ...server.notes.map((n) => `  note: ${n}`),
          `listening; Ctrl-C stops`,
        ].join('\n'),
      info,
    );
    await untilSignal();
    await server.close();
  },
};
