/**
 * API facade, images and keys: `signImage` with defaults a test suite wants (a 0x200-byte header
 * padded in front of the payload; slot size, write alignment and the board TLV from `board`;
 * the behaviour TLV from `behaviour`; a key given as a PEM text), plus `keyFromSeed` for
 * deterministic keys. Everything else (verifyImage, parseImage, key parsing) is the image module's
 * own API, re-exported by src/index.ts. Every failure is an ImageError with a stable code.
 */
import { InputError } from '../errors.js';
import { behaviourTlv, boardTlv, ed25519KeyPemFromSeed, parseSigningKeyPem, signImage as signImageRaw } from '../image/index.js';
import type { FirmwareBehaviour, SignOptions, SigningKey, TlvInput, WriteAlign } from '../image/index.js';
import { Prng } from '../prng.js';
import { boardOf } from './flash.js';
import type { BoardRef } from './flash.js';

/** The header size used when none is given (imgtool -H 0x200 --pad-header, as Zephyr builds do). */
export const DEFAULT_HEADER_SIZE_BYTES = 0x200;

export interface ApiSignOptions extends Omit<SignOptions, 'headerSize_bytes' | 'key'> {
  /** A signing key, or its PKCS#8 PEM text; absent: a hash-only image (imgtool without -k). */
  key?: SigningKey | string | null;
  /**
   * -H. Absent: 0x200 with `padHeader` defaulting to true (the payload is your raw binary).
   * Given: imgtool's rule applies (without padHeader the input must start with that many zeros).
   */
  headerSize_bytes?: number;
  /** Size the image for this board: slot size, write alignment, and a board TLV (0xA1) naming it. */
  board?: BoardRef;
  /** Add the behaviour TLV (0xA0): how the simulated firmware behaves (self-test, boot time, crash). */
  behaviour?: Partial<FirmwareBehaviour>;
}

/**
 * Sign `payload` as an MCUboot image. With only `{ key, version }` you get an imgtool-compatible
 * image with a 0x200 header; add `board` to make it fit (and be accepted by the agent on) a board.
 */
export function signImage(payload: Uint8Array, options: ApiSignOptions = {}): Uint8Array {
  if (!(payload instanceof Uint8Array)) throw new InputError('BAD_OPTION', `signImage: the payload must be a Uint8Array, got ${typeof payload}`);
  const { board, behaviour, key, headerSize_bytes, ...rest } = options;
  const profile = board === undefined ? null : boardOf(board);
  const customTlvs: TlvInput[] = [...(behaviour === undefined ? [] : [behaviourTlv(behaviour)]), ...(profile === null ? [] : [boardTlv(profile.name)]), ...(rest.customTlvs ?? [])];
  const signingKey = typeof key === 'string' ? parseSigningKeyPem(key, 'signImage key') : key;
  const full: SignOptions = {
    ...rest,
    key: signingKey ?? null,
    headerSize_bytes: headerSize_bytes ?? DEFAULT_HEADER_SIZE_BYTES,
    padHeader: rest.padHeader ?? headerSize_bytes === undefined,
    customTlvs,
  };
  if (profile !== null) {
    full.slotSize_bytes ??= profile.partitions.slot0.size;
    full.align ??= Math.min(32, profile.flash[0]?.writeSize ?? 4) as WriteAlign;
  }
  return signImageRaw(payload, full);
}

/** A deterministic ed25519 signing key from a number (tests and demos; never for real devices). */
export function keyFromSeed(seed: number): SigningKey {
  if (!Number.isSafeInteger(seed)) throw new InputError('BAD_KEY', `keyFromSeed: the seed must be a whole number, got ${seed}`);
  return parseSigningKeyPem(ed25519KeyPemFromSeed(new Prng(seed).bytes(32)), `key seed ${seed}`);
}
