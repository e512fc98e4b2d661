/**
 * Pieces shared by swap-move and swap-scratch (swap_misc.c): scrambling a slot's trailer sectors
 * and initialising a trailer for a new swap.
 */
import { scrambleRegion, sectorIndexAt } from './area.js';
import type { BootArea } from './area.js';
import type { BootContext, BootStatus } from './context.js';
import { SwapType, readSwapState, trailerSize, writeImageOk, writeMagic, writeSwapInfo, writeSwapSize } from './trailer.js';

/** swap_scramble_trailer_sectors: erase, last sector first, every sector holding the trailer. */
export function scrambleTrailerSectors(ctx: BootContext, area: BootArea): void {
  const alignment = Math.max(ctx.writeSize, area.writeSize);
  const start = area.size - trailerSize(ctx.cfg, alignment);
  const off = area.sectors[sectorIndexAt(area, start)]!.offset;
  scrambleRegion(area, off, area.size - off, true);
}

/** swap_status_init: swap_info, image_ok (if the secondary's is set), swap_size, then magic. */
export function swapStatusInit(ctx: BootContext, area: BootArea, bs: BootStatus): void {
  const secondary = readSwapState(ctx.secondary, ctx.cfg);
  if (bs.swapType !== SwapType.NONE) writeSwapInfo(area, bs.swapType, 0, ctx.cfg);
  if (secondary.imageOk === 'set') writeImageOk(area, ctx.cfg);
  writeSwapSize(area, bs.swapSize_bytes, ctx.cfg);
  writeMagic(area, ctx.cfg);
}

