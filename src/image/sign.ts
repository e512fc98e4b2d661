/**
 * signImage: build an MCUboot image byte-for-byte as `imgtool sign` builds it for the same key,
 * input and options (little-endian, SHA-256, no encryption or compression). Option names follow
 * imgtool's flags; the CLI maps them one to one.
 */
import { createHash } from 'node:crypto';
import { ImageError } from './errors.js';
import { IMAGE_F, IMAGE_HEADER_SIZE_BYTES, TLV, TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC, TLV_VENDOR_MAX, TLV_VENDOR_MIN } from './format.js';
import { encodeHeader, parseVersion } from './header.js';
import type { ImageVersion } from './header.js';
import { signatureTlvType } from './keys.js';
import type { SigningKey } from './keys.js';
import { DEFAULT_MAX_ALIGN, DEFAULT_MAX_SECTORS, checkFitsSlot, padToSlot } from './pad.js';
import type { MaxAlign, TrailerLayout, WriteAlign } from './pad.js';
import { signRegion } from './signature.js';
import { encodeTlvArea } from './tlv.js';
import type { TlvInput } from './tlv.js';

export type PublicKeyFormat = 'hash' | 'full';

export interface SignOptions {
  /** -k: without a key the image gets only the SHA256 TLV, as imgtool makes it. */
  key?: SigningKey | null;
  /** -H: bytes reserved for the header; the payload starts here. */
  headerSize_bytes: number;
  /** --pad-header: prepend headerSize_bytes erased bytes; else the input must start with that many zeros. */
  padHeader?: boolean;
  /** -S: slot size; 0 or absent skips the fit check (imgtool always requires -S). */
  slotSize_bytes?: number;
  /** --align: flash write size used for the trailer's swap status area. */
  align?: WriteAlign;
  /** -v: "1.2.3+4" or a version object; default 0.0.0+0. */
  version?: ImageVersion | string;
  /** -s: SEC_CNT value, or "auto" (major << 24 | minor << 16 | revision); absent = no SEC_CNT TLV. */
  securityCounter?: number | 'auto' | null;
  /** --custom-tlv: protected TLVs in the vendor range, in this order. */
  customTlvs?: readonly TlvInput[];
  /** --pad: pad to the slot size and write the trailer magic. */
  pad?: boolean;
  /** --confirm: implies pad; sets image_ok. */
  confirm?: boolean;
  /** --test: implies pad; image_ok stays erased. */
  test?: boolean;
  /** -R: erased value for padding. */
  erasedValue?: 0 | 0xff;
  /** --max-align: BOOT_MAX_ALIGN; default max(8, align). */
  maxAlign?: MaxAlign;
  /** -M: max sectors, sizing the swap status area; default 128. */
  maxSectors?: number;
  /** --overwrite-only: smaller trailer, never sets image_ok. */
  overwriteOnly?: boolean;
  /** --public-key-format: KEYHASH (default) or the full PUBKEY. */
  publicKeyFormat?: PublicKeyFormat;
  /** -L: RAM load address (sets RAM_LOAD). */
  loadAddr?: number;
  /** -F: flash address the image is built for (sets ROM_FIXED). */
  romFixed?: number;
  /** --non-bootable */
  nonBootable?: boolean;
  /** --pad-sig: zero-pad ECDSA signatures to 72 bytes (MCUboot < 1.5). */
  padSig?: boolean;
}

const WRITE_ALIGNS: readonly number[] = [1, 2, 4, 8, 16, 32];
const MAX_ALIGNS: readonly number[] = [8, 16, 32];
const STANDARD_TLV_TYPES = new Set<number>(Object.values(TLV).filter((t) => t < TLV_VENDOR_MIN));

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

function u32(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > 0xffffffff) {
    throw new ImageError('BAD_OPTION', `${name}: ${value} is not an unsigned 32-bit number`);
  }
  return value;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Python's int(text, 0), which imgtool uses for tags and counters: decimal, 0x, 0o, 0b. */
