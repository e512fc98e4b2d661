/**
 * The scenario file schema (scenarios/*.yaml): one zod schema, strict everywhere (an unknown key
 * is an error, so a typo never silently passes), and a formatter that turns zod's issues into one
 * line each: `FILE: PATH: expected ..., got ...`. The reference is /tmp/readme-scenarios.md
 * (merged into README): every field below is documented there.
 */
import { z } from 'zod';
import { InputError } from '../errors.js';

const whole = (min = 0, max = Number.MAX_SAFE_INTEGER): z.ZodNumber =>
  z
    .number({ error: `expected a whole number ≥ ${min}` })
    .int({ error: `expected a whole number ≥ ${min}` })
    .min(min, { error: `expected a whole number ≥ ${min}` })
    .max(max, { error: `expected a whole number ≤ ${max}` });
const ms = (min = 0): z.ZodNumber => z.number({ error: `expected a time in simulated ms ≥ ${min}` }).min(min, { error: `expected a time in simulated ms ≥ ${min}` }).max(86_400_000 * 30, { error: 'expected at most 30 days of simulated ms' });
const probability = z.number({ error: 'expected a probability 0..1' }).min(0, { error: 'expected a probability 0..1' }).max(1, { error: 'expected a probability 0..1' });
const name = z.string({ error: 'expected a name' }).regex(/^[A-Za-z0-9._:@+-]{1,64}$/, { error: 'expected a name of 1..64 of A-Z a-z 0-9 . _ : @ + -' });
const version = z.string({ error: 'expected a version like "1.2.3" or "1.2.3+4"' }).regex(/^\d+(\.\d+){0,2}(\+\d+)?$/, { error: 'expected a version like "1.2.3" or "1.2.3+4"' });
/** Which devices a fault applies to: group names or device ids ("fleet-3"); default every device. */
const devices = z.array(name, { error: 'expected a list of group names or device ids' }).min(1).optional();

export const STRATEGIES = ['swap-move', 'swap-scratch', 'overwrite-only'] as const;

const behaviour = z.strictObject({
  selfTest: z.enum(['pass', 'fail', 'crash', 'hang'], { error: 'expected pass, fail, crash or hang' }).optional(),
  bootMs: ms().optional(),
  connect: z.boolean({ error: 'expected true or false' }).optional(),
  crashAfterMs: ms().optional(),
});

const keySpec = z.union([z.strictObject({ seed: whole(0, 0xffffffff) }), z.strictObject({ pem: z.string({ error: 'expected a PEM file path' }).min(1) })], {
  error: 'expected { seed: N } or { pem: path/to/key.pem }',
});

/** An image: a signed file, or "build me version V with behaviour B for board X" (signed in memory). */
const imageSpec = z.union(
  [
    z.strictObject({ file: z.string({ error: 'expected a path to a signed image' }).min(1) }),
    z.strictObject({
      version,
      /** The key that signs it (a name from `keys`); default the first key. */
      signWith: name.optional(),
      /** Payload size before the header and TLVs (default 16 KiB). */
      size_bytes: whole(16, 16 * 1024 * 1024).optional(),
      /** Varies the payload bytes (default: derived from the image's name and version). */
      payloadSeed: whole(0, 0xffffffff).optional(),
      behaviour: behaviour.optional(),
      /** Board TLV (default the scenario's board). */
      board: name.optional(),
      security_counter: whole(0, 0xffffffff).optional(),
      /** Break it after signing: a flipped signature byte, a flipped hash byte, or cut short. */
      corrupt: z.enum(['signature', 'hash', 'truncate'], { error: 'expected signature, hash or truncate' }).optional(),
      /** Make the payload one byte larger than the slot can hold. */
      oversize: z.boolean({ error: 'expected true or false' }).optional(),
      /** Set IMAGE_F_NON_BOOTABLE in the header. */
      nonBootable: z.boolean({ error: 'expected true or false' }).optional(),
    }),
  ],
  { error: 'expected { file: path } or { version: "1.2.3", ... }' },
);

