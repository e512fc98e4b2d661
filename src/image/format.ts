/**
 * MCUboot image format constants (bootutil/image.h, imgtool image.py). Everything is little-endian;
 * imgtool's big-endian mode is not supported because no MCUboot target we simulate uses it.
 */

export const IMAGE_MAGIC = 0x96f3b83d;
/** Size of struct image_header; hdr_size reserves at least this much. */
export const IMAGE_HEADER_SIZE_BYTES = 32;
export const TLV_INFO_MAGIC = 0x6907; // unprotected TLV area
export const TLV_PROT_INFO_MAGIC = 0x6908; // protected TLV area (covered by the hash)
export const TLV_INFO_SIZE_BYTES = 4;
export const TLV_ENTRY_HEADER_SIZE_BYTES = 4;

export const IMAGE_F = {
  PIC: 0x1,
  ENCRYPTED_AES128: 0x4,
  ENCRYPTED_AES256: 0x8,
  NON_BOOTABLE: 0x10,
  RAM_LOAD: 0x20,
  ROM_FIXED: 0x100,
  COMPRESSED_LZMA1: 0x200,
  COMPRESSED_LZMA2: 0x400,
  COMPRESSED_ARM_THUMB: 0x800,
} as const;

export const FLAGS_ENCRYPTED = IMAGE_F.ENCRYPTED_AES128 | IMAGE_F.ENCRYPTED_AES256;
export const FLAGS_COMPRESSED = IMAGE_F.COMPRESSED_LZMA1 | IMAGE_F.COMPRESSED_LZMA2 | IMAGE_F.COMPRESSED_ARM_THUMB;

export const TLV = {
  KEYHASH: 0x01,
  PUBKEY: 0x02,
  SHA256: 0x10,
  SHA384: 0x11,
  SHA512: 0x12,
  RSA2048_PSS: 0x20,
  ECDSA_SIG: 0x22,
  RSA3072_PSS: 0x23,
  ED25519: 0x24,
  SIG_PURE: 0x25,
  ENC_RSA2048: 0x30,
  ENC_KW: 0x31,
  ENC_EC256: 0x32,
  ENC_X25519: 0x33,
  ENC_X25519_SHA512: 0x34,
  DEPENDENCY: 0x40,
  SEC_CNT: 0x50,
  BOOT_RECORD: 0x60,
  DECOMP_SIZE: 0x70,
  DECOMP_SHA: 0x71,
  DECOMP_SIGNATURE: 0x72,
  COMP_DEC_SIZE: 0x73,
  UUID_VID: 0x74,
  UUID_CID: 0x75,
  /** ota-sim extension: firmware behaviour JSON (vendor range). */
  BEHAVIOUR: 0x00a0,
  /** ota-sim extension: target board name, UTF-8 (vendor range). */
  BOARD: 0x00a1,
} as const;

/** imgtool only lets --custom-tlv use the vendor range. */
export const TLV_VENDOR_MIN = 0x00a0;
export const TLV_VENDOR_MAX = 0xfffe;

const TLV_NAMES = new Map<number, string>(Object.entries(TLV).map(([name, type]) => [type, name]));

/** Human name of a TLV type, e.g. "SHA256", or "0x00b0" for unknown/custom ones. */
export function tlvName(type: number): string {
  return TLV_NAMES.get(type) ?? `0x${type.toString(16).padStart(4, '0')}`;
}

/** Names of the set header flags, for inspect output. */
export function flagNames(flags: number): string[] {
  const names: string[] = [];
  let known = 0;
  for (const [name, bit] of Object.entries(IMAGE_F)) {
    known |= bit;
    if ((flags & bit) !== 0) names.push(name);
  }
  const unknown = (flags & ~known) >>> 0;
  if (unknown !== 0) names.push(`0x${unknown.toString(16)}`);
  return names;
}
