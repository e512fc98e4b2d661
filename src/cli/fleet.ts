/**
 * `ota-sim fleet` (CLI.md): emulate a fleet of full devices against the embedded server (or
 * --server), with progress on a TTY and a summary at the end; --out writes the result (a shard
 * file for `ota-sim report merge`); --dashboard serves the live page while it runs. Exit 1 when a
 * device bricked or the rollout missed its target. Device mixes (--board/--initial-version with
 * weights), network chaos (--chaos-rate/--chaos, in `ota-sim proxy`'s flag names) and --scenario.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import { startDashboard } from '../dashboard/index.js';
import type { Dashboard } from '../dashboard/index.js';
import { EnvironmentError, InputError } from '../errors.js';
import { dashboardPublisher, fleetJson, parseShard, renderFleetSummary, runFleet } from '../fleet/index.js';
import { parseWeighted } from '../fleet/plan.js';
import type { ChaosSchedule } from '../net/proxy/index.js';
import { loadScenario } from '../scenario/index.js';
import type { FleetOptions, FleetProgress } from '../fleet/index.js';
import type { Strategy } from '../flash/types.js';
import { parseKeyPem, publicKeyOf } from '../image/index.js';
import { readPskFile } from '../server/psk-file.js';
import { emit, parseIntArg } from './output.js';
import { scheduleFromArgs } from './proxy.js';
import { reportCommand } from './report-merge.js';
import type { GlobalArgs } from './output.js';
import { STRATEGIES } from '../scenario/schema.js';

interface FleetArgs extends GlobalArgs {
  devices?: string;
  board?: string[];
  'initial-version'?: string[];
  'chaos-rate'?: string;
  chaos?: string;
  strategy?: string;
  scenario?: string;
  server?: string;
  'psk-file'?: string;
  image?: string;
  'initial-image'?: string;
  trust?: string[];
  rollout?: string;
  shard?: string;
  seed?: string;
  workers?: string;
  'time-scale': string;
  'image-size'?: string;
  'power-cut-rate': string;
  'block-size': string;
  window: string;
  'timeout-s': string;
  'start-rate': string;
  'max-lag-ms': string;
  'poll-interval-s': string;
  'share-sectors': boolean;
  'stall-s': string;
  out?: string;
  dashboard?: string;
  'dashboard-linger-s'?: string;
  progress?: boolean;
}

function readBytes(flag: string, path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new InputError('FILE_NOT_READABLE', `${flag}: ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

function num(flag: string, text: string, lo: number, hi: number): number {
  const v = Number(text);
  if (!(Number.isFinite(v) && v >= lo && v <= hi)) throw new InputError('BAD_ARGUMENT', `${flag}: a number ${lo}..${hi}, got ${JSON.stringify(text)}`);
  return v;
}

export const fleetCommand: CommandModule<GlobalArgs, FleetArgs> = {
  command: 'fleet',
  describe: 'emulate a fleet of full devices (flash, bootloader, agent, own DTLS session each) rolling out a release',
  builder: (y) =>
    y
      .option('devices', { type: 'string', describe: 'devices in the fleet (with --scenario: default the sum of its groups, else required)' })
      .option('board', { type: 'string', array: true, describe: 'board profile, NAME[:WEIGHT], repeatable for a mix (e.g. --board nrf52840:70 --board nrf9160dk:30); default nrf52840' })
      .option('initial-version', { type: 'string', array: true, describe: 'built version the devices start on, V[:WEIGHT], repeatable (e.g. 1.0.0:80 --initial-version 0.9.0:20); default 1.0.0' })
      .option('chaos-rate', { type: 'string', describe: 'probability 0..1 that a device talks to the server through its own chaos proxy (default 1 with --chaos)' })
      .option('chaos', { type: 'string', describe: 'the chaos proxy\'s faults as KEY=VALUE,... with `ota-sim proxy` flag names, e.g. loss=0.1,delay-ms=20,jitter-ms=10,duplicate=0.02,reorder=0.05' })
      .option('strategy', { type: 'string', describe: 'MCUboot upgrade strategy (default swap-move, or the scenario\'s)' })
      .option('scenario', { type: 'string', describe: 'take the fleet from a scenario file: groups (scaled to --devices), images, server timeline, network faults' })
      .option('server', { type: 'string', describe: 'external server coaps://127.0.0.1:PORT (needs --psk-file); default: the embedded server' })
      .option('psk-file', { type: 'string', describe: 'identity,key lines; device i uses line i (with --server)' })
      .option('image', { type: 'string', describe: 'signed image to roll out (default: a built 1.1.0); sign it with a --trust key' })
      .option('initial-image', { type: 'string', describe: 'signed image every device starts on (default: a built 1.0.0)' })
      .option('trust', { type: 'string', array: true, describe: 'public key PEM the devices trust (besides the built-in fleet key)' })
      .option('rollout', { type: 'string', describe: 'percentage of devices the release reaches (server-side buckets; default 100)' })
      .option('shard', { type: 'string', describe: 'run the I-th of N disjoint slices of the fleet (1-based), e.g. 2/8' })
      .option('seed', { type: 'string', describe: 'fleet seed: identities, PSKs, device seeds, faults, mixes (default 1, or the scenario\'s)' })
      .option('workers', { type: 'string', describe: 'worker threads for the devices (default cores - 1; 0: in the main thread)' })
      .option('time-scale', { type: 'string', default: '0.04', describe: 'wall time per simulated time' })
      .option('image-size', { type: 'string', describe: 'payload bytes of the built images (default 65536)' })
      .option('power-cut-rate', { type: 'string', default: '0', describe: 'probability 0..1 that a device loses power once during its update' })
      .option('block-size', { type: 'string', default: '1024', describe: 'Block2 size' })
      .option('window', { type: 'string', default: '4', describe: 'outstanding block requests per device' })
      .option('share-sectors', { type: 'boolean', default: true, describe: 'share identical flash sectors between devices (--no-share-sectors to measure without)' })
      .option('start-rate', { type: 'string', default: '200', describe: 'devices powered on per wall second (spreads the DTLS handshakes)' })
      .option('poll-interval-s', { type: 'string', default: '300', describe: 'simulated seconds between a device\'s manifest polls (the fallback behind Observe; the agent\'s own default is 60)' })
      .option('max-lag-ms', { type: 'string', default: '25', describe: 'power devices on only while the server\'s and the devices\' event loops lag less than this (wall ms; 0: no pacing)' })
      .option('timeout-s', { type: 'string', default: '600', describe: 'give up after this many wall seconds' })
      .option('stall-s', { type: 'string', default: '15', describe: 'stop when nothing changed for this many wall seconds' })
      .option('out', { type: 'string', describe: 'write the result JSON here (a shard file for report merge)' })
      .option('dashboard', { type: 'string', describe: 'serve a live dashboard at http://127.0.0.1:PORT/ while the fleet runs (0: any free port; the URL is printed)' })
      .option('dashboard-linger-s', { type: 'string', describe: 'keep the dashboard up this many seconds after the fleet ends (default 0; Ctrl-C ends it early)' })
      .option('progress', { type: 'boolean', describe: 'progress bar on stderr (default: when stderr is a TTY)' }) as Argv<FleetArgs>,
  handler: async (argv) => {
    if (argv.scenario !== undefined) {
      // what the scenario decides cannot also come from flags
      for (const [flag, v] of [['--board', argv.board], ['--initial-version', argv['initial-version']], ['--initial-image', argv['initial-image']], ['--image', argv.image], ['--rollout', argv.rollout], ['--image-size', argv['image-size']], ['--chaos', argv.chaos], ['--chaos-rate', argv['chaos-rate']], ['--server', argv.server]] as const) {
        if (v !== undefined) throw new InputError('BAD_ARGUMENT', `${flag}: not with --scenario (the scenario's groups, images, timeline and network faults decide it)`);
      }
    } else if (argv.devices === undefined) throw new InputError('BAD_ARGUMENT', '--devices: required (the number of devices in the fleet), unless --scenario gives the groups');
    const strategy = (argv.strategy ?? 'swap-move') as Strategy;
    if (!(STRATEGIES as readonly string[]).includes(strategy)) throw new InputError('BAD_ARGUMENT', `--strategy: ${STRATEGIES.join(', ')}`);
    let server: FleetOptions['server'] = null;
    if (argv.server !== undefined) {
      if (argv['psk-file'] === undefined) throw new InputError('BAD_ARGUMENT', '--server needs --psk-file (identity,key per device)');
      server = { url: argv.server, psk: readPskFile(argv['psk-file']).map((d) => ({ identity: d.identity, key: d.key ?? '' })) };
    }
    const trust = (argv.trust ?? []).map((p) => publicKeyOf(parseKeyPem(readBytes('--trust', p), p)));
    const scenario = argv.scenario !== undefined ? loadScenario(argv.scenario) : undefined;
    const chaos = argv.chaos !== undefined ? parseChaosSpec(argv.chaos) : undefined;
    if (argv['chaos-rate'] !== undefined && chaos === undefined) throw new InputError('BAD_ARGUMENT', '--chaos-rate: needs --chaos SPEC (e.g. --chaos loss=0.1,delay-ms=20)');
    const options: FleetOptions = {
      ...(argv.devices !== undefined ? { devices: parseIntArg('--devices', argv.devices) } : {}),
      ...(argv.board !== undefined ? { boards: argv.board.map((b) => parseWeighted('--board', String(b))) } : {}),
      ...(argv['initial-version'] !== undefined ? { initialVersions: argv['initial-version'].map((v) => parseWeighted('--initial-version', String(v))) } : {}),
      ...(chaos !== undefined ? { chaos, chaosSpec: argv.chaos!, chaosRate: argv['chaos-rate'] === undefined ? 1 : num('--chaos-rate', argv['chaos-rate'], 0, 1) } : {}),
      ...(scenario ? { scenario } : {}),
      ...(argv.strategy !== undefined || !scenario ? { strategy } : {}),
      ...(argv.seed !== undefined ? { seed: parseIntArg('--seed', argv.seed) } : {}),
      rolloutPercent: argv.rollout === undefined ? 100 : num('--rollout', argv.rollout, 0, 100),
      ...(argv.shard !== undefined ? { shard: parseShard(argv.shard) } : {}),
      ...(argv.workers !== undefined ? { workers: parseIntArg('--workers', argv.workers) } : {}),
      timeScale: num('--time-scale', argv['time-scale'], 1e-6, 1000),
      ...(argv['image-size'] !== undefined ? { imageSize_bytes: parseIntArg('--image-size', argv['image-size']) } : {}),
      powerCutRate: num('--power-cut-rate', argv['power-cut-rate'], 0, 1),
      blockSize_bytes: parseIntArg('--block-size', argv['block-size']),
      window: parseIntArg('--window', argv.window),
      shareSectors: argv['share-sectors'],
      startRate_perS: num('--start-rate', argv['start-rate'], 1, 100_000),
      maxLag_wallMs: num('--max-lag-ms', argv['max-lag-ms'], 0, 60_000),
      pollInterval_ms: num('--poll-interval-s', argv['poll-interval-s'], 1, 86_400) * 1000,
      timeout_ms: num('--timeout-s', argv['timeout-s'], 1, 86_400) * 1000,
      stall_ms: num('--stall-s', argv['stall-s'], 1, 86_400) * 1000,
      trust,
      server,
      ...(argv.image !== undefined ? { targetImage: readBytes('--image', argv.image) } : {}),
      ...(argv['initial-image'] !== undefined ? { initialImage: readBytes('--initial-image', argv['initial-image']) } : {}),
    };
    const dashboardPort = argv.dashboard === undefined ? null : parseDashboardPort(argv.dashboard);
    if (argv['dashboard-linger-s'] !== undefined && dashboardPort === null) throw new InputError('BAD_ARGUMENT', '--dashboard-linger-s: needs --dashboard PORT');
    const linger_s = argv['dashboard-linger-s'] === undefined ? 0 : num('--dashboard-linger-s', argv['dashboard-linger-s'], 0, 86_400);
    const showBar = !argv.json && (argv.progress ?? process.stderr.isTTY === true);
    let bar: cliProgress.SingleBar | null = null;
    // The dashboard starts before any device: a port in use ends the run here (exit 3).
    const dash = dashboardPort === null ? null : await startDashboard({ port: dashboardPort, title: `ota-sim fleet: ${scenario ? `scenario ${scenario.spec.name}` : `${options.devices ?? '?'} devices`}, seed ${options.seed ?? scenario?.spec.seed ?? 1}` });
    if (dash) (argv.json ? process.stderr : process.stdout).write(`dashboard: ${dash.url}\n`);
    const publish = dash ? dashboardPublisher(dash) : null;
    try {
      await runAndReport(argv, options, (p) => {
        publish?.(p);
        if (!showBar) return;
        if (!bar) {
          bar = new cliProgress.SingleBar(
            { stream: process.stderr, format: '{bar} {value}/{total} updated | bricked {bricked} | failing {failing} | {states}', barsize: 30, hideCursor: true, clearOnComplete: true, noTTYOutput: true, notTTYSchedule: 1000 },
            cliProgress.Presets.shades_classic,
          );
          bar.start(Math.max(1, p.expected), 0, { bricked: 0, failing: 0, states: '' });
        }
        const states = Object.entries(p.states).sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, v]) => `${k} ${v}`).join(', ');
        bar.update(p.updated, { bricked: p.bricked, failing: p.failingTotal, states });
        if (p.done) bar.stop();
      });
      if (dash && linger_s > 0) await linger(dash, linger_s, argv.json === true);
    } finally {
      (bar as cliProgress.SingleBar | null)?.stop();
      await dash?.close();
    }
  },
};

/** Keys of `--chaos` (`ota-sim proxy`'s flags without the dashes); the repeatable ones may appear more than once. */
const CHAOS_KEYS = ['loss', 'burst', 'delay-ms', 'jitter-ms', 'duplicate', 'reorder', 'corrupt', 'blackhole', 'rebind-every-s', 'rebind-at-s', 'direction'] as const;
const CHAOS_REPEATABLE = new Set<string>(['blackhole', 'rebind-at-s']);