const agentSettings = z.strictObject({
  profile: z.enum(['golioth', 'ota-sim'], { error: 'expected golioth or ota-sim' }).optional(),
  blockSize_bytes: z.union([16, 32, 64, 128, 256, 512, 1024].map((n) => z.literal(n)) as unknown as [z.ZodLiteral<number>, z.ZodLiteral<number>], { error: 'expected a block size of 16, 32, 64, 128, 256, 512 or 1024' }).optional(),
  window: whole(1, 64).optional(),
  persistEvery_blocks: whole(1, 1024).optional(),
  rollbackTimer_ms: ms(1).optional(),
  maxAttemptsPerVersion: whole(1, 100).optional(),
  backoffBase_ms: ms(1).optional(),
  backoffCap_ms: ms(1).optional(),
  blockRetryDelay_ms: ms().optional(),
  maxBlockRetries: whole(0, 100).optional(),
  pollInterval_ms: ms(1).optional(),
  reportRetry_ms: ms(1).optional(),
  handshakeAttempts: whole(1, 16).optional(),
  ackTimeout_ms: ms(1).optional(),
  maxRetransmit: whole(0, 20).optional(),
  watchdogTimeout_ms: ms(1).optional(),
  maxReboots: whole(0, 10_000).optional(),
});

const group = z.strictObject({
  name,
  count: whole(1, 1000),
  /** The image programmed confirmed into slot0 at the factory (a name from `images`). */
  image: name,
  tags: z.array(name).optional(),
  board: name.optional(),
  agent: agentSettings.optional(),
});

const server = z.union(
  [
    z.strictObject({ embedded: z.literal(true, { error: 'expected embedded: true' }), transport: z.enum(['udp', 'dtls'], { error: 'expected udp or dtls' }).optional() }),
    z.strictObject({
      url: z.string().regex(/^coaps?:\/\/127\.\d+\.\d+\.\d+:\d+\/?$/, { error: 'expected coap://127.x.y.z:PORT or coaps://127.x.y.z:PORT (loopback only)' }),
      /** One PSK per device, in device order (coaps only). */
      psks: z.array(z.strictObject({ identity: name, key: z.string().min(1).max(64) })).optional(),
    }),
  ],
  { error: 'expected { embedded: true } or { url: coaps://127.0.0.1:PORT, psks: [...] }' },
);

const at = { at_ms: ms().optional() };
const releaseStep = z.strictObject({
  ...at,
  release: z.strictObject({
    id: name,
    /** Image names (one per board). */
    images: z.array(name).min(1),
    rolloutPercent: z.number().min(0, { error: 'expected a percentage 0..100' }).max(100, { error: 'expected a percentage 0..100' }).optional(),
    tags: z.array(name).optional(),
    /** Restrict to these groups' devices. */
    groups: z.array(name).optional(),
    activate: z.boolean().optional(),
  }),
});
const activateStep = z.strictObject({ ...at, activate: name });
const rolloutStep = z.strictObject({ ...at, rollout: z.strictObject({ release: name, percent: z.number().min(0, { error: 'expected a percentage 0..100' }).max(100, { error: 'expected a percentage 0..100' }) }) });
const rollbackStep = z.strictObject({ ...at, rollback: z.union([name, z.literal(true)], { error: 'expected a release id, or true for the newest active one' }) });
const timelineStep = z.union([releaseStep, activateStep, rolloutStep, rollbackStep], {
  error: 'expected a step with one of: release, activate, rollout, rollback (and at_ms)',
});

const cutCommon = {
  devices,
  /** A cut inside the op (torn write / partial erase) instead of before it. */
  torn: z.boolean({ error: 'expected true or false' }).optional(),
  /** Simulated ms the device stays off before power returns (default 1000). */
  off_ms: ms().optional(),
};