export function parseImgtoolInt(name: string, text: string): number {
  const t = text.trim().replace(/_/g, '');
  const m = /^(0x[0-9a-f]+|0o[0-7]+|0b[01]+|[1-9][0-9]*|0+)$/i.exec(t);
  const n = m ? Number(t.toLowerCase().startsWith('0o') ? parseInt(t.slice(2), 8) : t) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new ImageError('BAD_OPTION', `${name}: ${JSON.stringify(text)} is not an integer (decimal, or 0x/0o/0b prefixed)`);
  }
  return n;
}

/**
 * One `--custom-tlv TAG VALUE` pair as imgtool reads it: TAG an integer in the vendor range,
 * VALUE hex bytes when it starts with "0x" (even number of digits), else the UTF-8 string itself.
 */
export function customTlvFromArgs(tag: string, value: string): TlvInput {
  const type = parseImgtoolInt('--custom-tlv tag', tag);
  if (type < TLV_VENDOR_MIN || type > TLV_VENDOR_MAX) {
    throw new ImageError('BAD_OPTION', `--custom-tlv: tag ${tag} is outside the vendor range 0x00a0..0xfffe`);
  }
  if (value.startsWith('0x')) {
    const digits = value.slice(2);
    if (digits.length % 2 !== 0) throw new ImageError('BAD_OPTION', `--custom-tlv ${tag}: hex value ${value} has an odd number of digits`);
    if (!/^[0-9a-fA-F]*$/.test(digits)) throw new ImageError('BAD_OPTION', `--custom-tlv ${tag}: ${value} is not hex bytes (0x-prefixed values are read as hex)`);
    return { type, value: new Uint8Array(Buffer.from(digits, 'hex')) };
  }
  return { type, value: new TextEncoder().encode(value) };
}

/** The trailer geometry imgtool derives from --align, --max-align, -M and --overwrite-only. */
export function trailerLayoutOf(options: Pick<SignOptions, 'align' | 'maxAlign' | 'maxSectors' | 'overwriteOnly'>): TrailerLayout {
  const align = options.align ?? 1;
  if (!WRITE_ALIGNS.includes(align)) throw new ImageError('BAD_OPTION', `--align: ${align} is not one of 1, 2, 4, 8, 16, 32`);
  const maxAlign = options.maxAlign ?? Math.max(DEFAULT_MAX_ALIGN, align);
  if (!MAX_ALIGNS.includes(maxAlign)) throw new ImageError('BAD_OPTION', `--max-align: ${maxAlign} is not one of 8, 16, 32`);
  const maxSectors = options.maxSectors ?? DEFAULT_MAX_SECTORS;
  if (!Number.isSafeInteger(maxSectors) || maxSectors < 1) {
    throw new ImageError('BAD_OPTION', `--max-sectors: ${maxSectors} is not a positive integer`);
  }
  return { align, maxAlign, maxSectors, overwriteOnly: options.overwriteOnly ?? false };
}

