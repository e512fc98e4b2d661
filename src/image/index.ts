/** Public surface of the MCUboot image module (parse, build/sign, verify, keys). */
export { ImageError } from './errors.js';
export type { ImageErrorCode, ImageParseCode } from './errors.js';
export { IMAGE_F, IMAGE_MAGIC, IMAGE_HEADER_SIZE_BYTES, TLV, TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC, flagNames, tlvName } from './format.js';
export { compareVersions, decodeHeader, encodeHeader, formatVersion, parseVersion, sameVersionText } from './header.js';
export type { ImageHeader, ImageVersion } from './header.js';
export { encodeTlvArea } from './tlv.js';
export type { TlvEntry, TlvInput } from './tlv.js';
export { DEFAULT_BEHAVIOUR, behaviourTlv, boardTlv, decodeBehaviour, decodeBoard } from './vendor.js';
export type { FirmwareBehaviour, SelfTestOutcome } from './vendor.js';
export { findTlv, parseImage, parseImageLayout } from './parse.js';
export type { ImageLayout, ParsedImage } from './parse.js';
export {
  KEY_TYPES,
  ed25519KeyPemFromSeed,
  generateKey,
  parseKeyPem,
  parseSigningKeyPem,
  privateKeyToPem,
  publicKeyOf,
  publicKeyToPem,
  signatureTlvType,
} from './keys.js';
export type { AnyKey, KeyType, PublicKey, SigningKey } from './keys.js';
export { DEFAULT_MAX_ALIGN, DEFAULT_MAX_SECTORS, bootMagic, padToSlot, trailerSize_bytes } from './pad.js';
export type { MaxAlign, TrailerLayout, WriteAlign } from './pad.js';
export { customTlvFromArgs, parseImgtoolInt, signImage, trailerLayoutOf } from './sign.js';
export type { PublicKeyFormat, SignOptions } from './sign.js';
export { VerifyMemo, assertSupported, createTrustStore, verifyImage, verifyParsed } from './verify.js';
export type { TrustStore, VerifyOptions, VerifyReason, VerifyResult } from './verify.js';
