/**
 * MCUboot's overwrite-only strategy (loader.c boot_copy_image without MCUBOOT_OVERWRITE_ONLY_FAST):
 * erase the whole primary sector by sector, copy the whole secondary slot over it, then erase the
 * secondary's first and last sectors. There is no swap status: an interrupted copy is redone from
 * the start at the next boot, and the old image is gone, so it can never revert.
 */
import { copyRegion, eraseRegion, scrambleRegion } from './area.js';
import { BootPanic, sectorOffset, sectorSize } from './context.js';
import type { BootContext } from './context.js';
import { checkpoint } from './sweep-hook.js';
import { trailerOffsets } from './trailer.js';

/** bootutil_max_image_size for overwrite-only: up to the swap_info field of the slot. */
export function appMaxSizeOverwrite(ctx: BootContext): number {
  return trailerOffsets(ctx.secondary.size, ctx.cfg).swapInfo;
}

/** boot_copy_image. */
export function copyImage(ctx: BootContext): void {
  const pri = ctx.primary;
  const sec = ctx.secondary;
  let size = 0;
  for (let s = 0; s < pri.sectors.length; s++) {
    const thisSize = sectorSize(pri, s);
    eraseRegion(pri, size, thisSize, false);
    size += thisSize;
  }
  if (size > sec.size) {
    // flash_area_read past the secondary fails and boot_perform_update asserts.
    throw new BootPanic(`overwrite-only: copying ${size} bytes of slot0 size from a ${sec.size}-byte slot1`);
  }
  checkpoint(ctx, null, 'overwrite-copy', size, 0);
  copyRegion(sec, pri, 0, 0, size);
  scrambleRegion(sec, sectorOffset(sec, 0), sectorSize(sec, 0), false);
  const last = sec.sectors.length - 1;
  scrambleRegion(sec, sectorOffset(sec, last), sectorSize(sec, last), false);
}