/** Sign `input` (the raw firmware binary) into an MCUboot image, as `imgtool sign` would. */
export function signImage(input: Uint8Array, options: SignOptions): Uint8Array {
  const headerSize_bytes = options.headerSize_bytes;
  if (!Number.isSafeInteger(headerSize_bytes) || headerSize_bytes < IMAGE_HEADER_SIZE_BYTES || headerSize_bytes > 0xffff) {
    throw new ImageError('BAD_OPTION', `--header-size: ${headerSize_bytes} must be between ${IMAGE_HEADER_SIZE_BYTES} and 65535`);
  }
  const erasedValue = options.erasedValue ?? 0xff;
  if (erasedValue !== 0 && erasedValue !== 0xff) throw new ImageError('BAD_OPTION', `--erased-val: ${String(erasedValue)} is not 0 or 0xff`);
  const version = typeof options.version === 'string' ? parseVersion(options.version) : (options.version ?? { major: 0, minor: 0, revision: 0, build: 0 });
  const trailer = trailerLayoutOf(options);
  const slotSize_bytes = options.slotSize_bytes ?? 0;
  const pad = (options.pad ?? false) || (options.confirm ?? false) || (options.test ?? false);
  if (!Number.isSafeInteger(slotSize_bytes) || slotSize_bytes < 0) throw new ImageError('BAD_OPTION', `--slot-size: ${slotSize_bytes} is not a size`);
  if (pad && slotSize_bytes === 0) throw new ImageError('BAD_OPTION', '--pad needs a slot size (-S)');
  const loadAddr = u32('--load-addr', options.loadAddr ?? 0);
  const romFixed = u32('--rom-fixed', options.romFixed ?? 0);
  if (loadAddr !== 0 && romFixed !== 0) throw new ImageError('BAD_OPTION', 'can not set --rom-fixed and --load-addr at the same time');

  // Header area + payload, exactly as imgtool's load(): padded with erased bytes, or taken from the input.
  let body: Uint8Array;
  if (options.padHeader) {
    body = new Uint8Array(headerSize_bytes + input.length).fill(erasedValue, 0, headerSize_bytes);
    body.set(input, headerSize_bytes);
  } else {
    if (input.length < headerSize_bytes || input.subarray(0, headerSize_bytes).some((b) => b !== 0)) {
      throw new ImageError('BAD_OPTION', `input does not start with ${headerSize_bytes} zero bytes for the header; use --pad-header`);
    }
    body = input.slice();
  }
  const imageSize_bytes = u32('image size', body.length - headerSize_bytes);

  // Protected TLVs, in imgtool's order: SEC_CNT, then custom TLVs.
  const protectedEntries: TlvInput[] = [];
  if (options.securityCounter !== undefined && options.securityCounter !== null) {
    const counter =
      options.securityCounter === 'auto'
        ? version.major * 0x1000000 + version.minor * 0x10000 + version.revision
        : u32('--security-counter', options.securityCounter);
    const value = new Uint8Array(4);
    new DataView(value.buffer).setUint32(0, counter, true);
    protectedEntries.push({ type: TLV.SEC_CNT, value });
  }
  const seen = new Set<number>();
  for (const tlv of options.customTlvs ?? []) {
    if (!Number.isInteger(tlv.type) || tlv.type < TLV_VENDOR_MIN || tlv.type > TLV_VENDOR_MAX) {
      throw new ImageError('BAD_OPTION', `--custom-tlv: tag 0x${tlv.type.toString(16)} is outside the vendor range 0x00a0..0xfffe`);
    }
    if (STANDARD_TLV_TYPES.has(tlv.type)) throw new ImageError('BAD_OPTION', `--custom-tlv: tag 0x${tlv.type.toString(16)} conflicts with a predefined TLV`);
    if (seen.has(tlv.type)) throw new ImageError('BAD_OPTION', `--custom-tlv: tag 0x${tlv.type.toString(16)} given twice`);
    seen.add(tlv.type);
    protectedEntries.push(tlv);
  }
  const protectedArea = encodeTlvArea(TLV_PROT_INFO_MAGIC, protectedEntries);

  let flags = 0;
  if (loadAddr !== 0) flags |= IMAGE_F.RAM_LOAD;
  if (romFixed !== 0) flags |= IMAGE_F.ROM_FIXED;
  if (options.nonBootable) flags |= IMAGE_F.NON_BOOTABLE;
  body.set(
    encodeHeader({
      loadAddr: romFixed || loadAddr,
      headerSize_bytes,
      protectedTlvSize_bytes: protectedArea.length,
      imageSize_bytes,
      flags,
      version,
    }),
    0,
  );

  const region = concat([body, protectedArea]);
  const digest = sha256(region);
  const unprotectedEntries: TlvInput[] = [{ type: TLV.SHA256, value: digest }];
  const key = options.key ?? null;
  if (key) {
    const pub = key.publicKey;
    unprotectedEntries.push(
      (options.publicKeyFormat ?? 'hash') === 'hash' ? { type: TLV.KEYHASH, value: pub.keyHash } : { type: TLV.PUBKEY, value: pub.publicBytes },
    );
    unprotectedEntries.push({ type: signatureTlvType(key.type), value: signRegion(key, region, digest, options.padSig ?? false) });
  }
  const image = concat([region, encodeTlvArea(TLV_INFO_MAGIC, unprotectedEntries)]);
  checkFitsSlot(image.length, slotSize_bytes, trailer);
  return pad ? padToSlot(image, slotSize_bytes, trailer, erasedValue, options.confirm ?? false) : image;
}
