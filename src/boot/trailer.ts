/**
 * MCUboot's image trailer, byte for byte: layout (bootutil_priv.h, bootutil_misc.h,
 * bootutil_area.c), the writes MCUboot makes to it (bootutil_public.c boot_write_*), the reads it
 * decodes (boot_read_swap_state, swap_read_status_bytes for swap-move and swap-scratch, the
 * status-source tables), and a decoded "where the swap stands" view for `ota-sim flash inspect`.
 * Only reads and writes go through here; nothing in this module decides what the bootloader does.
 */
import { InputError, assert } from '../errors.js';
import type { EraseValue, FlashArea, Strategy } from './area.js';

/** Magic: 16 bytes at the very end of a slot. */
export const BOOT_MAGIC_SZ = 16;
/** BOOT_MAX_ALIGN == 8: the classic 16-byte magic. */
const MAGIC_ALIGN8 = Uint8Array.of(0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80);
/** BOOT_MAX_ALIGN > 8: u16 align (little-endian) then these 14 bytes. */
const MAGIC_TAIL_WIDE = Uint8Array.of(0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a);

/** Swap types as MCUboot stores them in swap_info (low nibble) and returns them. */
export const SwapType = { NONE: 1, TEST: 2, PERM: 3, REVERT: 4, FAIL: 5, PANIC: 0xff } as const;
export type SwapTypeValue = (typeof SwapType)[keyof typeof SwapType];
export type SwapTypeName = 'none' | 'test' | 'perm' | 'revert' | 'fail' | 'panic';

export function swapTypeName(t: number): SwapTypeName | `0x${string}` {
  switch (t) {
    case SwapType.NONE: return 'none';
    case SwapType.TEST: return 'test';
    case SwapType.PERM: return 'perm';
    case SwapType.REVERT: return 'revert';
    case SwapType.FAIL: return 'fail';
    case SwapType.PANIC: return 'panic';
    default: return `0x${t.toString(16)}`;
  }
}

export type MagicState = 'good' | 'bad' | 'unset';
export type FlagState = 'set' | 'bad' | 'unset';
/** BOOT_FLAG_SET: the byte written for a set flag. */
export const BOOT_FLAG_SET = 0x01;

/** Build-time MCUboot settings that shape the trailer. */
export interface TrailerConfig {
  maxAlign: number; // BOOT_MAX_ALIGN, 8..32
  maxSectors: number; // BOOT_MAX_IMG_SECTORS
  strategy: Strategy;
}

