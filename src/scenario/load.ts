/**
 * Loading scenarios: YAML files (or folders of them, in name order), or objects given through the
 * API; the schema check (schema.ts), then the cross-references the schema alone cannot see
 * (image, key, group and release names), then the keys and images built in memory — so every
 * mistake in a file is an InputError naming the file and the path before anything runs.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { InputError } from '../errors.js';
import type { BoardProfile } from '../flash/types.js';
import { loadBoard } from '../flash/index.js';
import { behaviourTlv, boardTlv, ed25519KeyPemFromSeed, parseImage, parseSigningKeyPem, publicKeyOf, signImage } from '../image/index.js';
import type { PublicKey, SigningKey } from '../image/index.js';
import { Prng } from '../prng.js';
import { parseScenarioSpec } from './schema.js';
import type { ImageSpec, ScenarioSpec } from './schema.js';

export interface BuiltImage {
  name: string;
  bytes: Uint8Array;
  /** The header's version ("1.1.0+0"), or null when the bytes do not parse (a truncated image). */
  version: string | null;
  /** The version as the release names it: the spec's text, else the header's. */
  releaseVersion: string;
  board: string | null;
}

export interface LoadedScenario {
  spec: ScenarioSpec;
  /** The file it came from, as given (null for an object). */
  file: string | null;
  /** Paths inside the scenario resolve against this folder. */
  dir: string;
  boards: Map<string, BoardProfile>;
  keys: Map<string, SigningKey>;
  trusted: PublicKey[];
  images: Map<string, BuiltImage>;
}

const DEFAULT_PAYLOAD_BYTES = 16 * 1024;

