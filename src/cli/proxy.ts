/**
 * `ota-sim proxy`: the chaos proxy (src/net/proxy) standalone, in front of any UDP or DTLS server
 * on this machine, until SIGINT/SIGTERM; then it prints what it did (datagrams per direction,
 * faults by kind). Probabilities are 0..1 (or a percentage), times are seconds of simulated time
 * except --delay-ms/--jitter-ms; --time-scale shrinks every simulated time alike.
 */
import type { Argv, CommandModule } from 'yargs';
import { ScaledClock } from '../clock.js';
import { InputError } from '../errors.js';
import { ChaosProxy, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_FLOWS, MAX_DELAY_MS, MAX_FLOWS_LIMIT, loopbackHost } from '../net/proxy/index.js';
import type { ChaosSchedule, ProxyDirection, ProxyFault, ProxyStats } from '../net/proxy/index.js';
import { emit, parseIntArg } from './output.js';
import type { GlobalArgs } from './output.js';
import { untilSignal } from './serve.js';

interface ProxyArgs extends GlobalArgs {
  listen: string;
  target?: string;
  loss?: string;
  burst?: string;
  'delay-ms'?: string;
  'jitter-ms'?: string;
  duplicate?: string;
  reorder?: string;
  corrupt?: string;
  blackhole?: string | string[];
  'rebind-every-s'?: string;
  'rebind-at-s'?: string | string[];
  direction: string;
  seed: string;
  'time-scale': string;
  label?: string;
  'max-flows'?: string;
  'idle-timeout-s'?: string;
  'log-faults': boolean;
}

/** HOST:PORT on the loopback interface; errors name the flag. */
export function parseHostPort(flag: string, text: string, allowZero: boolean): { host: string; port: number } {
  const m = /^(.+):([0-9]+)$/.exec(text.trim());
  if (!m) throw new InputError('BAD_ARGUMENT', `${flag}: expected HOST:PORT (e.g. 127.0.0.1:5684), got ${JSON.stringify(text)}`);
  const port = Number(m[2]);
  if (!(port >= (allowZero ? 0 : 1) && port <= 65535)) throw new InputError('BAD_ARGUMENT', `${flag}: ${port} is not a port (${allowZero ? 0 : 1}..65535)`);
  return { host: loopbackHost(flag, m[1]!), port };
}

/** A probability: 0..1, or a percentage such as 20%. */
export function parseProbability(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = String(text).trim();
  const pct = t.endsWith('%');
  const body = pct ? t.slice(0, -1) : t;
  const v = /^[0-9]+(\.[0-9]+)?$|^\.[0-9]+$/.test(body) ? Number(body) / (pct ? 100 : 1) : NaN;
  if (!(v >= 0 && v <= 1)) throw new InputError('BAD_ARGUMENT', `${flag}: expected a probability 0..1 (or a percentage like 20%), got ${JSON.stringify(text)}`);
  return v;
}

/** A non-negative decimal number within [min, max]. */
function parseNumber(flag: string, text: string | undefined, min: number, max: number, unit: string): number | undefined {
  if (text === undefined) return undefined;
  const t = String(text).trim();
  const v = /^[0-9]+(\.[0-9]+)?$/.test(t) ? Number(t) : NaN;
  if (!(v >= min && v <= max)) throw new InputError('BAD_ARGUMENT', `${flag}: expected ${unit} in ${min}..${max}, got ${JSON.stringify(text)}`);
  return v;
}

function many(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
}

function parseBurst(text: string | undefined): ChaosSchedule['burst'] {
  if (text === undefined) return null;
  const parts = String(text).split(':');
  if (parts.length < 2 || parts.length > 3) throw new InputError('BAD_ARGUMENT', `--burst: expected ENTER:EXIT[:LOSS] probabilities (e.g. 0.02:0.3), got ${JSON.stringify(text)}`);
  const burst: { enter: number; exit: number; loss?: number } = {
    enter: parseProbability('--burst', parts[0]) ?? 0,
    exit: parseProbability('--burst', parts[1]) ?? 0,
  };
  if (parts[2] !== undefined) burst.loss = parseProbability('--burst', parts[2]) ?? 1;
  return burst;
}

function parseBlackhole(text: string): { at_ms: number; for_ms: number } {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?):([0-9]+(?:\.[0-9]+)?)\s*$/.exec(text);
  const at_s = m ? Number(m[1]) : NaN;
  const for_s = m ? Number(m[2]) : NaN;
  if (!(at_s >= 0 && for_s > 0 && Number.isFinite(at_s + for_s))) {
    throw new InputError('BAD_ARGUMENT', `--blackhole: expected AT_S:FOR_S (seconds from start, e.g. 10:60), got ${JSON.stringify(text)}`);
  }
  return { at_ms: Math.round(at_s * 1000), for_ms: Math.max(1, Math.round(for_s * 1000)) };
}

function parseDirection(text: string): ProxyDirection[] {
  if (text === 'both') return ['up', 'down'];
  if (text === 'up' || text === 'down') return [text];
  throw new InputError('BAD_ARGUMENT', `--direction: expected up, down or both, got ${JSON.stringify(text)}`);
}

