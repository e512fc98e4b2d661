/**
 * MCUboot's swap-move strategy (swap_move.c): the primary image is first moved up by one sector,
 * then each sector pair is swapped; the status lives in the primary trailer (a move area of
 * max_sectors entries, then a swap area of 2 × max_sectors). Needs a spare sector in the primary
 * slot above the largest image, and no scratch.
 */
import { InputError } from '../errors.js';
import { copyRegion, eraseRegion } from './area.js';
import { BootPanic, hasImageMagic, readRawHeader, sectorOffset, sectorSize, statusIsReset } from './context.js';
import type { BootContext, BootStatus, RawHeader } from './context.js';
import { scrambleTrailerSectors, swapStatusInit } from './swap-misc.js';
import { checkpoint } from './sweep-hook.js';
import { SwapType, readSwapSize, readSwapState, trailerSize, writeCopyDone, writeImageOk, writeMagic, writeStatusEntry, writeSwapSize } from './trailer.js';

/** boot_write_status: the entry for bs's position, into the primary trailer. */
function writeStatus(ctx: BootContext, bs: BootStatus): void {
  writeStatusEntry(ctx.primary, false, { op: bs.op, idx: bs.idx, state: bs.state }, ctx.cfg, ctx.writeSize);
}

/** find_last_idx: number of sectors (of sector 0's size) that hold `swapSize_bytes`, at least 1. */
export function findLastIdx(ctx: BootContext, swapSize_bytes: number): number {
  const sector = sectorSize(ctx.primary, 0);
  return Math.max(1, Math.ceil(swapSize_bytes / sector));
}

/** boot_slots_compatible (swap_move.c). */
export function slotsCompatibleMove(ctx: BootContext): boolean {
  const pri = ctx.primary.sectors;
  const sec = ctx.secondary.sectors;
  if (pri.length !== sec.length && pri.length !== sec.length + 1) {
    ctx.notes.push(`swap-move cannot upgrade: slot0 has ${pri.length} sectors, slot1 ${sec.length} (needs equal or one more)`);
    return false;
  }
  if (pri.length > ctx.cfg.maxSectors) {
    ctx.notes.push(`swap-move cannot upgrade: ${pri.length} sectors exceed mcuboot.maxSectors ${ctx.cfg.maxSectors}`);
    return false;
  }
  let i = 0;
  let priSize = 0;
  for (; i < sec.length; i++) {
    priSize = pri[i]!.size;
    if (priSize !== sec[i]!.size) {
      ctx.notes.push('swap-move cannot upgrade: slots do not have the same sector layout');
      return false;
    }
  }
  if (pri.length > sec.length && priSize !== pri[i]!.size) {
    ctx.notes.push('swap-move cannot upgrade: slots do not have the same sector layout');
    return false;
  }
  return true;
}

/** app_max_size (swap_move.c): the largest image both slots hold with the trailer and the spare sector. */
export function appMaxSizeMove(ctx: BootContext): number {
  const sector = sectorSize(ctx.primary, 0);
  const trailer = Math.ceil(trailerSize(ctx.cfg, ctx.writeSize) / sector) * sector;
  const pri = ctx.primary.sectors.length * sector - trailer - sector;
  const sec = ctx.secondary.sectors.length * sector - trailer;
  return Math.min(pri, sec);
}

/** boot_read_image_header (swap_move.c): where each header is while a swap is under way. */
export function readImageHeaderMove(ctx: BootContext, slot: 0 | 1, bs: BootStatus | null): { header: RawHeader; ok: boolean } {
  let off = 0;
  let from: 0 | 1 = slot;
  if (bs && !statusIsReset(bs, 'swap-move')) {
    const lastIdx = findLastIdx(ctx, readSwapSize(ctx.primary, ctx.cfg));
    const sz = sectorSize(ctx.primary, 0);
    if (bs.op === 'move' && slot === 0 && bs.idx > lastIdx) {
      off = sz;
    } else if (bs.op === 'swap') {
      if (bs.idx > 1 && bs.idx <= lastIdx) {
        from = slot === 0 ? 1 : 0;
      } else if (bs.idx === 1) {
        if (slot === 0) off = sz;
        else if (slot === 1 && bs.state === 2) from = 0;
      }
    }
  }
  const area = from === 0 ? ctx.primary : ctx.secondary;
  const header = readRawHeader(area, off);
  // "We only know where the headers are located when bs is valid": a non-null bs demands the magic.
  return { header, ok: bs === null || hasImageMagic(header) };
}