const fault = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('power-cut'), atOp: whole(), ...cutCommon }),
    z.strictObject({ kind: z.literal('power-cut-in-state'), state: z.string().min(1), delay_ms: ms().optional(), occurrence: whole(1, 1000).optional(), ...cutCommon }),
    z.strictObject({
      kind: z.literal('power-cut-at-block'),
      atBlock: whole().optional(),
      /** Cut after every N-th block (N, 2N, ...), at most `maxCuts` times. */
      everyBlocks: whole(1).optional(),
      maxCuts: whole(1, 1000).optional(),
      ...cutCommon,
    }),
    z.strictObject({
      kind: z.literal('power-cut-in-boot'),
      /** swap: the test swap; revert: the swap back after a failed test; any: either. */
      phase: z.enum(['swap', 'revert', 'any'], { error: 'expected swap, revert or any' }),
      /** The swap step's sector index (MCUboot's idx, 1-based; default 1). */
      sector: whole(0).optional(),
      /** Flash ops into that step (default 0: before its first op). */
      afterOps: whole(0, 1_000_000).optional(),
      /** Brown-out loop: this many cuts in a row, each in the next boot, soon after power-on (default 1). */
      cuts: whole(1, 100).optional(),
      ...cutCommon,
    }),
    z.strictObject({ kind: z.literal('flash-failure'), atOp: whole(), count: whole(1, 1000).optional(), devices }),
    z.strictObject({
      kind: z.literal('wear-out'),
      partition: z.enum(['slot0', 'slot1', 'scratch', 'ota-state'], { error: 'expected slot0, slot1, scratch or ota-state' }),
      /** Erases left before the endurance is reached (0: worn out already). */
      erasesLeft: whole(0, 1_000_000).optional(),
      devices,
    }),
    z.strictObject({
      kind: z.literal('network'),
      devices,
      loss: probability.optional(),
      burst: z.strictObject({ enter: probability, exit: probability, loss: probability.optional() }).optional(),
      delay_ms: ms().optional(),
      jitter_ms: ms().optional(),
      duplicate: probability.optional(),
      reorder: probability.optional(),
      corrupt: probability.optional(),
      blackholes: z.array(z.strictObject({ at_ms: ms(), for_ms: ms(1) })).max(1000).optional(),
      /** Link down for `for_ms` when the device writes download block `atBlock`. */
      blackholeAtBlock: z.strictObject({ atBlock: whole(), for_ms: ms(1) }).optional(),
      rebindEvery_ms: ms(1).optional(),
      rebindAt_ms: z.array(ms()).max(1000).optional(),
      /** Rebind when the first device writes download block `rebindAtBlock`. */
      rebindAtBlock: whole().optional(),
      directions: z.array(z.enum(['up', 'down'])).min(1).optional(),
    }),
    z.strictObject({
      kind: z.literal('server-restart'),
      at_ms: ms().optional(),
      /** Restart when the first device writes this download block. */
      atBlock: whole().optional(),
      /** How long the server stays down (simulated ms, default 5000). */
      down_ms: ms().optional(),
    }),
    z.strictObject({
      kind: z.literal('replace-artifact'),
      /** The image whose served bytes change (same length, same manifest entry). */
      image: name,
      with: name,
      /** When the first device writes this download block (default 0). */
      atBlock: whole().optional(),
    }),
    z.strictObject({
      kind: z.literal('wrong-manifest-hash'),
      /** The manifest keeps this image's SHA-256 but a byte of what is served is flipped. */
      image: name,
    }),
  ],
  { error: 'expected kind: power-cut, power-cut-in-state, power-cut-at-block, power-cut-in-boot, flash-failure, wear-out, network, server-restart, replace-artifact or wrong-manifest-hash' },
);

const reportSeen = z.strictObject({ s: whole(0, 3).optional(), r: whole(0, 11).optional(), t: z.string().optional() });

const groupExpectation = z.strictObject({
  /** The version every device of the group runs at the end. */
  version,
  confirmed: z.boolean().optional(),
  /** Reports the server must have seen from every device of the group (fields given must match). */
  reports: z.array(reportSeen).optional(),
  /** Reports that must not appear. */
  noReports: z.array(reportSeen).optional(),
  /** The update aimed at this group is expected to fail (rolled back or refused); default: inferred. */
  targetFails: z.boolean().optional(),
});

const expectations = z.strictObject({
  groups: z.record(name, groupExpectation),
  /** Per device, over the run. */
  maxReboots: whole().optional(),
  maxDownloads: whole().optional(),
  maxBytes: whole().optional(),
  /** Faults that must have been injected at least once (by kind), so a scenario cannot pass vacuously. */
  faultsInjected: z.array(z.string()).optional(),
});

