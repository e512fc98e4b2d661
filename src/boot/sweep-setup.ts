/**
 * The scenario a sweep runs, built from a small setup (board, strategy, image size, write size,
 * erase value): a fixed ed25519 key, two deterministic images (1.0.0 and 2.0.0) signed for the
 * board, and a flash with 1.0.0 confirmed in slot0 and 2.0.0 pending as a test upgrade in slot1.
 * Everything is a pure function of the setup, so a replay command rebuilds the very same flash.
 */
import { InputError } from '../errors.js';
import { loadBoard, parseBoard, strategyProblem } from '../flash/board.js';
import { Flash } from '../flash/flash.js';
import type { BoardProfile, Strategy } from '../flash/types.js';
import { createTrustStore, ed25519KeyPemFromSeed, parseSigningKeyPem, signImage } from '../image/index.js';
import type { PublicKey, SigningKey, TrustStore } from '../image/index.js';
import { Prng } from '../prng.js';
import { makeContext } from './boot.js';
import { appMaxSizeOverwrite } from './overwrite-only.js';
import { programSlot } from './program.js';
import { appMaxSizeMove } from './swap-move.js';
import { appMaxSizeScratch } from './swap-scratch.js';

export type SweepPhase = 'swap' | 'revert' | 'all';

export interface SweepSetup {
  /** A shipped board name (or a path to a board file), or a profile object. */
  board: string | BoardProfile;
  strategy: Strategy;
  /**
   * Size of each of the two signed images in bytes — header, payload and TLVs together, as
   * MCUboot's simulator sizes its images (its nrf52840 runs use 204800 = 200 KiB, which exactly
   * fills the 50 sectors swap-move leaves for an image in that layout).
   */
  imageSize_bytes: number;
  /** Write size for every flash device of the board (default: the profile's). */
  writeSize?: number;
  /** Erase value for every flash device of the board (default: the profile's). */
  eraseValue?: 0 | 0xff;
  /** Seed of every fault decision (torn bits, erase patterns, multi-cut points); default 1. */
  seed?: number;
}

/** A built scenario: the board as overridden, the trusted key, both images, and the flash before the upgrade boot. */
export interface Scenario {
  board: BoardProfile;
  /** What the replay command names: the board name as given (or the profile's name). */
  boardArg: string;
  strategy: Strategy;
  imageSize_bytes: number;
  writeSize: number;
  eraseValue: 0 | 0xff;
  key: SigningKey;
  trustedKeys: readonly PublicKey[];
  trust: TrustStore;
  /** Signed 1.0.0 (confirmed in slot0 before the upgrade). */
  oldImage: Uint8Array;
  /** Signed 2.0.0 (pending test upgrade in slot1). */
  newImage: Uint8Array;
  /** slot0 = 1.0.0 confirmed, slot1 = 2.0.0 pending (test); journal started here. */
  initial: Flash;
}

/** The sweep's fixed signing key (seed bytes 0x5w...): deterministic images, the same in every run. */
const SWEEP_KEY_SEED = Buffer.from('0b5e55ed0b5e55ed0b5e55ed0b5e55ed0b5e55ed0b5e55ed0b5e55ed0b5e55ed', 'hex');
/** Header size of the images (Zephyr's CONFIG_ROM_START_OFFSET default). */
export const SWEEP_HEADER_SIZE_BYTES = 0x200;
/** The payload bytes come from this seed, not from the sweep seed: the images never change. */
const PAYLOAD_SEED = 0x1a9e5;

let keyCache: SigningKey | null = null;

/** The fixed ed25519 key every sweep signs its images with. */
export function sweepSigningKey(): SigningKey {
  if (!keyCache) {
    keyCache = parseSigningKeyPem(ed25519KeyPemFromSeed(SWEEP_KEY_SEED), 'sweep key');
  }
  return keyCache;
}

function payload(size_bytes: number, seed: number): Uint8Array {
  return new Prng(seed).bytes(size_bytes);
}

/** Resolve the board of a setup with its overrides; InputError (BAD_BOARD...) if it cannot be. */
export function resolveBoard(setup: Pick<SweepSetup, 'board' | 'writeSize' | 'eraseValue'>): { board: BoardProfile; boardArg: string } {
  const overrides = {
    ...(setup.writeSize !== undefined ? { writeSize: setup.writeSize } : {}),
    ...(setup.eraseValue !== undefined ? { eraseValue: setup.eraseValue } : {}),
  };
  if (typeof setup.board === 'string') return { board: loadBoard(setup.board, overrides), boardArg: setup.board };
  const board = setup.writeSize !== undefined || setup.eraseValue !== undefined ? parseBoard(setup.board, `board ${setup.board.name}`, overrides) : setup.board;
  return { board, boardArg: setup.board.name };
}

/**
 * Why this board cannot run this strategy in ota-sim, or null: not listed by the board, a map
 * that cannot do it, or swap-offset (not modelled yet).
 */
