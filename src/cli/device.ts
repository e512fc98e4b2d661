/**
 * `ota-sim device` (CLI.md): one simulated device running the OTA agent against any CoAP/DTLS
 * update server, on a flash file (created, and optionally programmed with --initial-image, when
 * it does not exist; saved back at the end). It runs until the agent is idle with nothing left to
 * do (`--until idle`) or confirmed on a new image (`--until confirmed`, the default), or until
 * --timeout-s, and exits 0 when the outcome matches --expect (update | rollback | none).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { agentFirmware } from '../agent/index.js';
import type { AgentEvent, AgentProfile, SentReport } from '../agent/index.js';
import { programSlot } from '../boot/program.js';
import { bootIsImgConfirmed } from '../boot/public.js';
import { ScaledClock } from '../clock.js';
import { Device } from '../device/index.js';
import { InputError } from '../errors.js';
import { Flash, loadBoard, openFlash, saveFlash } from '../flash/index.js';
import type { Strategy } from '../flash/types.js';
import { createTrustStore, parseKeyPem, publicKeyOf } from '../image/index.js';
import { emit, parseIntArg } from './output.js';
import type { GlobalArgs } from './output.js';
import { ALL_STRATEGIES } from '../flash/types.js';

interface DeviceArgs extends GlobalArgs {
  server: string;
  'psk-id'?: string;
  psk?: string;
  board: string;
  flash: string;
  trust: string;
  'initial-image'?: string;
  strategy: string;
  'block-size': string;
  window: string;
  profile: string;
  seed: string;
  'time-scale': string;
  until: string;
  expect: string;
  'timeout-s': string;
  'dtls-handshake': string;
}

const STRATEGIES = ALL_STRATEGIES;
/** Real milliseconds without a state change after which an idle agent counts as settled. */
const SETTLE_MS = 1000;

function parseServer(url: string): { kind: 'udp' | 'dtls'; host: string; port: number } {
  const m = /^(coaps?):\/\/([^/:]+|\[[^\]]+\]):(\d{1,5})\/?$/.exec(url);
  if (!m) throw new InputError('BAD_ARGUMENT', `--server: expected coap://HOST:PORT or coaps://HOST:PORT, got ${JSON.stringify(url)}`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new InputError('BAD_ARGUMENT', `--server: port ${port} is not 1..65535`);
  return { kind: m[1] === 'coaps' ? 'dtls' : 'udp', host: m[2]!, port };
}