export const scenarioSchema = z.strictObject({
  name,
  description: z.string({ error: 'expected a sentence saying the question this scenario answers' }).min(1),
  seed: whole(0, 0xffffffff).optional(),
  board: name,
  strategy: z.enum(STRATEGIES, { error: 'expected swap-move, swap-scratch or overwrite-only' }),
  /** One factor for every timer (agent, CoAP, DTLS, proxy, flash costs): 0.01 runs 100x faster than real time. */
  timeScale: z.number({ error: 'expected a number > 0' }).gt(0, { error: 'expected a number > 0' }).max(10).optional(),
  /** Wall-clock limit, seconds (default 60). */
  wallLimit_s: z.number({ error: 'expected seconds > 0' }).gt(0, { error: 'expected seconds > 0' }).max(3600).optional(),
  /** Simulated ms without any agent state change before an idle fleet counts as settled (default 40000). */
  settle_ms: ms(1).optional(),
  keys: z.record(name, keySpec).optional(),
  /** Key names the bootloader and agent trust (default: the first key). */
  trust: z.array(name).min(1).optional(),
  images: z.record(name, imageSpec),
  groups: z.array(group).min(1).max(100),
  server: server.optional(),
  timeline: z.array(timelineStep).max(1000).optional(),
  faults: z.array(fault).max(1000).optional(),
  expect: expectations,
});

export type ScenarioSpec = z.infer<typeof scenarioSchema>;
export type FaultSpec = z.infer<typeof fault>;
export type ImageSpec = z.infer<typeof imageSpec>;
export type TimelineStepSpec = z.infer<typeof timelineStep>;
export type GroupSpec = z.infer<typeof group>;
export type AgentSettings = z.infer<typeof agentSettings>;

// ---- error formatting ------------------------------------------------------------------------

function pathText(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out === '' ? '(top level)' : out;
}

function got(input: unknown): string {
  if (input === undefined) return 'nothing';
  const text = JSON.stringify(input);
  if (text === undefined) return String(input);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Every key name the schema knows, for "did you mean" hints on typos. */
const KNOWN_KEYS: string[] = [];
function collectKeys(s: unknown, depth = 0): void {
  if (depth > 12 || typeof s !== 'object' || s === null) return;
  const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
  if (!def) return;
  const shape = def['shape'];
  if (shape && typeof shape === 'object') {
    for (const [k, v] of Object.entries(shape)) {
      if (!KNOWN_KEYS.includes(k)) KNOWN_KEYS.push(k);
      collectKeys(v, depth + 1);
    }
  }
  for (const k of ['innerType', 'element', 'valueType', 'in', 'out']) collectKeys(def[k], depth + 1);
  const options = def['options'];
  if (Array.isArray(options)) for (const o of options) collectKeys(o, depth + 1);
}
collectKeys(scenarioSchema);

function distance(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

function suggestion(key: string): string {
  let best: string | null = null;
  let bestD = 3;
  for (const k of KNOWN_KEYS) {
    const dd = distance(key, k);
    if (dd < bestD) {
      best = k;
      bestD = dd;
    }
  }
  return best === null ? '' : ` (did you mean "${best}"?)`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** One line per issue: `PATH: expected ..., got ...`. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], data: unknown): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const where = pathText(issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) lines.push(`${pathText([...issue.path, k])}: unknown key "${k}"${suggestion(k)}`);
      continue;
    }
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // Report the branch that got furthest when exactly one branch matched the shape closely.
      const deepest = issue.errors.map((errs) => errs.filter((e) => e.code !== 'invalid_type' || e.path.length > 0)).filter((errs) => errs.length > 0 && errs.every((e) => e.path.length > 0));
      if (deepest.length === 1) {
        lines.push(...formatIssues(deepest[0]!.map((e) => ({ ...e, path: [...issue.path, ...e.path] })), data));
        continue;
      }
    }
    const input = issue.code === 'invalid_union' || !('input' in issue) ? valueAt(data, issue.path) : issue.input;
    let message = issue.message;
    if (issue.code === 'invalid_value' && /^Invalid/.test(message)) message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    else if (issue.code === 'invalid_type' && /^Invalid input/.test(message)) message = `expected ${issue.expected}`;
    else if (/^Invalid input/.test(message)) message = 'unexpected value';
    const missing = input === undefined && issue.code === 'invalid_type';
    lines.push(`${where}: ${message}, got ${missing ? 'nothing (the field is required)' : got(input)}`);
  }
  return [...new Set(lines)];
}

/** Parse a scenario object; throws InputError with one line per problem, each naming `file` and the path. */
export function parseScenarioSpec(data: unknown, file: string): ScenarioSpec {
  const r = scenarioSchema.safeParse(data, { reportInput: true });
  if (r.success) return r.data;
  const lines = formatIssues(r.error.issues, data).map((l) => `${file}: ${l}`);
  throw new InputError('BAD_SCENARIO', lines.join('\n'));
}