/**
 * `--chaos loss=0.1,delay-ms=20,...`: the chaos proxy's schedule, parsed by `ota-sim proxy`'s own
 * flag parser (scheduleFromArgs), so the two accept exactly the same values.
 */
export function parseChaosSpec(text: string): ChaosSchedule {
  const fields: Record<string, string | string[]> = {};
  const items = text.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
  if (items.length === 0 || items.length > 64) throw new InputError('BAD_ARGUMENT', `--chaos: expected KEY=VALUE,... (1..64 items) with keys ${CHAOS_KEYS.join(', ')}; got ${JSON.stringify(text)}`);
  for (const item of items) {
    const eq = item.indexOf('=');
    const k = eq < 0 ? item : item.slice(0, eq).trim();
    if (eq < 0 || !(CHAOS_KEYS as readonly string[]).includes(k)) throw new InputError('BAD_ARGUMENT', `--chaos: ${JSON.stringify(item)}: expected KEY=VALUE with KEY one of ${CHAOS_KEYS.join(', ')} (ota-sim proxy's flags, e.g. loss=0.1,delay-ms=20)`);
    const v = item.slice(eq + 1).trim();
    const old = fields[k];
    if (old !== undefined && !CHAOS_REPEATABLE.has(k)) throw new InputError('BAD_ARGUMENT', `--chaos: ${k} given twice`);
    fields[k] = old === undefined ? v : [...(Array.isArray(old) ? old : [old]), v];
  }
  const base: Parameters<typeof scheduleFromArgs>[0] = { listen: '127.0.0.1:0', direction: 'both', seed: '0', 'time-scale': '1', 'log-faults': false };
  try {
    const schedule = scheduleFromArgs({ ...base, ...fields } as Parameters<typeof scheduleFromArgs>[0]);
    if (schedule.burst === null) delete schedule.burst; // "none" (the proxy's parser says it with null)
    return schedule;
  } catch (e) {
    if (e instanceof InputError) throw new InputError('BAD_ARGUMENT', `--chaos: ${e.message.replace(/^--/, '')}`);
    throw e;
  }
}

