/**
 * MCUboot's swap-scratch strategy (swap_scratch.c): the slots are swapped from the end, one
 * scratch-sized chunk at a time, through the scratch area. While the chunk holding the primary
 * trailer is in flight the status lives in the scratch area's own short trailer, so an early cut
 * leaves the swap state only there. Also hosts the slot checks overwrite-only shares with it.
 */
import { InputError, assert } from '../errors.js';
import { copyRegion, eraseRegion, scrambleRegion } from './area.js';
import type { BootArea } from './area.js';
import { BootPanic, readRawHeader, sectorOffset, sectorSize, statusIsReset } from './context.js';
import type { BootContext, BootStatus, RawHeader } from './context.js';
import { scrambleTrailerSectors, swapStatusInit } from './swap-misc.js';
import { checkpoint } from './sweep-hook.js';
import {
  SwapType,
  magicIsGood,
  readSwapSize,
  readSwapState,
  scratchTrailerSize,
  statusArea,
  statusStateCount,
  trailerSize,
  writeCopyDone,
  writeImageOk,
  writeMagic,
  writeStatusEntry,
  writeSwapInfo,
  writeSwapSize,
} from './trailer.js';

export function requireScratch(ctx: BootContext): BootArea {
  if (!ctx.scratch) throw new InputError('NO_SCRATCH', 'swap-scratch needs a "scratch" partition, and the board has none');
  return ctx.scratch;
}

/** boot_find_status: the first of scratch, primary whose magic is good; else the primary. */
export function findStatusAreaScratch(ctx: BootContext): BootArea {
  const scratch = requireScratch(ctx);
  return magicIsGood(scratch, ctx.cfg) ? scratch : ctx.primary;
}

/**
 * boot_slots_compatible (swap_scratch.c, also used by overwrite-only): every run of sectors of
 * one slot matches a run of the other, and (swap-scratch) each matched run fits the scratch.
 */
export function slotsCompatibleScratch(ctx: BootContext, checkScratch: boolean): boolean {
  const pri = ctx.primary.sectors;
  const sec = ctx.secondary.sectors;
  if (pri.length > ctx.cfg.maxSectors || sec.length > ctx.cfg.maxSectors) {
    ctx.notes.push(`cannot upgrade: more sectors than mcuboot.maxSectors ${ctx.cfg.maxSectors}`);
    return false;
  }
  const scratchSz = checkScratch ? requireScratch(ctx).size : Infinity;
  let i = 0;
  let j = 0;
  let sz0 = 0;
  let sz1 = 0;
  let priTotal = 0;
  let secTotal = 0;
  let smaller = 0;
  const size = (list: readonly { size: number }[], k: number): number => list[k]?.size ?? 0;
  for (let guard = 0; i < pri.length || j < sec.length; guard++) {
    assert(guard <= pri.length + sec.length, 'compatibility scan terminates');
    if (sz0 === sz1) {
      sz0 += size(pri, i++);
      sz1 += size(sec, j++);
    } else if (sz0 < sz1) {
      sz0 += size(pri, i++);
      if (smaller === 2) return incompatible(ctx, 'slots have non-compatible sectors');
      smaller = 1;
    } else {
      sz1 += size(sec, j++);
      if (smaller === 1) return incompatible(ctx, 'slots have non-compatible sectors');
      smaller = 2;
    }
    if (checkScratch && sz0 === sz1) {
      priTotal += sz0;
      secTotal += sz1;
      if (sz0 > scratchSz || sz1 > scratchSz) return incompatible(ctx, 'not all sectors fit inside scratch');
      smaller = sz0 = sz1 = 0;
    }
  }
  if (i !== pri.length || j !== sec.length || priTotal !== secTotal) return incompatible(ctx, 'slots are not compatible');
  return true;
}

function incompatible(ctx: BootContext, why: string): false {
  ctx.notes.push(`cannot upgrade: ${why}`);
  return false;
}

/** boot_get_first_trailer_sector. */
function firstTrailerSector(area: BootArea, trailer_bytes: number): number {
  let i = area.sectors.length - 1;
  let acc = sectorSize(area, i);
  while (acc < trailer_bytes) {
    i--;
    acc += sectorSize(area, i);
  }
  return i;
}

