/**
 * Case specs for whole-update sweeps: built programmatically (board, strategy, from/to images
 * with behaviour, transport), or taken from a loaded scenario file (its board, strategy, keys,
 * the first group's initial image and the first release's target).
 */
import { loadBoard } from '../flash/board.js';
import type { BoardProfile, Strategy } from '../flash/types.js';
import { InputError } from '../errors.js';
import { behaviourTlv, boardTlv, ed25519KeyPemFromSeed, parseSigningKeyPem, publicKeyOf, signImage } from '../image/index.js';
import type { FirmwareBehaviour, SigningKey } from '../image/index.js';
import { Prng } from '../prng.js';
import type { LoadedScenario } from './load.js';
import { sameVersion } from './oracle.js';
import type { SweepAgentSettings, UpdateCaseSpec } from './sweep-world.js';

export interface ImageRecipe {
  version: string;
  behaviour?: Partial<FirmwareBehaviour>;
  /** Board TLV (default the spec's board). */
  board?: string;
  /** Payload bytes before header and TLVs (default 16 KiB). */
  size_bytes?: number;
  /** Sign with an untrusted key. */
  untrusted?: boolean;
}

export interface UpdateSpecRecipe {
  name?: string;
  board: string | BoardProfile;
  strategy: Strategy;
  transport?: 'udp' | 'dtls';
  from: ImageRecipe;
  to: ImageRecipe;
  /** Default: the target's self-test is not "pass", its board differs, or it is untrusted. */
  targetFails?: boolean;
  agent?: SweepAgentSettings;
  timeScale?: number;
}

function keyFromSeed(seed: number): SigningKey {
  return parseSigningKeyPem(ed25519KeyPemFromSeed(new Prng(seed).bytes(32)), `key seed ${seed}`);
}

/** Deterministic signed images and the spec (the same recipe gives the same bytes). */
export function buildUpdateSpec(r: UpdateSpecRecipe): UpdateCaseSpec {
  const board = typeof r.board === 'string' ? loadBoard(r.board) : r.board;
  const trusted = keyFromSeed(0x0a1);
  const other = keyFromSeed(0x0a2);
  const make = (img: ImageRecipe, salt: number): Uint8Array =>
    signImage(new Prng(salt * 7919 + img.version.length).bytes(img.size_bytes ?? 16 * 1024), {
      key: img.untrusted ? other : trusted,
      headerSize_bytes: 0x200,
      padHeader: true,
      slotSize_bytes: board.partitions.slot0.size,
      align: Math.min(8, board.flash[0]!.writeSize) as 1 | 2 | 4 | 8,
      version: img.version,
      customTlvs: [behaviourTlv(img.behaviour ?? {}), boardTlv(img.board ?? board.name)],
    });
  const fails = r.targetFails ?? ((r.to.behaviour?.selfTest ?? 'pass') !== 'pass' || (r.to.board !== undefined && r.to.board !== board.name) || r.to.untrusted === true);
  return {
    name: r.name ?? `${board.name}-${r.strategy}`,
    board,
    strategy: r.strategy,
    trustedKeys: [publicKeyOf(trusted)],
    from: { bytes: make(r.from, 1), version: r.from.version },
    to: { bytes: make(r.to, 2), version: r.to.version },
    targetFails: fails,
    transport: r.transport ?? 'udp',
    ...(r.agent ? { agent: r.agent } : {}),
    ...(r.timeScale !== undefined ? { timeScale: r.timeScale } : {}),
  };
}

/**
 * A whole-update sweep spec from a loaded scenario: its board and strategy, trusted keys, the
 * first group's image (confirmed in slot0), the first release's image for that board, the
 * transport of its embedded server, the group's agent settings and the time scale. The target
 * fails when the scenario expects the group to end on another version than the target's
 * (or says so with expect.groups.G.targetFails).
 */
export function updateSpecFromScenario(s: LoadedScenario): UpdateCaseSpec {
  const spec = s.spec;
  const shown = s.file ?? spec.name;
  const board = s.boards.get(spec.board) ?? loadBoard(spec.board);
  const g = spec.groups[0]!;
  let release: string[] | null = null;
  for (const step of spec.timeline ?? []) {
    if ('release' in step) {
      release = step.release.images;
      break;
    }
  }
  if (release === null) throw new InputError('BAD_SCENARIO', `${shown}: timeline: a whole-update sweep needs a release step (the update it sweeps)`);
  const from = s.images.get(g.image);
  const candidates = release.map((n) => s.images.get(n)).filter((i): i is NonNullable<typeof i> => i !== undefined);
  const to = candidates.find((i) => i.board === board.name) ?? candidates.find((i) => i.board === null) ?? candidates[0];
  if (!from || !to) throw new InputError('BAD_SCENARIO', `${shown}: images: the first group's image and the first release's image must be defined`);
  if (spec.server && 'url' in spec.server) throw new InputError('BAD_SCENARIO', `${shown}: server: a whole-update sweep runs its own embedded server; an external url cannot be swept`);
  const want = spec.expect.groups[g.name];
  const targetFails = want?.targetFails ?? (want !== undefined && !sameVersion(want.version, to.releaseVersion));
  const ag = g.agent ?? {};
  const agent: SweepAgentSettings = {};
  if (ag.profile !== undefined) agent.profile = ag.profile;
  if (ag.blockSize_bytes !== undefined) agent.blockSize_bytes = ag.blockSize_bytes;
  if (ag.window !== undefined) agent.window = ag.window;
  if (ag.persistEvery_blocks !== undefined) agent.persistEvery_blocks = ag.persistEvery_blocks;
  if (ag.rollbackTimer_ms !== undefined) agent.rollbackTimer_ms = ag.rollbackTimer_ms;
  if (ag.maxAttemptsPerVersion !== undefined) agent.maxAttemptsPerVersion = ag.maxAttemptsPerVersion;
  return {
    name: spec.name,
    board,
    strategy: spec.strategy,
    trustedKeys: s.trusted,
    from: { bytes: from.bytes, version: from.releaseVersion },
    to: { bytes: to.bytes, version: to.releaseVersion },
    targetFails,
    transport: spec.server && 'embedded' in spec.server ? (spec.server.transport ?? 'udp') : 'udp',
    agent,
    timeScale: Math.min(spec.timeScale ?? 0.01, 0.01),
  };
}