export const deviceCommand: CommandModule<GlobalArgs, DeviceArgs> = {
  command: 'device',
  describe: 'run one simulated device (flash + bootloader + OTA agent) against a CoAP/DTLS update server',
  builder: (y) =>
    y
      .option('server', { type: 'string', demandOption: true, describe: 'coap://HOST:PORT (UDP, the device sends ?id=PSK-ID) or coaps://HOST:PORT (DTLS PSK)' })
      .option('psk-id', { type: 'string', describe: 'PSK identity (also the device id over UDP)' })
      .option('psk', { type: 'string', describe: 'PSK (ASCII)' })
      .option('board', { type: 'string', demandOption: true, describe: 'board profile (sim-flash/boards)' })
      .option('flash', { type: 'string', demandOption: true, describe: 'flash file (created when missing)' })
      .option('trust', { type: 'string', demandOption: true, describe: 'trusted public (or private) key PEM' })
      .option('initial-image', { type: 'string', describe: 'signed image programmed confirmed into slot0 of a new flash file' })
      .option('strategy', { type: 'string', default: 'swap-move', describe: 'MCUboot upgrade strategy' })
      .option('block-size', { type: 'string', default: '1024', describe: 'Block2 size 16..1024' })
      .option('window', { type: 'string', default: '1', describe: 'outstanding block requests 1..64' })
      .option('profile', { type: 'string', default: 'ota-sim', describe: 'golioth | ota-sim' })
      .option('seed', { type: 'string', default: '1', describe: 'PRNG seed' })
      .option('time-scale', { type: 'string', default: '1', describe: 'wall time per simulated time (0.01: 100× faster)' })
      .option('until', { type: 'string', default: 'confirmed', describe: 'confirmed | idle' })
      .option('expect', { type: 'string', default: 'update', describe: 'update | rollback | none' })
      .option('dtls-handshake', { type: 'string', default: 'ota-sim', describe: 'who does the DTLS handshake: ota-sim (lean, default) | node-dtls-client' })
      .option('timeout-s', { type: 'string', default: '120', describe: 'give up after this many wall-clock seconds' }) as Argv<DeviceArgs>,
  handler: async (argv) => {
    const server = parseServer(argv.server);
    const identity = argv['psk-id'] ?? 'ota-sim-device';
    if (server.kind === 'dtls' && (argv.psk === undefined || argv['psk-id'] === undefined)) throw new InputError('BAD_ARGUMENT', '--psk-id and --psk are required for coaps://');
    const strategy = argv.strategy as Strategy;
    if (!STRATEGIES.includes(strategy)) throw new InputError('BAD_ARGUMENT', `--strategy: one of ${STRATEGIES.join(', ')}`);
    const profile = argv.profile as AgentProfile;
    if (profile !== 'golioth' && profile !== 'ota-sim') throw new InputError('BAD_ARGUMENT', '--profile: golioth or ota-sim');
    if (!['confirmed', 'idle'].includes(argv.until)) throw new InputError('BAD_ARGUMENT', '--until: confirmed or idle');
    if (!['update', 'rollback', 'none'].includes(argv.expect)) throw new InputError('BAD_ARGUMENT', '--expect: update, rollback or none');
    const dtlsHandshake = argv['dtls-handshake'];
    if (dtlsHandshake !== 'ota-sim' && dtlsHandshake !== 'node-dtls-client') throw new InputError('BAD_ARGUMENT', `--dtls-handshake: ota-sim or node-dtls-client, got ${JSON.stringify(dtlsHandshake)}`);
    const scale = Number(argv['time-scale']);
    if (!(scale > 0 && scale <= 1000)) throw new InputError('BAD_ARGUMENT', `--time-scale: a number in (0, 1000], got ${argv['time-scale']}`);
    const timeout_s = parseIntArg('--timeout-s', argv['timeout-s']);
    if (!existsSync(argv.trust)) throw new InputError('NO_FILE', `--trust: ${argv.trust}: no such file`);
    const trustKey = publicKeyOf(parseKeyPem(readFileSync(argv.trust), argv.trust));

    let flash: Flash;
    if (existsSync(argv.flash)) flash = openFlash(argv.flash, { board: argv.board });
    else {
      flash = Flash.create(loadBoard(argv.board));
      if (argv['initial-image'] === undefined) throw new InputError('BAD_ARGUMENT', `--flash ${argv.flash} does not exist: give --initial-image to program a new one`);
    }
    if (argv['initial-image'] !== undefined && !existsSync(argv.flash)) {
      programSlot(flash, 'slot0', new Uint8Array(readFileSync(argv['initial-image'])), 'confirm', strategy);
    }

    const events: AgentEvent[] = [];
    const reports: (SentReport & { delivered: boolean })[] = [];
    let lastChange = performance.now();
    let confirmedOnNew = false;
    let initialVersion: string | null = null;
    const clock = new ScaledClock(scale);
    const device = new Device({
      flash,
      strategy,
      trustedKeys: [trustKey],
      clock,
      firmware: agentFirmware({
        server: { ...server, identity, ...(argv.psk !== undefined ? { psk: argv.psk } : {}) },
        board: flash.board.name,
        strategy,
        trust: createTrustStore([trustKey]),
        seed: parseIntArg('--seed', argv.seed),
        profile,
        blockSize_bytes: parseIntArg('--block-size', argv['block-size']),
        window: parseIntArg('--window', argv.window),
        dtlsHandshake,
        onEvent: (e) => {
          events.push(e);
          if (e.type === 'state') lastChange = performance.now();
          if (e.type === 'report') reports.push({ ...e.report, delivered: e.delivered });
          if (e.type === 'confirmed') confirmedOnNew = true;
          if (e.type === 'state' && initialVersion === null) initialVersion = e.version;
        },
      }),
    });
    let bricked = false;
    device.on('bricked', () => (bricked = true));
    device.powerOn();
    const start = performance.now();
    let timedOut = false;
    const lastState = (): string | null => {
      for (let i = events.length - 1; i >= 0; i--) {
        const e = events[i]!;
        if (e.type === 'state') return e.state;
      }
      return null;
    };
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      if (bricked || device.phase === 'boot-loop') break;
      const settled = lastState() === 'idle' && performance.now() - lastChange > SETTLE_MS;
      if (argv.until === 'confirmed' && confirmedOnNew && settled) break;
      if (settled && (argv.until === 'idle' || argv.expect !== 'update')) break;
      if (performance.now() - start > timeout_s * 1000) {
        timedOut = true;
        break;
      }
    }
    const image = device.image;
    const confirmed = image !== null && bootIsImgConfirmed(flash, strategy);
    const result = {
      runningVersion: image?.version ?? null,
      confirmed,
      bricked: bricked || device.phase === 'bricked',
      reboots: device.reboots,
      reports,
      timedOut,
    };
    device.powerOff();
    saveFlash(flash, argv.flash);
    const failed = reports.some((r) => r.r === 8 && r.delivered) || events.some((e) => e.type === 'rollback');
    const ok =
      !result.bricked &&
      !timedOut &&
      (argv.expect === 'update'
        ? confirmed && result.runningVersion !== initialVersion
        : argv.expect === 'rollback'
          ? failed && result.runningVersion === initialVersion
          : result.runningVersion === initialVersion && device.reboots === 0);
    emit(
      argv,
      () =>
        [
          `device ${identity} on ${flash.board.name}: running ${result.runningVersion ?? 'nothing'}${confirmed ? ' (confirmed)' : ''}, ${result.reboots} reboot(s)${result.bricked ? ', BRICKED' : ''}${timedOut ? ', timed out' : ''}`,
          ...reports.map((r) => `  report s=${r.s} r=${r.r} v=${r.v} t=${r.t ?? '-'}${r.delivered ? '' : ' (not delivered)'}`),
          ok ? `as expected (${argv.expect})` : `NOT as expected (${argv.expect})`,
        ].join('\n'),
      { ...result, expected: argv.expect, ok },
    );
    if (!ok) process.exitCode = 1;
  },
};
