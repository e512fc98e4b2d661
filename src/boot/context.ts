/**
 * State shared by the bootloader flow and the strategy modules: MCUboot's struct
 * boot_loader_state (areas, headers, BOOT_WRITE_SZ, decided swap type) and struct boot_status
 * (where a swap stands). Kept in memory for one boot only: nothing here survives a power cut.
 */
import { assert } from '../errors.js';
import { IMAGE_MAGIC } from '../image/format.js';
import type { ImageHeader } from '../image/header.js';
import type { BootArea, Strategy } from './area.js';
import type { StatusSource, TrailerConfig } from './trailer.js';
import type { TrustedKey, ValidationVerdict } from './validate.js';

/** Switchable, documented mutations of the bootloader, so a sweep can prove it catches them. */
export type BootDefect =
  /** The swap table's REVERT row requires the secondary magic UNSET, as before MCUboot PR 2100 (issue 1966). */
  | 'revert-requires-secondary-unset'
  /** copy_done is written to the primary trailer before the last sector is swapped. */
  | 'copy-done-early'
  /** Each swap status entry is written before the sector erase+copy it records, not after. */
  | 'status-before-copy'
  /** A REVERT swap type is ignored: the unconfirmed test image keeps running. */
  | 'revert-skipped';

export const BOOT_DEFECTS: readonly BootDefect[] = ['revert-requires-secondary-unset', 'copy-done-early', 'status-before-copy', 'revert-skipped'];

/** struct image_header as read raw from flash (any magic), plus whether its magic reads erased. */
export interface RawHeader extends ImageHeader {
  magicErased: boolean;
}

/** The 32 raw header bytes at `off`, decoded without judging them (MCUboot reads the struct as is). */
export function readRawHeader(area: BootArea, off: number): RawHeader {
  const b = area.read(off, 32);
  const v = new DataView(b.buffer, b.byteOffset, 32);
  const ev = area.eraseValue;
  return {
    magic: v.getUint32(0, true),
    loadAddr: v.getUint32(4, true),
    headerSize_bytes: v.getUint16(8, true),
    protectedTlvSize_bytes: v.getUint16(10, true),
    imageSize_bytes: v.getUint32(12, true),
    flags: v.getUint32(16, true),
    version: { major: v.getUint8(20), minor: v.getUint8(21), revision: v.getUint16(22, true), build: v.getUint32(24, true) },
    magicErased: b[0] === ev && b[1] === ev && b[2] === ev && b[3] === ev,
  };
}

export function hasImageMagic(h: RawHeader | null): boolean {
  return h !== null && h.magic === IMAGE_MAGIC;
}

/** struct boot_status. `op` matters for swap-move only (swap-scratch leaves it at its reset value). */
export interface BootStatus {
  op: 'move' | 'swap';
  idx: number; // BOOT_STATUS_IDX_0 = 1
  state: number; // BOOT_STATUS_STATE_0 = 1
  swapType: number;
  swapSize_bytes: number;
  source: StatusSource;
  useScratch: boolean;
}

export function resetStatus(): BootStatus {
  return { op: 'move', idx: 1, state: 1, swapType: 1, swapSize_bytes: 0, source: 'none', useScratch: false };
}

/** boot_status_is_reset. swap-scratch never sets op, so only idx/state count there. */
export function statusIsReset(bs: BootStatus, strategy: Strategy): boolean {
  return (strategy !== 'swap-move' || bs.op === 'move') && bs.idx === 1 && bs.state === 1;
}

/** MCUboot asserts (or loops forever on "panic!"): on a device this hangs until a watchdog or power cycle. */
export class BootPanic extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BootPanic';
  }
}

export type Validator = (slotBytes: Uint8Array, trustedKeys: readonly TrustedKey[], maxImageSize_bytes: number, nvCounter: number | null) => ValidationVerdict;

export interface BootContext {
  readonly strategy: Strategy;
  readonly cfg: TrailerConfig;
  readonly primary: BootArea;
  readonly secondary: BootArea;
  readonly scratch: BootArea | null;
  /** BOOT_WRITE_SZ: the status entry stride (max of primary and scratch write sizes). */
  readonly writeSize: number;
  readonly defects: ReadonlySet<BootDefect>;
  readonly validatePrimary: boolean;
  readonly downgradePrevention: boolean;
  readonly trustedKeys: readonly TrustedKey[];
  readonly validator: Validator;
  /** Hardware security counter (MCUBOOT_HW_ROLLBACK_PROT) or null when the board has none. */
  nvCounter: number | null;
  /** boot_img_hdr(state, slot) for slot 0 and 1. */
  headers: [RawHeader | null, RawHeader | null];
  /** BOOT_SWAP_TYPE(state). */
  swapType: number;
  /** What happened, in order, for reports ("resumed swap at idx 3", "secondary invalid: ..."). */
  readonly notes: string[];
}

export function areaOfSlot(ctx: BootContext, slot: 0 | 1): BootArea {
  return slot === 0 ? ctx.primary : ctx.secondary;
}

export function sectorSize(area: BootArea, i: number): number {
  const s = area.sectors[i];
  // The message is built only on failure (this runs for every flash op of a sweep).
  if (!(s !== undefined)) assert(false, `${area.name} has a sector ${i}`);
  return s.size;
}

export function sectorOffset(area: BootArea, i: number): number {
  const s = area.sectors[i];
  // The message is built only on failure (this runs for every flash op of a sweep).
  if (!(s !== undefined)) assert(false, `${area.name} has a sector ${i}`);
  return s.offset;
}