export function checkTrailerConfig(cfg: TrailerConfig): void {
  if (![8, 16, 32].includes(cfg.maxAlign)) {
    throw new InputError('BAD_MAX_ALIGN', `mcuboot.maxAlign must be 8, 16 or 32 (BOOT_MAX_ALIGN), got ${cfg.maxAlign}`);
  }
  if (!(Number.isInteger(cfg.maxSectors) && cfg.maxSectors > 0 && cfg.maxSectors <= 4096)) {
    throw new InputError('BAD_MAX_SECTORS', `mcuboot.maxSectors must be a whole number in 1..4096, got ${cfg.maxSectors}`);
  }
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
function alignDown(n: number, a: number): number {
  return Math.floor(n / a) * a;
}

/** The 16 magic bytes for this BOOT_MAX_ALIGN. */
export function magicBytes(maxAlign: number): Uint8Array {
  if (maxAlign === 8) return MAGIC_ALIGN8;
  const out = new Uint8Array(BOOT_MAGIC_SZ);
  out[0] = maxAlign & 0xff;
  out[1] = (maxAlign >> 8) & 0xff;
  out.set(MAGIC_TAIL_WIDE, 2);
  return out;
}

/** BOOT_MAGIC_ALIGN_SIZE: the magic padded up to BOOT_MAX_ALIGN. */
export function magicAlignSize(maxAlign: number): number {
  return alignUp(BOOT_MAGIC_SZ, maxAlign);
}

/** BOOT_STATUS_STATE_COUNT: status entries per sector (swap-offset uses 2). */
export function statusStateCount(strategy: Strategy): number {
  return strategy === 'swap-offset' ? 2 : 3;
}

/** swap-move splits the status area: BOOT_STATUS_MOVE_STATE_COUNT then BOOT_STATUS_SWAP_STATE_COUNT. */
export const MOVE_STATE_COUNT = 1;
export const SWAP_STATE_COUNT = 2;

/** boot_trailer_info_sz: the fixed fields (no encryption keys). */
export function trailerInfoSize(cfg: TrailerConfig): number {
  return cfg.maxAlign * 4 + (cfg.strategy === 'swap-offset' ? cfg.maxAlign : 0) + magicAlignSize(cfg.maxAlign);
}

/** boot_trailer_sz(min_write_sz): status area + fixed fields of a slot trailer. */
export function trailerSize(cfg: TrailerConfig, minWriteSize: number): number {
  return cfg.maxSectors * statusStateCount(cfg.strategy) * minWriteSize + trailerInfoSize(cfg);
}

/** boot_scratch_trailer_sz: the scratch area holds one sector's status entries only. */
export function scratchTrailerSize(cfg: TrailerConfig, minWriteSize: number): number {
  return statusStateCount(cfg.strategy) * minWriteSize + trailerInfoSize(cfg);
}

/** Field offsets from the start of an area of `areaSize` bytes (bootutil_misc.h). */
export interface TrailerOffsets {
  magic: number;
  magicWrite: number; // where boot_write_magic starts its BOOT_MAGIC_ALIGN_SIZE write
  imageOk: number;
  copyDone: number;
  swapInfo: number;
  tlvSizes: number | null; // swap-offset only
  swapSize: number;
}

export function trailerOffsets(areaSize: number, cfg: TrailerConfig): TrailerOffsets {
  const magic = areaSize - BOOT_MAGIC_SZ;
  const imageOk = alignDown(magic - cfg.maxAlign, cfg.maxAlign);
  const copyDone = imageOk - cfg.maxAlign;
  const swapInfo = copyDone - cfg.maxAlign;
  const tlvSizes = cfg.strategy === 'swap-offset' ? swapInfo - cfg.maxAlign : null;
  const swapSize = (tlvSizes ?? swapInfo) - cfg.maxAlign;
  return { magic, magicWrite: alignDown(magic, cfg.maxAlign), imageOk, copyDone, swapInfo, tlvSizes, swapSize };
}

/** Where the swap-status entries start in an area (boot_status_off), and how many there are. */
export function statusArea(area: TrailerArea, isScratch: boolean, cfg: TrailerConfig): { offset: number; entries: number } {
  const fromEnd = isScratch ? scratchTrailerSize(cfg, area.writeSize) : trailerSize(cfg, area.writeSize);
  // The message is built only on failure (this runs for every flash op of a sweep).
  if (!(fromEnd <= area.size)) assert(false, `trailer of ${fromEnd} bytes fits ${area.name}`);
  const perSector = statusStateCount(cfg.strategy);
  return { offset: area.size - fromEnd, entries: isScratch ? perSector : perSector * cfg.maxSectors };
}

/** The subset of a flash area the trailer code needs. */
export type TrailerArea = Pick<FlashArea, 'name' | 'size' | 'writeSize' | 'eraseValue' | 'read' | 'write'>;

function isErased(bytes: Uint8Array, eraseValue: EraseValue): boolean {
  if (bytes.length === 0) return false; // bootutil_buffer_is_erased: an empty buffer is not erased
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== eraseValue) return false;
  return true;
}

// --- reads -----------------------------------------------------------------------------------

/** boot_magic_decode + the erased check of boot_read_swap_state. */
export function decodeMagic(bytes: Uint8Array, eraseValue: EraseValue, maxAlign: number): MagicState {
  assert(bytes.length === BOOT_MAGIC_SZ, 'magic is 16 bytes');
  if (isErased(bytes, eraseValue)) return 'unset';
  const want = magicBytes(maxAlign);
  for (let i = 0; i < BOOT_MAGIC_SZ; i++) if (bytes[i] !== want[i]) return 'bad';
  return 'good';
}

/** boot_magic_decode alone (boot_find_status compares without the erased check). */
export function magicIsGood(area: TrailerArea, cfg: TrailerConfig): boolean {
  return decodeMagic(area.read(area.size - BOOT_MAGIC_SZ, BOOT_MAGIC_SZ), area.eraseValue, cfg.maxAlign) === 'good';
}

/** boot_read_flag: one byte; erased is unset, 0x01 set, anything else bad. */
export function decodeFlag(byte: number, eraseValue: EraseValue): FlagState {
  if (byte === eraseValue) return 'unset';
  return byte === BOOT_FLAG_SET ? 'set' : 'bad';
}

/** struct boot_swap_state as boot_read_swap_state fills it. */
export interface SwapState {
  magic: MagicState;
  swapType: number; // BOOT_SWAP_TYPE_*: NONE when erased or above REVERT
  imageNum: number;
  copyDone: FlagState;
  imageOk: FlagState;
}