export function strategyUnsupported(board: BoardProfile, strategy: Strategy): string | null {
  if (strategy === 'swap-offset') return 'swap-offset is not modelled yet (use swap-move, swap-scratch or overwrite-only)';
  const map = strategyProblem(strategy, board);
  if (map) return `board ${board.name} cannot run ${strategy}: ${map}`;
  if (!board.mcuboot.strategies.includes(strategy)) {
    return `board ${board.name} does not offer ${strategy} (mcuboot.strategies: ${board.mcuboot.strategies.join(', ')})`;
  }
  return null;
}

/** The largest image the bootloader accepts in this board's slots with this strategy. */
export function maxImageSize(board: BoardProfile, strategy: Strategy): number {
  const flash = Flash.create(board, { journal: false });
  const ctx = makeContext(flash, { strategy, trustedKeys: [] });
  if (strategy === 'swap-move') {
    // swap_run's own check: the image plus the spare sector must end below the first trailer sector.
    return appMaxSizeMove(ctx);
  }
  if (strategy === 'swap-scratch') return appMaxSizeScratch(ctx);
  return appMaxSizeOverwrite(ctx);
}

/**
 * Sign one image: header 0x200 (padded), ed25519, SEC_CNT when the board has a security counter.
 * Not padded to the slot: the flash programming writes the trailer for the board (program.ts),
 * so write size, BOOT_MAX_ALIGN and erase value do not change the image's bytes.
 */
function sign(key: SigningKey, version: string, payloadBytes: Uint8Array, secCnt: number | null): Uint8Array {
  return signImage(payloadBytes, {
    key,
    headerSize_bytes: SWEEP_HEADER_SIZE_BYTES,
    padHeader: true,
    version,
    ...(secCnt !== null ? { securityCounter: secCnt } : {}),
  });
}

/** Signed images by (size, version, SEC_CNT): a matrix builds the same two images for many boards. */
const imageCache = new Map<string, Uint8Array>();

/** One signed image of exactly `total_bytes` (header + payload + TLVs). */
function signedImageOfSize(key: SigningKey, version: string, total_bytes: number, seed: number, secCnt: number | null): Uint8Array {
  const cacheKey = `${total_bytes}|${version}|${secCnt}|${seed}`;
  const hit = imageCache.get(cacheKey);
  if (hit) return hit;
  // The TLV area's length does not depend on the payload: measure it once, then size the payload.
  const probe = sign(key, version, new Uint8Array(16), secCnt);
  const overhead = probe.length - 16;
  const payloadSize = total_bytes - overhead;
  if (payloadSize < 1) {
    throw new InputError('BAD_IMAGE_SIZE', `--image-size ${total_bytes}: an image needs at least ${overhead + 1} bytes (header ${SWEEP_HEADER_SIZE_BYTES} + TLVs ${overhead - SWEEP_HEADER_SIZE_BYTES} + payload)`);
  }
  const image = sign(key, version, payload(payloadSize, seed), secCnt);
  if (image.length !== total_bytes) throw new Error(`assertion failed: signed image is ${image.length} bytes, wanted ${total_bytes}`);
  if (imageCache.size >= 64) imageCache.clear();
  imageCache.set(cacheKey, image);
  return image;
}

/** Check a setup and build its scenario. InputError for every combination that cannot run. */
export function buildScenario(setup: SweepSetup): Scenario {
  const { board, boardArg } = resolveBoard(setup);
  const strategy = setup.strategy;
  const why = strategyUnsupported(board, strategy);
  if (why) throw new InputError('UNSUPPORTED_STRATEGY', why);
  const size = setup.imageSize_bytes;
  if (!(Number.isSafeInteger(size) && size > 0)) throw new InputError('BAD_IMAGE_SIZE', `--image-size must be a whole number of bytes > 0, got ${size}`);
  const max = maxImageSize(board, strategy);
  if (size > max) {
    throw new InputError('IMAGE_TOO_LARGE', `--image-size ${size}: board ${board.name} with ${strategy} takes images of at most ${max} bytes (slot, trailer${strategy === 'swap-move' ? ' and the spare sector' : ''})`);
  }
  const slot0Device = board.flash.find((d) => d.id === board.partitions.slot0.device)!;
  const writeSize = slot0Device.writeSize;
  const eraseValue = slot0Device.eraseValue;
  const key = sweepSigningKey();
  // With a hardware security counter the bootloader demands a SEC_CNT TLV (and never below the counter).
  const base = board.nvCounter ?? null;
  const oldImage = signedImageOfSize(key, '1.0.0', size, PAYLOAD_SEED, base === null ? null : base + 1);
  const newImage = signedImageOfSize(key, '2.0.0', size, PAYLOAD_SEED + 1, base === null ? null : base + 2);
  const initial = Flash.create(board);
  programSlot(initial, 'slot0', oldImage, 'confirm', strategy);
  programSlot(initial, 'slot1', newImage, 'test', strategy);
  initial.startJournal();
  const trustedKeys = [key.publicKey];
  return {
    board,
    boardArg,
    strategy,
    imageSize_bytes: size,
    writeSize,
    eraseValue,
    key,
    trustedKeys,
    trust: createTrustStore(trustedKeys),
    oldImage,
    newImage,
    initial,
  };
}