/** app_max_size (swap_scratch.c) with app_max_size_adjust_to_trailer. */
export function appMaxSizeScratch(ctx: BootContext): number {
  const pri = ctx.primary.sectors;
  const sec = ctx.secondary.sectors;
  const scratchSz = requireScratch(ctx).size;
  let i = 0;
  let j = 0;
  let sz0 = 0;
  let sz1 = 0;
  let slotSz = 0;
  let smaller = 0;
  for (let guard = 0; i < pri.length || j < sec.length; guard++) {
    assert(guard <= pri.length + sec.length, 'size scan terminates');
    if (sz0 === sz1) {
      sz0 += pri[i++]?.size ?? 0;
      sz1 += sec[j++]?.size ?? 0;
    } else if (sz0 < sz1) {
      sz0 += pri[i++]?.size ?? 0;
      if (smaller === 2) return 0;
      smaller = 1;
    } else {
      sz1 += sec[j++]?.size ?? 0;
      if (smaller === 1) return 0;
      smaller = 2;
    }
    if (sz0 === sz1) {
      slotSz += sz0;
      if (sz0 > scratchSz || sz1 > scratchSz) return 0;
      smaller = sz0 = sz1 = 0;
    }
  }
  const slotTrailer = trailerSize(ctx.cfg, ctx.writeSize);
  const slotTrailerOff = slotSz - slotTrailer;
  const endOf = (area: BootArea): number => {
    const k = firstTrailerSector(area, slotTrailer);
    return sectorOffset(area, k) + sectorSize(area, k);
  };
  const trailerSectorEnd = Math.max(endOf(ctx.primary), endOf(ctx.secondary));
  const inFirstSector = trailerSectorEnd - slotTrailerOff;
  const scratchTrailer = scratchTrailerSize(ctx.cfg, ctx.writeSize);
  const padding = scratchTrailer > inFirstSector ? scratchTrailer - inFirstSector : 0;
  return slotTrailerOff - padding;
}

/** find_last_sector_idx: last primary sector to swap so both slots cover copy_size at a common boundary. */
function findLastSectorIdx(ctx: BootContext, copySize_bytes: number): number {
  const pri = ctx.primary.sectors;
  const sec = ctx.secondary.sectors;
  let priSz = 0;
  let secSz = 0;
  let lp = 0;
  let ls = 0;
  for (let guard = 0; ; guard++) {
    if (guard > pri.length + sec.length + 2) throw new BootPanic(`swap-scratch: swap size ${copySize_bytes} beyond the slots`);
    if (priSz < copySize_bytes || priSz < secSz) {
      const s = pri[lp];
      if (!s) throw new BootPanic(`swap-scratch: swap size ${copySize_bytes} beyond slot0`);
      priSz += s.size;
      lp++;
    }
    if (secSz < copySize_bytes || secSz < priSz) {
      const s = sec[ls];
      if (!s) throw new BootPanic(`swap-scratch: swap size ${copySize_bytes} beyond slot1`);
      secSz += s.size;
      ls++;
    }
    if (priSz >= copySize_bytes && secSz >= copySize_bytes && priSz === secSz) break;
  }
  return lp - 1;
}

/** boot_copy_sz: how many primary sectors ending at `last` fit the scratch; returns bytes and the first index. */
function bootCopySz(ctx: BootContext, last: number): { size: number; first: number } {
  const scratchSz = requireScratch(ctx).size;
  let sz = 0;
  let i = last;
  for (; i >= 0; i--) {
    const next = sz + sectorSize(ctx.primary, i);
    if (next > scratchSz) break;
    sz = next;
  }
  return { size: sz, first: i + 1 };
}

/** find_swap_count: number of scratch-sized chunks the swap takes. */
function findSwapCount(ctx: BootContext, copySize_bytes: number): number {
  let last = findLastSectorIdx(ctx, copySize_bytes);
  let count = 0;
  while (last >= 0) {
    const { first } = bootCopySz(ctx, last);
    assert(first <= last, 'every chunk holds at least one sector');
    last = first - 1;
    count++;
  }
  return count;
}

/** boot_read_image_header (swap_scratch.c): headers may sit in the other slot or the scratch mid-swap. */
export function readImageHeaderScratch(ctx: BootContext, slot: 0 | 1, bs: BootStatus | null): { header: RawHeader; ok: boolean } {
  let area: BootArea = slot === 0 ? ctx.primary : ctx.secondary;
  if (bs && !statusIsReset(bs, 'swap-scratch')) {
    const swapCount = findSwapCount(ctx, readSwapSize(findStatusAreaScratch(ctx), ctx.cfg));
    if (bs.idx - 1 >= swapCount) {
      area = slot === 0 ? ctx.secondary : ctx.primary;
    } else if (bs.idx - 1 === swapCount - 1) {
      if (slot === 1 && bs.state >= 2) area = requireScratch(ctx);
      else if (slot === 0 && bs.state >= 3) area = ctx.secondary;
    }
  }
  return { header: readRawHeader(area, 0), ok: true };
}

function writeStatus(ctx: BootContext, bs: BootStatus): void {
  const area = bs.useScratch ? requireScratch(ctx) : ctx.primary;
  writeStatusEntry(area, bs.useScratch, { op: 'swap', idx: bs.idx, state: bs.state }, ctx.cfg, ctx.writeSize);
}