/** boot_read_swap_state: magic, swap_info, copy_done, image_ok of one area. */
export function readSwapState(area: TrailerArea, cfg: TrailerConfig): SwapState {
  const offs = trailerOffsets(area.size, cfg);
  // One read covering swap_info..magic end; MCUboot reads field by field, reads have no side effect.
  const span = area.read(offs.swapInfo, area.size - offs.swapInfo);
  const at = (off: number): number => span[off - offs.swapInfo]!;
  const magic = decodeMagic(span.subarray(offs.magic - offs.swapInfo), area.eraseValue, cfg.maxAlign);
  const info = at(offs.swapInfo);
  let swapType = info & 0x0f;
  let imageNum = info >> 4;
  if (info === area.eraseValue || swapType > SwapType.REVERT) {
    swapType = SwapType.NONE;
    imageNum = 0;
  }
  return {
    magic,
    swapType,
    imageNum,
    copyDone: decodeFlag(at(offs.copyDone), area.eraseValue),
    imageOk: decodeFlag(at(offs.imageOk), area.eraseValue),
  };
}

/** boot_read_swap_size: the raw u32 (MCUboot does not check it for erased). */
export function readSwapSize(area: TrailerArea, cfg: TrailerConfig): number {
  const b = area.read(trailerOffsets(area.size, cfg).swapSize, 4);
  return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
}

/** The raw swap_info byte's type, as swap_read_status takes it (erased -> NONE, no range check). */
export function readStatusSwapType(area: TrailerArea, cfg: TrailerConfig): number {
  const b = area.read(trailerOffsets(area.size, cfg).swapInfo, 1)[0]!;
  return b === area.eraseValue ? SwapType.NONE : b & 0x0f;
}

/** Position in the swap recorded by the status entries (struct boot_status idx/state/op). */
export interface StatusPosition {
  op: 'move' | 'swap'; // swap-move has a move phase then a swap phase; swap-scratch only swaps
  idx: number; // BOOT_STATUS_IDX_0 = 1
  state: number; // BOOT_STATUS_STATE_0 = 1
}

/**
 * swap_read_status_bytes: where the recorded status says the swap must resume; null if no entry
 * is written. `bootWriteSize` is BOOT_WRITE_SZ (the status stride), which can exceed the area's
 * own write size when scratch and primary differ.
 */
export function decodeStatusEntries(
  area: TrailerArea,
  isScratch: boolean,
  cfg: TrailerConfig,
  bootWriteSize: number,
): { position: StatusPosition | null; inconsistent: boolean } {
  const { offset, entries } = statusArea(area, isScratch, cfg);
  const span = area.read(offset, (entries - 1) * bootWriteSize + 1);
  const written = (i: number): boolean => span[i * bootWriteSize] !== area.eraseValue;
  if (cfg.strategy === 'swap-move') {
    // Scans from the last entry down; the highest written entry (1-based) is the next step.
    let found = -1;
    for (let i = entries; i > 0; i--) {
      if (written(i - 1)) {
        found = i;
        break;
      }
    }
    if (found === -1) return { position: null, inconsistent: false };
    const moveEntries = cfg.maxSectors * MOVE_STATE_COUNT;
    if (found < moveEntries) {
      return { position: { op: 'move', idx: Math.floor(found / MOVE_STATE_COUNT) + 1, state: (found % MOVE_STATE_COUNT) + 1 }, inconsistent: false };
    }
    const rel = found - moveEntries;
    return { position: { op: 'swap', idx: Math.floor(rel / SWAP_STATE_COUNT) + 1, state: (rel % SWAP_STATE_COUNT) + 1 }, inconsistent: false };
  }
  // swap-scratch: the first run of written entries; a written entry after a gap is "inconsistent".
  const perSector = statusStateCount(cfg.strategy);
  let found = false;
  let foundIdx = 0;
  let invalid = false;
  let i = 0;
  for (; i < entries; i++) {
    if (!written(i)) {
      if (found && foundIdx === 0) foundIdx = i;
    } else if (!found) {
      found = true;
    } else if (foundIdx !== 0) {
      invalid = true;
      break;
    }
  }
  if (!found) return { position: null, inconsistent: invalid };
  if (foundIdx === 0) foundIdx = i;
  return { position: { op: 'swap', idx: Math.floor(foundIdx / perSector) + 1, state: (foundIdx % perSector) + 1 }, inconsistent: invalid };
}