/** Every flag turned into the schedule; each bad value names its flag. */
export function scheduleFromArgs(argv: ProxyArgs): ChaosSchedule {
  const s: ChaosSchedule = { directions: parseDirection(argv.direction) };
  const set = <K extends keyof ChaosSchedule>(key: K, v: ChaosSchedule[K] | undefined): void => {
    if (v !== undefined) s[key] = v;
  };
  set('loss', parseProbability('--loss', argv.loss));
  set('burst', parseBurst(argv.burst));
  set('delay_ms', parseNumber('--delay-ms', argv['delay-ms'], 0, MAX_DELAY_MS, 'milliseconds'));
  set('jitter_ms', parseNumber('--jitter-ms', argv['jitter-ms'], 0, MAX_DELAY_MS, 'milliseconds'));
  set('duplicate', parseProbability('--duplicate', argv.duplicate));
  set('reorder', parseProbability('--reorder', argv.reorder));
  set('corrupt', parseProbability('--corrupt', argv.corrupt));
  const holes = many(argv.blackhole).map(parseBlackhole);
  if (holes.length > 0) s.blackholes = holes;
  const every_s = parseNumber('--rebind-every-s', argv['rebind-every-s'], 0.001, 1e9, 'seconds');
  if (every_s !== undefined) s.rebindEvery_ms = Math.max(1, Math.round(every_s * 1000));
  const at = many(argv['rebind-at-s']).map((t) => Math.round((parseNumber('--rebind-at-s', t, 0, 1e9, 'seconds') ?? 0) * 1000));
  if (at.length > 0) s.rebindAt_ms = at;
  return s;
}

function describeSchedule(s: ChaosSchedule): string {
  const parts: string[] = [];
  const pct = (p: number): string => `${+(p * 100).toFixed(3)}%`;
  if (s.loss) parts.push(`loss ${pct(s.loss)}`);
  if (s.burst) parts.push(`burst enter ${pct(s.burst.enter)} exit ${pct(s.burst.exit)} loss ${pct(s.burst.loss ?? 1)}`);
  if (s.delay_ms || s.jitter_ms) parts.push(`delay ${s.delay_ms ?? 0} ms ± ${s.jitter_ms ?? 0} ms`);
  if (s.duplicate) parts.push(`duplicate ${pct(s.duplicate)}`);
  if (s.reorder) parts.push(`reorder ${pct(s.reorder)}`);
  if (s.corrupt) parts.push(`corrupt ${pct(s.corrupt)}`);
  for (const w of s.blackholes ?? []) parts.push(`blackhole at ${w.at_ms / 1000} s for ${w.for_ms / 1000} s`);
  if (s.rebindEvery_ms) parts.push(`rebind every ${s.rebindEvery_ms / 1000} s`);
  for (const t of s.rebindAt_ms ?? []) parts.push(`rebind at ${t / 1000} s`);
  const dirs = s.directions ?? ['up', 'down'];
  const text = parts.length > 0 ? parts.join(', ') : 'none (a plain relay)';
  return dirs.length === 2 ? text : `${text} (${dirs.join(', ') || 'no'} direction only)`;
}

function describeStats(stats: ProxyStats, wall_s: number, sim_s: number): string {
  const faults = Object.entries(stats.faults).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const d = stats.dropped ?? { overflow: 0, flowLimit: 0, oversize: 0, stale: 0 };
  return [
    `chaos proxy stopped after ${wall_s.toFixed(1)} s (${sim_s.toFixed(1)} s simulated)`,
    `  datagrams  up ${stats.datagrams.up} in, ${stats.forwarded.up} forwarded; down ${stats.datagrams.down} in, ${stats.forwarded.down} forwarded`,
    `  faults     ${faults}`,
    `  flows      ${stats.flows} (rebinds ${stats.rebinds})`,
    `  dropped    held-queue full ${d.overflow}, flow limit ${d.flowLimit}, oversize ${d.oversize}, replies to a rebound port ${d.stale}`,
  ].join('\n');
}

function faultLine(f: ProxyFault): string {
  const where = f.direction === null ? f.flow : `${f.flow} ${f.direction} #${f.index ?? '?'}`;
  return `[${(f.at_ms / 1000).toFixed(3)} s] ${f.kind} ${where}${f.detail ? ` (${f.detail})` : ''}\n`;
}

