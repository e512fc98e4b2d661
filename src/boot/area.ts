/**
 * The bootloader's view of a flash area and the region operations MCUboot builds from single
 * flash ops (bootutil_area.c boot_erase_region / boot_scramble_region, loader.c boot_copy_region).
 * Each function issues exactly the ops MCUboot issues, in its order and with its lengths: one
 * erase per sector, 1024-byte copy chunks, backwards scrambles starting at the last sector.
 */
import { assert } from '../errors.js';
import type { FlashArea } from '../flash/flash.js';
export type { EraseValue, Strategy } from '../flash/types.js';
export type { FlashArea };

/** What the bootloader uses of a flash area (the real FlashArea satisfies it structurally). */
export type BootArea = Pick<FlashArea, 'name' | 'size' | 'writeSize' | 'eraseValue' | 'sectors' | 'read' | 'write' | 'erase'>;

/** BUF_SZ of loader.c: boot_copy_region moves data in chunks of this many bytes. */
export const COPY_CHUNK_BYTES = 1024;

/** flash_area_get_sector: index of the sector holding `off` (relative to the area). */
export function sectorIndexAt(area: BootArea, off: number): number {
  const sectors = area.sectors;
  // The message is built only on failure (this runs for every flash op of a sweep).
  if (!(off >= 0 && off < area.size && sectors.length > 0)) assert(false, `offset ${off} inside ${area.name}`);
  let lo = 0;
  let hi = sectors.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (sectors[mid]!.offset <= off) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * boot_erase_region on a device that needs erase: one erase op per sector touched by
 * [off, off+size), lowest first, or highest first when `backwards`. Returns false (no op) when the
 * range is outside the area, as MCUboot's rc -1.
 */
export function eraseRegion(area: BootArea, off: number, size: number, backwards: boolean): boolean {
  if (off >= area.size || area.size - off < size) return false;
  if (size === 0) return true; // no caller of MCUboot's erases an empty range
  const first = sectorIndexAt(area, off);
  const last = sectorIndexAt(area, off + size - 1);
  assert(last - first < 1_000_000, 'sector count bounded');
  if (backwards) {
    for (let i = last; i >= first; i--) {
      const s = area.sectors[i]!;
      area.erase(s.offset, s.size);
    }
  } else {
    for (let i = first; i <= last; i++) {
      const s = area.sectors[i]!;
      area.erase(s.offset, s.size);
    }
  }
  return true;
}

/** boot_scramble_region: on NOR flash (erase required) it is boot_erase_region; size 0 does nothing. */
export function scrambleRegion(area: BootArea, off: number, size: number, backwards: boolean): boolean {
  if (size === 0) return true;
  return eraseRegion(area, off, size, backwards);
}

/** boot_scramble_slot without MCUBOOT_MINIMAL_SCRAMBLE: the whole area, forwards. */
export function scrambleSlot(area: BootArea): void {
  scrambleRegion(area, 0, area.size, false);
}

/**
 * boot_copy_region: read and write in COPY_CHUNK_BYTES chunks, one write op per chunk.
 * `beforeChunk(done)` runs before each chunk (sweep checkpoints); it does not change what is done.
 */
export function copyRegion(src: BootArea, dst: BootArea, offSrc: number, offDst: number, size: number, beforeChunk?: (done: number) => void): void {
  assert(size >= 0 && size <= src.size && size <= dst.size, 'copy length within the areas');
  for (let done = 0; done < size; ) {
    beforeChunk?.(done);
    const chunk = Math.min(COPY_CHUNK_BYTES, size - done);
    dst.write(offDst + done, src.read(offSrc + done, chunk));
    done += chunk;
  }
}
