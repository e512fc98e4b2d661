/**
 * `--artifacts DIR`: every signed MCUboot image in DIR (not recursive) becomes an artifact of
 * package `main`, its version and board from the image. Files that are not MCUboot images are
 * skipped and listed, so a build folder with other outputs in it still works.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { ImageError, parseImage } from '../image/index.js';

export interface FoundImage {
  file: string;
  version: string;
  board: string | null;
  bytes: Buffer;
}

export function scanArtifactDir(dir: string, maxFile_bytes: number): { images: FoundImage[]; skipped: string[] } {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    throw new InputError('FILE_NOT_READABLE', `${dir}: cannot list the artifacts directory (${e instanceof Error ? e.message : String(e)})`);
  }
  const images: FoundImage[] = [];
  const skipped: string[] = [];
  for (const name of names) {
    const file = join(dir, name);
    const st = statSync(file, { throwIfNoEntry: false });
    if (!st || !st.isFile()) continue;
    if (st.size > maxFile_bytes) {
      skipped.push(`${name}: ${st.size} bytes, above the ${maxFile_bytes}-byte artifact limit`);
      continue;
    }
    const bytes = readFileSync(file);
    try {
      const img = parseImage(bytes);
      images.push({ file, version: img.version, board: img.board, bytes: bytes.subarray(0, img.totalSize_bytes) });
    } catch (e) {
      if (!(e instanceof ImageError)) throw e;
      skipped.push(`${name}: not an MCUboot image (${e.message})`);
    }
  }
  return { images, skipped };
}