function fail(file: string, path: string, message: string): never {
  throw new InputError('BAD_SCENARIO', `${file}: ${path}: ${message}`);
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError('NO_SUCH_FILE', `${file}: cannot read the scenario file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/** Every *.yaml / *.yml under a folder (not recursive), or the file itself, in name order. */
export function scenarioFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new InputError('NO_SUCH_FILE', `${p}: no such scenario file or folder`);
    }
    if (st.isDirectory()) {
      const names = readdirSync(p)
        .filter((n) => /\.ya?ml$/i.test(n))
        .sort();
      if (names.length === 0) throw new InputError('NO_SCENARIOS', `${p}: the folder holds no *.yaml scenario files`);
      for (const n of names) out.push(join(p, n));
    } else out.push(p);
  }
  return out;
}

/** Load one scenario from a YAML file path, or from an already-parsed object. */
export function loadScenario(source: string | object, opts: { dir?: string } = {}): LoadedScenario {
  let data: unknown;
  let file: string | null = null;
  let shown = '(scenario object)';
  let dir = opts.dir ?? process.cwd();
  if (typeof source === 'string') {
    file = source;
    shown = source;
    dir = dirname(resolve(source));
    const text = readText(source);
    try {
      data = parseYaml(text, { prettyErrors: false });
    } catch (e) {
      const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
      throw new InputError('BAD_SCENARIO', `${shown}: not valid YAML: ${msg}`);
    }
    if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new InputError('BAD_SCENARIO', `${shown}: expected a YAML mapping with name, description, board, strategy, images, groups and expect`);
  } else data = source;
  const spec = parseScenarioSpec(data, shown);
  return build(spec, file, shown, dir);
}

function build(spec: ScenarioSpec, file: string | null, shown: string, dir: string): LoadedScenario {
  const boards = new Map<string, BoardProfile>();
  const boardOf = (name: string, path: string): BoardProfile => {
    let b = boards.get(name);
    if (!b) {
      try {
        b = loadBoard(name);
      } catch (e) {
        fail(shown, path, e instanceof Error ? e.message : String(e));
      }
      boards.set(name, b);
    }
    return b;
  };
  const mainBoard = boardOf(spec.board, 'board');
  if (!mainBoard.mcuboot.strategies.includes(spec.strategy)) fail(shown, 'strategy', `board ${spec.board} supports ${mainBoard.mcuboot.strategies.join(', ')}, got "${spec.strategy}"`);
  spec.groups.forEach((g, i) => {
    if (g.board !== undefined) {
      const b = boardOf(g.board, `groups[${i}].board`);
      if (!b.mcuboot.strategies.includes(spec.strategy)) fail(shown, `groups[${i}].board`, `board ${g.board} does not support ${spec.strategy}`);
    }
  });

  // keys
  const keys = new Map<string, SigningKey>();
  const keySpecs = spec.keys ?? { release: { seed: 1 } };
  for (const [name, k] of Object.entries(keySpecs)) {
    if ('seed' in k) keys.set(name, parseSigningKeyPem(ed25519KeyPemFromSeed(new Prng(k.seed).bytes(32)), `keys.${name}`));
    else {
      const path = resolve(dir, k.pem);
      let pem: string;
      try {
        pem = readFileSync(path, 'utf8');
      } catch {
        fail(shown, `keys.${name}.pem`, `cannot read ${k.pem} (relative to the scenario file)`);
      }
      try {
        keys.set(name, parseSigningKeyPem(pem, k.pem));
      } catch (e) {
        fail(shown, `keys.${name}.pem`, e instanceof Error ? e.message : String(e));
      }
    }
  }
  const firstKey = [...keys.keys()][0];
  if (firstKey === undefined) fail(shown, 'keys', 'expected at least one key');
  const trusted: PublicKey[] = [];
  (spec.trust ?? [firstKey]).forEach((n, i) => {
    const k = keys.get(n);
    if (!k) fail(shown, `trust[${i}]`, `expected a key name from keys (${[...keys.keys()].join(', ')}), got "${n}"`);
    trusted.push(publicKeyOf(k));
  });

  // images
  const images = new Map<string, BuiltImage>();
  for (const [name, im] of Object.entries(spec.images)) images.set(name, buildImage(name, im, { shown, dir, keys, firstKey, mainBoard, boardName: spec.board }));

  // cross references
  const imageNamed = (n: string, path: string): BuiltImage => {
    const im = images.get(n);
    if (!im) fail(shown, path, `expected an image name from images (${[...images.keys()].join(', ')}), got "${n}"`);
    return im;
  };
  const groupNames = new Set<string>();
  spec.groups.forEach((g, i) => {
    if (groupNames.has(g.name)) fail(shown, `groups[${i}].name`, `group "${g.name}" is defined twice`);
    groupNames.add(g.name);
    const im = imageNamed(g.image, `groups[${i}].image`);
    if (im.version === null) fail(shown, `groups[${i}].image`, `the initial image "${g.image}" must be a valid image`);
  });
  const deviceIds = new Set<string>();
  for (const g of spec.groups) for (let i = 0; i < g.count; i++) deviceIds.add(`${g.name}-${i}`);
  const checkDevices = (list: readonly string[] | undefined, path: string): void => {
    list?.forEach((d, i) => {
      if (!groupNames.has(d) && !deviceIds.has(d)) fail(shown, `${path}[${i}]`, `expected a group name (${[...groupNames].join(', ')}) or a device id like "${spec.groups[0]!.name}-0", got "${d}"`);
    });
  };
  const releases = new Set<string>();
  (spec.timeline ?? []).forEach((step, i) => {
    const p = `timeline[${i}]`;
    if ('release' in step) {
      if (releases.has(step.release.id)) fail(shown, `${p}.release.id`, `release "${step.release.id}" is created twice`);
      releases.add(step.release.id);
      step.release.images.forEach((n, j) => imageNamed(n, `${p}.release.images[${j}]`));
      step.release.groups?.forEach((n, j) => {
        if (!groupNames.has(n)) fail(shown, `${p}.release.groups[${j}]`, `expected a group name (${[...groupNames].join(', ')}), got "${n}"`);
      });
    } else if ('activate' in step) {
      if (!releases.has(step.activate)) fail(shown, `${p}.activate`, `expected a release created earlier in the timeline, got "${step.activate}"`);
    } else if ('rollout' in step) {
      if (!releases.has(step.rollout.release)) fail(shown, `${p}.rollout.release`, `expected a release created earlier in the timeline, got "${step.rollout.release}"`);
    } else if (step.rollback !== true && !releases.has(step.rollback)) fail(shown, `${p}.rollback`, `expected a release created earlier in the timeline, got "${step.rollback}"`);
  });
  const external = spec.server !== undefined && 'url' in spec.server;
  if (external && (spec.timeline ?? []).length > 0) fail(shown, 'timeline', 'an external server is driven by its own operator: a timeline needs the embedded server');
  (spec.faults ?? []).forEach((f, i) => {
    const p = `faults[${i}]`;
    if ('devices' in f) checkDevices(f.devices, `${p}.devices`);
    if (f.kind === 'replace-artifact') {
      const a = imageNamed(f.image, `${p}.image`);
      const b = imageNamed(f.with, `${p}.with`);
      if (a.bytes.length !== b.bytes.length) fail(shown, `${p}.with`, `the replacement must have the same length as "${f.image}" (${a.bytes.length} bytes), got ${b.bytes.length}`);
    }
    if (f.kind === 'wrong-manifest-hash') imageNamed(f.image, `${p}.image`);
    if (f.kind === 'power-cut-at-block' && (f.atBlock === undefined) === (f.everyBlocks === undefined)) fail(shown, p, 'expected exactly one of atBlock or everyBlocks');
    if (f.kind === 'server-restart' && (f.at_ms === undefined) === (f.atBlock === undefined)) fail(shown, p, 'expected exactly one of at_ms or atBlock');
    if (external && (f.kind === 'server-restart' || f.kind === 'replace-artifact' || f.kind === 'wrong-manifest-hash')) fail(shown, `${p}.kind`, `${f.kind} needs the embedded server`);
  });
  for (const g of Object.keys(spec.expect.groups)) if (!groupNames.has(g)) fail(shown, `expect.groups.${g}`, `expected a group name (${[...groupNames].join(', ')})`);
  spec.groups.forEach((g) => {
    if (spec.expect.groups[g.name] === undefined) fail(shown, `expect.groups`, `expected an expectation for group "${g.name}" (every group needs one)`);
  });
  return { spec, file, dir, boards, keys, trusted, images };
}

function buildImage(
  name: string,
  im: ImageSpec,
  c: { shown: string; dir: string; keys: Map<string, SigningKey>; firstKey: string; mainBoard: BoardProfile; boardName: string },
): BuiltImage {
  const path = `images.${name}`;
  if ('file' in im) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(resolve(c.dir, im.file)));
    } catch {
      fail(c.shown, `${path}.file`, `cannot read ${im.file} (relative to the scenario file)`);
    }
    try {
      const p = parseImage(bytes);
      return { name, bytes, version: p.version, releaseVersion: p.version, board: p.board };
    } catch (e) {
      fail(c.shown, `${path}.file`, `${im.file} is not an MCUboot image: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const keyName = im.signWith ?? c.firstKey;
  const key = c.keys.get(keyName);
  if (!key) fail(c.shown, `${path}.signWith`, `expected a key name from keys (${[...c.keys.keys()].join(', ')}), got "${keyName}"`);
  const board = im.board ?? c.boardName;
  const slot_bytes = c.mainBoard.partitions.slot1.size;
  const payload_bytes = im.oversize ? slot_bytes + 1 : (im.size_bytes ?? DEFAULT_PAYLOAD_BYTES);
  // Deterministic payload from the image's name and version (no randomness outside the seed).
  let h = 7;
  for (const ch of `${name}/${im.version}`) h = (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0;
  const payload = new Prng(im.payloadSeed ?? h).bytes(payload_bytes);
  let bytes: Uint8Array;
  try {
    bytes = signImage(payload, {
      key,
      headerSize_bytes: 0x200,
      padHeader: true,
      slotSize_bytes: im.oversize ? 0 : slot_bytes,
      align: 4,
      version: im.version,
      securityCounter: im.security_counter ?? null,
      nonBootable: im.nonBootable ?? false,
      customTlvs: [behaviourTlv(im.behaviour ?? {}), boardTlv(board)],
    });
  } catch (e) {
    fail(c.shown, path, e instanceof Error ? e.message : String(e));
  }
  const version = parseImage(bytes).version;
  if (im.corrupt === 'signature') {
    bytes = Uint8Array.from(bytes);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01; // the signature is the last TLV
  } else if (im.corrupt === 'hash') {
    bytes = Uint8Array.from(bytes);
    bytes[0x200 + 16] = bytes[0x200 + 16]! ^ 0xff; // a payload byte: the SHA-256 TLV no longer matches
  } else if (im.corrupt === 'truncate') {
    bytes = bytes.slice(0, bytes.length - 100);
  }
  return { name, bytes, version: im.corrupt === 'truncate' ? null : version, releaseVersion: im.version, board };
}