export const proxyCommand: CommandModule<GlobalArgs, ProxyArgs> = {
  command: 'proxy',
  describe: 'the chaos proxy: a seeded UDP fault relay (loss, bursts, delay, duplicates, reordering, corruption, blackholes, NAT rebinding) in front of a server',
  builder: (y) =>
    y
      .option('listen', { type: 'string', default: '127.0.0.1:0', describe: 'HOST:PORT to listen on (loopback; port 0: any free port, printed)' })
      .option('target', { type: 'string', describe: 'HOST:PORT of the UDP/DTLS server (loopback)' })
      .option('loss', { type: 'string', describe: 'probability 0..1 (or 20%) that a datagram is dropped' })
      .option('burst', { type: 'string', describe: 'burst loss ENTER:EXIT[:LOSS]: Gilbert–Elliott probabilities per datagram (e.g. 0.02:0.3)' })
      .option('delay-ms', { type: 'string', describe: 'fixed delay added to every datagram (simulated ms)' })
      .option('jitter-ms', { type: 'string', describe: 'delay varies uniformly by ± this (simulated ms, never below 0)' })
      .option('duplicate', { type: 'string', describe: 'probability that a datagram is sent twice' })
      .option('reorder', { type: 'string', describe: 'probability that a datagram is held and sent after the next one' })
      .option('corrupt', { type: 'string', describe: 'probability that 1..3 bytes of a datagram are flipped' })
      .option('blackhole', { type: 'string', describe: 'AT_S:FOR_S: link down for FOR_S seconds from AT_S after start (repeatable)' })
      .option('rebind-every-s', { type: 'string', describe: 'give every flow a new upstream source port every N seconds (NAT rebinding)' })
      .option('rebind-at-s', { type: 'string', describe: 'rebind at this many seconds after start (repeatable)' })
      .option('direction', { type: 'string', default: 'both', describe: 'which way the probabilistic faults apply: up (to the server), down, both' })
      .option('seed', { type: 'string', default: '1', describe: 'seed of every fault decision (same seed + same datagrams = same faults)' })
      .option('time-scale', { type: 'string', default: '1', describe: 'real seconds per simulated second: 0.01 makes a 60 s blackhole (and every delay) take 1/100 of the time' })
      .option('label', { type: 'string', describe: 'name one flow for every client (decisions keyed by it, e.g. a device name); default flow-0, flow-1, ... per client' })
      .option('max-flows', { type: 'string', describe: `clients (source addresses) at once, 1..${MAX_FLOWS_LIMIT} (default ${DEFAULT_MAX_FLOWS})` })
      .option('idle-timeout-s', { type: 'string', describe: `forget a flow after this many idle seconds (default ${DEFAULT_IDLE_TIMEOUT_MS / 1000})` })
      .option('log-faults', { type: 'boolean', default: false, describe: 'print each fault as it happens on stderr' })
      .check((argv) => {
        if (argv.target === undefined) throw new InputError('BAD_ARGUMENT', '--target: required, HOST:PORT of the server (e.g. --target 127.0.0.1:5684)');
        return true;
      }) as Argv<ProxyArgs>,
  handler: async (argv) => {
    const listen = parseHostPort('--listen', argv.listen, true);
    const target = parseHostPort('--target', argv.target ?? '', false);
    const schedule = scheduleFromArgs(argv);
    const seed = parseIntArg('--seed', argv.seed);
    const scale = parseNumber('--time-scale', argv['time-scale'], 0, 1000, 'a factor') ?? 1;
    if (!(scale > 0)) throw new InputError('BAD_ARGUMENT', `--time-scale: expected a factor > 0, got ${JSON.stringify(argv['time-scale'])}`);
    const maxFlows = argv['max-flows'] === undefined ? undefined : parseIntArg('--max-flows', argv['max-flows']);
    if (maxFlows !== undefined && !(maxFlows >= 1 && maxFlows <= MAX_FLOWS_LIMIT)) throw new InputError('BAD_ARGUMENT', `--max-flows: expected 1..${MAX_FLOWS_LIMIT}, got ${maxFlows}`);
    const idle_s = parseNumber('--idle-timeout-s', argv['idle-timeout-s'], 0.001, 1e9, 'seconds');
    const clock = new ScaledClock(scale);
    const logFaults = argv['log-faults'];

    const proxy = await ChaosProxy.start({
      listen,
      target,
      seed,
      clock,
      schedule,
      ...(argv.label !== undefined ? { label: argv.label } : {}),
      ...(maxFlows !== undefined ? { maxFlows } : {}),
      ...(idle_s !== undefined ? { idleTimeout_ms: Math.max(1, Math.round(idle_s * 1000)) } : {}),
      ...(logFaults ? { onFault: (f: ProxyFault) => void process.stderr.write(faultLine(f)) } : {}),
    });
    const wallStart_ms = performance.now();
    const where = `${proxy.address.host}:${proxy.address.port}`;
    if (argv.json) {
      process.stderr.write(`chaos proxy listening on ${where} -> ${target.host}:${target.port}\n`);
    } else {
      process.stdout.write(
        [
          `ota-sim chaos proxy (seed ${seed}, time scale ${scale})`,
          `  listening  ${where}  ->  target ${target.host}:${target.port}`,
          `  faults     ${describeSchedule(schedule)}`,
          `listening; Ctrl-C stops and prints statistics`,
          '',
        ].join('\n'),
      );
    }
    await untilSignal();
    const stats = proxy.stats();
    const faults = proxy.faults;
    const sim_ms = clock.now() - proxy.startedAt_ms;
    await proxy.close();
    const wall_s = (performance.now() - wallStart_ms) / 1000;
    emit(argv, () => describeStats(stats, wall_s, sim_ms / 1000), {
      listen: proxy.address,
      target,
      seed,
      timeScale: scale,
      schedule,
      wall_s,
      simulated_s: sim_ms / 1000,
      stats,
      faults,
    });
  },
};