/** boot_status_internal_off: byte offset of the entry for (op, idx, state) from boot_status_off. */
export function statusEntryOffset(pos: StatusPosition, cfg: TrailerConfig, elemSize: number): number {
  if (cfg.strategy === 'swap-move') {
    const idxSize = elemSize * (pos.op === 'move' ? MOVE_STATE_COUNT : SWAP_STATE_COUNT);
    const base = pos.op === 'move' ? 0 : cfg.maxSectors * MOVE_STATE_COUNT * elemSize;
    return base + (pos.idx - 1) * idxSize + (pos.state - 1) * elemSize;
  }
  const idxSize = elemSize * statusStateCount(cfg.strategy);
  return (pos.idx - 1) * idxSize + (pos.state - 1) * elemSize;
}

// --- writes (each is exactly one flash write, as MCUboot makes it) ----------------------------

/** boot_write_trailer: `data` padded with the erase value up to the area's write size. */
export function writeTrailerField(area: TrailerArea, off: number, data: Uint8Array, cfg: TrailerConfig): void {
  const len = alignUp(data.length, area.writeSize);
  if (len > cfg.maxAlign) {
    throw new InputError('WRITE_SIZE_ABOVE_MAX_ALIGN', `${area.name}: write size ${area.writeSize} exceeds BOOT_MAX_ALIGN ${cfg.maxAlign}; MCUboot cannot write its trailer`);
  }
  const buf = new Uint8Array(len).fill(area.eraseValue);
  buf.set(data, 0);
  area.write(off, buf);
}

/** boot_write_magic: BOOT_MAGIC_ALIGN_SIZE bytes, erase-value padding first, magic last. */
export function writeMagic(area: TrailerArea, cfg: TrailerConfig): void {
  const size = magicAlignSize(cfg.maxAlign);
  const buf = new Uint8Array(size).fill(area.eraseValue);
  buf.set(magicBytes(cfg.maxAlign), size - BOOT_MAGIC_SZ);
  area.write(trailerOffsets(area.size, cfg).magicWrite, buf);
}

export function writeImageOk(area: TrailerArea, cfg: TrailerConfig): void {
  writeTrailerField(area, trailerOffsets(area.size, cfg).imageOk, Uint8Array.of(BOOT_FLAG_SET), cfg);
}

export function writeCopyDone(area: TrailerArea, cfg: TrailerConfig): void {
  writeTrailerField(area, trailerOffsets(area.size, cfg).copyDone, Uint8Array.of(BOOT_FLAG_SET), cfg);
}

/** boot_write_swap_info: swap type | image number << 4. */
export function writeSwapInfo(area: TrailerArea, swapType: number, imageNum: number, cfg: TrailerConfig): void {
  assert(swapType < 0xf && imageNum < 0xf, 'swap_info fields fit a nibble');
  writeTrailerField(area, trailerOffsets(area.size, cfg).swapInfo, Uint8Array.of((imageNum << 4) | swapType), cfg);
}

export function writeSwapSize(area: TrailerArea, swapSize_bytes: number, cfg: TrailerConfig): void {
  const v = swapSize_bytes >>> 0;
  writeTrailerField(area, trailerOffsets(area.size, cfg).swapSize, Uint8Array.of(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24), cfg);
}

/** boot_write_status: buf[0] = state, padded with the erase value to the area's write size. */
export function writeStatusEntry(area: TrailerArea, isScratch: boolean, pos: StatusPosition, cfg: TrailerConfig, bootWriteSize: number): void {
  const off = statusArea(area, isScratch, cfg).offset + statusEntryOffset(pos, cfg, bootWriteSize);
  const buf = new Uint8Array(area.writeSize).fill(area.eraseValue);
  buf[0] = pos.state;
  area.write(off, buf);
}

// --- "where the swap stands" ---------------------------------------------------------------

export type StatusSource = 'none' | 'primary' | 'scratch';

/** swap_status_source of swap-move (swap_move.c). */
export function statusSourceMove(primary: SwapState, secondary: SwapState): StatusSource {
  return primary.magic === 'good' && primary.copyDone === 'unset' && secondary.magic !== 'good' ? 'primary' : 'none';
}

/** swap_status_source of swap-scratch: boot_status_tables, first match wins. */
export function statusSourceScratch(primary: SwapState, scratch: SwapState): StatusSource {
  if (primary.magic === 'good' && scratch.magic !== 'good' && primary.copyDone === 'set') return 'none';
  if (primary.magic === 'good' && scratch.magic !== 'good' && primary.copyDone === 'unset') return 'primary';
  if (scratch.magic === 'good') return 'scratch';
  if (primary.magic === 'unset' && primary.copyDone === 'unset') return 'primary';
  return 'none';
}