/** boot_swap_sectors (swap_scratch.c): one chunk starting at primary sector `idx`, `sz` bytes. */
function swapSectors(ctx: BootContext, idx: number, sz: number, bs: BootStatus): void {
  const pri = ctx.primary;
  const sec = ctx.secondary;
  const scratch = requireScratch(ctx);
  const imgOff = sectorOffset(pri, idx);
  let copySz = sz;
  const trailerSz = trailerSize(ctx.cfg, ctx.writeSize);
  const firstTrailerPri = firstTrailerSector(pri, trailerSz);
  if (imgOff + sz > sectorOffset(pri, firstTrailerPri)) {
    copySz = pri.size - imgOff - trailerSz;
    const scratchTrailerOff = statusArea(scratch, true, ctx.cfg).offset;
    if (copySz > scratchTrailerOff) copySz = scratchTrailerOff;
  }
  bs.useScratch = bs.idx === 1 && copySz !== sz;
  const early = ctx.defects.has('status-before-copy');

  if (bs.state === 1) {
    checkpoint(ctx, bs, 'scratch-1', idx, sz);
    eraseRegion(scratch, 0, scratch.size, false);
    if (bs.idx === 1) {
      // A trailer in the scratch holds swap_info while the primary trailer is erased.
      swapStatusInit(ctx, scratch, bs);
      if (!bs.useScratch) {
        scrambleTrailerSectors(ctx, pri);
        swapStatusInit(ctx, pri, bs);
        eraseRegion(scratch, 0, scratch.size, false);
      }
    }
    if (early) writeStatus(ctx, bs);
    copyRegion(sec, scratch, imgOff, 0, copySz, (done) => checkpoint(ctx, bs, 'scratch-1-copy', idx, done));
    if (!early) writeStatus(ctx, bs);
    bs.state = 2;
  }

  if (bs.state === 2) {
    checkpoint(ctx, bs, 'scratch-2', idx, sz);
    let eraseSz = sz;
    if (bs.idx === 1) {
      scrambleTrailerSectors(ctx, sec);
      if (bs.useScratch) eraseSz = sectorOffset(sec, firstTrailerSector(sec, trailerSz)) - imgOff;
    }
    if (early) writeStatus(ctx, bs);
    if (eraseSz > 0) eraseRegion(sec, imgOff, eraseSz, false);
    copyRegion(pri, sec, imgOff, imgOff, copySz, (done) => checkpoint(ctx, bs, 'scratch-2-copy', idx, done));
    if (!early) writeStatus(ctx, bs);
    bs.state = 3;
  }

  if (bs.state === 3) {
    checkpoint(ctx, bs, 'scratch-3', idx, sz);
    let eraseSz = sz;
    if (bs.useScratch) {
      scrambleTrailerSectors(ctx, pri);
      eraseSz = sectorOffset(pri, firstTrailerPri) - imgOff;
    }
    const statusFirst = early && !bs.useScratch;
    if (statusFirst) writeStatus(ctx, bs);
    if (eraseSz > 0) eraseRegion(pri, imgOff, eraseSz, false);
    copyRegion(scratch, pri, 0, imgOff, copySz, (done) => checkpoint(ctx, bs, 'scratch-3-copy', idx, done));
    if (bs.useScratch) {
      const scratchTrailerOff = statusArea(scratch, true, ctx.cfg).offset;
      copyRegion(scratch, pri, scratchTrailerOff, imgOff + copySz, (statusStateCount(ctx.cfg.strategy) - 1) * ctx.writeSize);
      const st = readSwapState(scratch, ctx.cfg);
      if (st.imageOk === 'set') writeImageOk(pri, ctx.cfg);
      if (st.swapType !== SwapType.NONE) writeSwapInfo(pri, st.swapType, 0, ctx.cfg);
      writeSwapSize(pri, bs.swapSize_bytes, ctx.cfg);
      writeMagic(pri, ctx.cfg);
    }
    const eraseScratch = bs.useScratch;
    bs.useScratch = false;
    if (!statusFirst) writeStatus(ctx, bs);
    bs.idx++;
    bs.state = 1;
    // Backwards, so a cut mid-erase never leaves a half-erased scratch that looks like valid data.
    if (eraseScratch) scrambleRegion(scratch, 0, scratch.size, true);
  }
}

/** swap_run (swap_scratch.c): chunks from the end of the image towards sector 0. */
export function swapRunScratch(ctx: BootContext, bs: BootStatus, copySize_bytes: number): void {
  let last = findLastSectorIdx(ctx, copySize_bytes);
  let swapIdx = 0;
  for (let guard = 0; last >= 0; guard++) {
    assert(guard <= ctx.primary.sectors.length, 'swap chunks bounded by the sector count');
    const { size, first } = bootCopySz(ctx, last);
    assert(first <= last, 'every chunk holds at least one sector');
    if (swapIdx >= bs.idx - 1) {
      if (first === 0 && bs.state === 1 && ctx.defects.has('copy-done-early')) writeCopyDone(ctx.primary, ctx.cfg);
      swapSectors(ctx, first, size, bs);
    }
    last = first - 1;
    swapIdx++;
  }
}
