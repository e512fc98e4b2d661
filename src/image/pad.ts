/**
 * `imgtool sign --pad`: fill the image up to the slot size with the erased value and write the
 * trailer magic at the slot end (and image_ok with --confirm), reserving the same trailer size
 * imgtool reserves. The bootloader's own trailer model lives in src/boot; this mirrors imgtool only.
 */
import { ImageError } from './errors.js';

export type WriteAlign = 1 | 2 | 4 | 8 | 16 | 32;
export type MaxAlign = 8 | 16 | 32;

export const DEFAULT_MAX_SECTORS = 128;
export const DEFAULT_MAX_ALIGN: MaxAlign = 8;
const MAGIC_SIZE_BYTES = 16;

const MAGIC_V1 = [0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80];
const MAGIC_V2_TAIL = [0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a];

export interface TrailerLayout {
  align: WriteAlign; // flash write size (--align)
  maxAlign: number; // BOOT_MAX_ALIGN (--max-align, default max(8, align))
  maxSectors: number; // -M
  overwriteOnly: boolean;
}

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** The 16-byte trailer magic: the classic one for max-align 8, else u16 max-align + the v2 tail. */
export function bootMagic(maxAlign: number): Uint8Array {
  if (maxAlign === DEFAULT_MAX_ALIGN) return Uint8Array.from(MAGIC_V1);
  return Uint8Array.from([maxAlign & 0xff, (maxAlign >> 8) & 0xff, ...MAGIC_V2_TAIL]);
}

/** Bytes imgtool reserves at the slot end (its _trailer_size, without encryption keys). */
export function trailerSize_bytes(t: TrailerLayout): number {
  const magicAligned_bytes = alignUp(MAGIC_SIZE_BYTES, t.maxAlign);
  if (t.overwriteOnly) return t.maxAlign * 2 + magicAligned_bytes;
  const status_bytes = t.maxSectors * 3 * t.align; // swap status area
  return status_bytes + t.maxAlign * 4 + magicAligned_bytes; // + image_ok, copy_done, swap_info, swap_size
}

/** Throws IMAGE_TOO_LARGE if image + trailer do not fit the slot (imgtool's check_trailer). */
export function checkFitsSlot(imageSize_bytes: number, slotSize_bytes: number, t: TrailerLayout): void {
  if (slotSize_bytes <= 0) return;
  const trailer_bytes = trailerSize_bytes(t);
  if (imageSize_bytes + trailer_bytes > slotSize_bytes) {
    throw new ImageError(
      'IMAGE_TOO_LARGE',
      `image size (0x${imageSize_bytes.toString(16)}) + trailer (0x${trailer_bytes.toString(16)}) exceeds slot size 0x${slotSize_bytes.toString(16)}`,
    );
  }
}

/** The image padded to the slot size with the trailer magic (and image_ok when confirm). */
export function padToSlot(
  image: Uint8Array,
  slotSize_bytes: number,
  t: TrailerLayout,
  erasedValue: number,
  confirm: boolean,
): Uint8Array {
  checkFitsSlot(image.length, slotSize_bytes, t);
  const out = new Uint8Array(slotSize_bytes).fill(erasedValue);
  out.set(image, 0);
  out.set(bootMagic(t.maxAlign), slotSize_bytes - MAGIC_SIZE_BYTES);
  // imgtool never writes image_ok for overwrite-only (that upgrade mode has no test/confirm state).
  if (confirm && !t.overwriteOnly) {
    out[slotSize_bytes - alignUp(MAGIC_SIZE_BYTES, t.maxAlign) - t.maxAlign] = 0x01;
  }
  return out;
}
