/**
 * The 32-byte image header and the image version (major.minor.revision+build), decoded and encoded
 * exactly as bootutil's struct image_header and imgtool's version.py define them.
 */
import { ImageError } from './errors.js';
import { IMAGE_HEADER_SIZE_BYTES, IMAGE_MAGIC } from './format.js';

export interface ImageVersion {
  major: number; // u8
  minor: number; // u8
  revision: number; // u16
  build: number; // u32
}

export interface ImageHeader {
  magic: number;
  loadAddr: number;
  headerSize_bytes: number; // hdr_size: the payload starts here
  protectedTlvSize_bytes: number; // protect_tlv_size, 0 if there is no protected area
  imageSize_bytes: number; // img_size: payload only, header excluded
  flags: number;
  version: ImageVersion;
}

// imgtool's grammar: no leading zeros, later parts optional ("1", "1.2", "1.2.3", "1.2.3+4").
const VERSION_RE = /^([1-9]\d*|0)(?:\.([1-9]\d*|0)(?:\.([1-9]\d*|0)(?:\+([1-9]\d*|0))?)?)?$/;

/** Parse "maj.min.rev+build" (later parts optional) as imgtool does, with range checks it leaves to struct.pack. */
export function parseVersion(text: string): ImageVersion {
  const m = VERSION_RE.exec(text);
  if (!m) {
    throw new ImageError('BAD_VERSION', `version ${JSON.stringify(text)}: expected maj.min.rev+build with later parts optional, e.g. 1.2.3+4`);
  }
  const version: ImageVersion = {
    major: Number(m[1] ?? 0),
    minor: Number(m[2] ?? 0),
    revision: Number(m[3] ?? 0),
    build: Number(m[4] ?? 0),
  };
  const limits: [keyof ImageVersion, number][] = [['major', 0xff], ['minor', 0xff], ['revision', 0xffff], ['build', 0xffffffff]];
  for (const [field, max] of limits) {
    if (version[field] > max) throw new ImageError('BAD_VERSION', `version ${JSON.stringify(text)}: ${field} must be at most ${max}`);
  }
  return version;
}

/** "1.2.3+4", the form imgtool verify prints (build always shown). */
export function formatVersion(v: ImageVersion): string {
  return `${v.major}.${v.minor}.${v.revision}+${v.build}`;
}

/** Order two versions as MCUboot's boot_version_cmp does (build number included). */
export function compareVersions(a: ImageVersion, b: ImageVersion): number {
  return a.major - b.major || a.minor - b.minor || a.revision - b.revision || a.build - b.build;
}

/**
 * Whether two version texts name the same version ("2.0.0" and "2.0.0+0" do: a manifest omits
 * the build number the image header always carries). Texts that do not parse are compared as text.
 */
export function sameVersionText(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return compareVersions(parseVersion(a), parseVersion(b)) === 0;
  } catch {
    return false;
  }
}

/** Decode the header at offset 0. Checks only what the header alone can tell (magic, length, hdr_size). */
export function decodeHeader(bytes: Uint8Array): ImageHeader {
  if (bytes.length < IMAGE_HEADER_SIZE_BYTES) {
    throw new ImageError('TRUNCATED', `image is ${bytes.length} bytes, shorter than the ${IMAGE_HEADER_SIZE_BYTES}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, IMAGE_HEADER_SIZE_BYTES);
  const magic = view.getUint32(0, true);
  if (magic !== IMAGE_MAGIC) {
    throw new ImageError('BAD_MAGIC', `bad image magic 0x${magic.toString(16).padStart(8, '0')} (expected 0x96f3b83d): not an MCUboot image`);
  }
  const header: ImageHeader = {
    magic,
    loadAddr: view.getUint32(4, true),
    headerSize_bytes: view.getUint16(8, true),
    protectedTlvSize_bytes: view.getUint16(10, true),
    imageSize_bytes: view.getUint32(12, true),
    flags: view.getUint32(16, true),
    version: {
      major: view.getUint8(20),
      minor: view.getUint8(21),
      revision: view.getUint16(22, true),
      build: view.getUint32(24, true),
    },
  };
  if (header.headerSize_bytes < IMAGE_HEADER_SIZE_BYTES) {
    throw new ImageError('BAD_HEADER', `header size field hdr_size=${header.headerSize_bytes} is smaller than the ${IMAGE_HEADER_SIZE_BYTES}-byte header`);
  }
  return header;
}

/** The 32 header bytes (pad word zero), as imgtool's add_header packs them. */
export function encodeHeader(header: Omit<ImageHeader, 'magic'>): Uint8Array {
  const out = new Uint8Array(IMAGE_HEADER_SIZE_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, IMAGE_MAGIC, true);
  view.setUint32(4, header.loadAddr >>> 0, true);
  view.setUint16(8, header.headerSize_bytes, true);
  view.setUint16(10, header.protectedTlvSize_bytes, true);
  view.setUint32(12, header.imageSize_bytes, true);
  view.setUint32(16, header.flags >>> 0, true);
  view.setUint8(20, header.version.major);
  view.setUint8(21, header.version.minor);
  view.setUint16(22, header.version.revision, true);
  view.setUint32(24, header.version.build, true);
  return out;
}
