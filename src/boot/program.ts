/**
 * Programming a slot as a flasher (or a factory line) does: erase the partition sector by sector,
 * write the image in sector-sized chunks padded to the write size, then optionally mark it —
 * confirmed in the primary (magic + image_ok, as `imgtool --pad --confirm` would), or pending in
 * the secondary as boot_set_pending does (test, or permanent).
 */
import { InputError } from '../errors.js';
import type { Flash } from '../flash/flash.js';
import type { Strategy } from '../flash/types.js';
import { bootSetPending, trailerConfigOf } from './public.js';
import { writeImageOk, writeMagic } from './trailer.js';

export type SlotName = 'slot0' | 'slot1';
export type SlotMark = 'none' | 'confirm' | 'test';

export function programSlot(flash: Flash, slot: SlotName, image: Uint8Array, mark: SlotMark = 'none', strategy?: Strategy): void {
  const area = flash.area(slot);
  const cfg = trailerConfigOf(flash.board, strategy);
  if (image.length > area.size) {
    throw new InputError('IMAGE_TOO_LARGE', `image of ${image.length} bytes does not fit ${slot} (${area.size} bytes)`);
  }
  if (mark === 'test' && slot !== 'slot1') {
    throw new InputError('BAD_MARK', `--test marks a pending upgrade in slot1; an image in ${slot} is either confirmed (--confirm) or left unmarked`);
  }
  for (const sector of area.sectors) area.erase(sector.offset, sector.size);
  const ws = area.writeSize;
  const padded = new Uint8Array(Math.ceil(image.length / ws) * ws).fill(area.eraseValue);
  padded.set(image);
  let off = 0;
  for (const sector of area.sectors) {
    if (off >= padded.length) break;
    const end = Math.min(padded.length, sector.offset + sector.size);
    area.write(off, padded.subarray(off, end));
    off = end;
  }
  if (mark === 'none') return;
  if (slot === 'slot1') {
    bootSetPending(flash, mark === 'confirm', cfg.strategy);
  } else {
    // What `imgtool sign --pad --confirm` leaves: magic and image_ok, no swap_info.
    writeMagic(area, cfg);
    writeImageOk(area, cfg);
  }
}