/** fixup_revert: a revert not yet started gets a secondary trailer so it resumes like a permanent swap. */
function fixupRevert(ctx: BootContext, bs: BootStatus): void {
  if (bs.swapType !== SwapType.REVERT || bs.op !== 'move' || bs.idx !== 1) return;
  const st = readSwapState(ctx.secondary, ctx.cfg);
  if (st.magic !== 'unset') return;
  scrambleTrailerSectors(ctx, ctx.secondary);
  writeImageOk(ctx.secondary, ctx.cfg);
  writeSwapSize(ctx.secondary, bs.swapSize_bytes, ctx.cfg);
  writeMagic(ctx.secondary, ctx.cfg);
}

/** boot_move_sector_up: sector idx-1 of the primary moves to idx. */
function moveSectorUp(ctx: BootContext, idx: number, sz: number, bs: BootStatus): void {
  const newOff = sectorOffset(ctx.primary, idx);
  const oldOff = sectorOffset(ctx.primary, idx - 1);
  if (bs.idx === 1) {
    if (bs.source !== 'primary') {
      scrambleTrailerSectors(ctx, ctx.primary);
      swapStatusInit(ctx, ctx.primary, bs);
    }
    scrambleTrailerSectors(ctx, ctx.secondary);
  }
  const early = ctx.defects.has('status-before-copy');
  if (early) writeStatus(ctx, bs);
  eraseRegion(ctx.primary, newOff, sz, false);
  copyRegion(ctx.primary, ctx.primary, oldOff, newOff, sz);
  if (!early) writeStatus(ctx, bs);
  bs.idx++;
}

/** boot_swap_sectors (swap_move.c): secondary idx-1 -> primary idx-1, then primary idx -> secondary idx-1. */
function swapSectors(ctx: BootContext, idx: number, sz: number, bs: BootStatus): void {
  const priUpOff = sectorOffset(ctx.primary, idx);
  const priOff = sectorOffset(ctx.primary, idx - 1);
  const secOff = sectorOffset(ctx.secondary, idx - 1);
  const early = ctx.defects.has('status-before-copy');
  if (bs.state === 1) {
    checkpoint(ctx, bs, 'move-swap-1', idx, sz);
    if (early) writeStatus(ctx, bs);
    eraseRegion(ctx.primary, priOff, sz, false);
    copyRegion(ctx.secondary, ctx.primary, secOff, priOff, sz);
    if (!early) writeStatus(ctx, bs);
    bs.state = 2;
  }
  if (bs.state === 2) {
    checkpoint(ctx, bs, 'move-swap-2', idx, sz);
    if (early) writeStatus(ctx, bs);
    eraseRegion(ctx.secondary, secOff, sz, false);
    copyRegion(ctx.primary, ctx.secondary, priUpOff, secOff, sz);
    if (!early) writeStatus(ctx, bs);
    bs.idx++;
    bs.state = 1;
  }
}

/** swap_run (swap_move.c): start or resume the move phase, then the swap phase. */
export function swapRunMove(ctx: BootContext, bs: BootStatus, copySize_bytes: number): void {
  const lastIdx = findLastIdx(ctx, copySize_bytes);
  const sectorSz = sectorSize(ctx.primary, 0);
  if (statusIsReset(bs, 'swap-move')) {
    const trailer = trailerSize(ctx.cfg, ctx.writeSize);
    let firstTrailerIdx = ctx.primary.sectors.length - 1;
    for (let sz = sectorSz; sz < trailer; sz += sectorSz) firstTrailerIdx--;
    if (lastIdx >= firstTrailerIdx) {
      ctx.notes.push(`swap-move: not enough free space: needs ${(lastIdx + 1) * sectorSz} bytes, ${firstTrailerIdx * sectorSz} available`);
      bs.swapType = SwapType.NONE;
      return;
    }
  }
  if (lastIdx >= ctx.primary.sectors.length) throw new BootPanic(`swap-move: swap size ${copySize_bytes} beyond slot0`);
  fixupRevert(ctx, bs);
  if (bs.op === 'move') {
    for (let idx = lastIdx; idx > 0; idx--) {
      if (idx <= lastIdx - bs.idx + 1) {
        checkpoint(ctx, bs, 'move-up', idx, lastIdx);
        moveSectorUp(ctx, idx, sectorSz, bs);
      }
    }
    bs.idx = 1;
  }
  bs.op = 'swap';
  for (let idx = 1; idx <= lastIdx; idx++) {
    if (idx >= bs.idx) {
      if (idx === lastIdx && bs.state === 1 && ctx.defects.has('copy-done-early')) writeCopyDone(ctx.primary, ctx.cfg);
      swapSectors(ctx, idx, sectorSz, bs);
    }
  }
}

/** Swap-move needs no scratch, but a spare sector above the image; say so if the map has none. */
export function checkMoveLayout(ctx: BootContext): void {
  if (ctx.primary.sectors.length < 2) {
    throw new InputError('NO_SPARE_SECTOR', `swap-move needs a spare sector in slot0 (it has ${ctx.primary.sectors.length} sector)`);
  }
}