/** `--dashboard PORT`: a TCP port, 0 for any free one. */
function parseDashboardPort(text: string): number {
  const port = Number(text);
  if (!(/^\d{1,5}$/.test(text.trim()) && Number.isInteger(port) && port <= 65535)) throw new InputError('BAD_ARGUMENT', `--dashboard: a TCP port 0..65535 (0: any free port), got ${JSON.stringify(text)}`);
  return port;
}

/** Run the fleet, write --out, print the summary, set the exit code. */
async function runAndReport(argv: FleetArgs, options: FleetOptions, onProgress: (p: FleetProgress) => void): Promise<void> {
  const result = await runFleet(options, { onProgress });
  if (argv.out !== undefined) {
    try {
      writeFileSync(argv.out, JSON.stringify(result, null, 2) + '\n');
    } catch (e) {
      throw new EnvironmentError('FILE_NOT_WRITABLE', `--out: ${argv.out}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
  }
  emit(argv, () => renderFleetSummary(result) + (argv.out !== undefined ? `\n  result written to ${argv.out}` : ''), fleetJson(result));
  if (result.bricked > 0 || !result.targetReached) process.exitCode = 1;
}

/** Keep the finished dashboard up for `linger_s` seconds; SIGINT or SIGTERM ends the wait early. */
async function linger(dash: Dashboard, linger_s: number, json: boolean): Promise<void> {
  (json ? process.stderr : process.stdout).write(`dashboard: the run is over; ${dash.url} stays up for ${linger_s} s (Ctrl-C to stop)\n`);
  let timer: NodeJS.Timeout | undefined;
  let onSignal: (() => void) | undefined;
  try {
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, linger_s * 1000);
      onSignal = resolve;
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    });
  } finally {
    clearTimeout(timer);
    if (onSignal) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

/** `fleet` and `report merge`, registered together in commands.ts. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const fleetCommands: CommandModule<any, any>[] = [fleetCommand, reportCommand];
