/**
 * Parse an MCUboot image from bytes. The input may be longer than the image (a whole slot read
 * from flash: erased padding and a trailer follow), so the image's own end is found from the
 * header and the TLV lengths, the way bootutil walks it, and exposed as totalSize_bytes.
 */
import { ImageError } from './errors.js';
import { TLV, TLV_INFO_MAGIC, TLV_INFO_SIZE_BYTES, TLV_PROT_INFO_MAGIC } from './format.js';
import { decodeHeader, formatVersion } from './header.js';
import type { ImageHeader } from './header.js';
import { decodeTlvEntries, readTlvInfo } from './tlv.js';
import type { TlvEntry } from './tlv.js';
import { decodeBehaviour, decodeBoard } from './vendor.js';
import type { FirmwareBehaviour } from './vendor.js';

/** The structure of an image; every Uint8Array is a view into the parsed buffer, not a copy. */
export interface ImageLayout {
  /** The image itself: [0, totalSize_bytes) of the input. */
  bytes: Uint8Array;
  header: ImageHeader;
  /** header + payload + protected TLV area: what the SHA256 TLV covers. */
  hashedSize_bytes: number;
  /** Offset of the first TLV area (hdr_size + img_size). */
  tlvOffset: number;
  protectedTlvs: TlvEntry[];
  unprotectedTlvs: TlvEntry[];
  /** All TLVs in file order, protected first. */
  tlvs: TlvEntry[];
  /** Length of the whole image, up to the end of the unprotected TLV area. */
  totalSize_bytes: number;
}

export interface ParsedImage extends ImageLayout {
  version: string; // "1.2.3+4"
  securityCounter: number | null; // SEC_CNT TLV (protected), null if absent
  behaviour: FirmwareBehaviour | null; // vendor TLV 0x00A0, null if absent (nominal behaviour)
  board: string | null; // vendor TLV 0x00A1, null if absent
}

/**
 * Structure only: header, TLV areas, total length. Vendor TLVs are not decoded, so a verifier
 * reports a damaged image as a hash mismatch rather than as bad behaviour JSON.
 */
export function parseImageLayout(input: Uint8Array): ImageLayout {
  const header = decodeHeader(input);
  const tlvOffset = header.headerSize_bytes + header.imageSize_bytes;
  if (tlvOffset + TLV_INFO_SIZE_BYTES > input.length) {
    throw new ImageError(
      'TRUNCATED',
      `header says hdr_size ${header.headerSize_bytes} + img_size ${header.imageSize_bytes} = ${tlvOffset} bytes before the TLV area, but the data is only ${input.length} bytes`,
    );
  }
  let info = readTlvInfo(input, tlvOffset);
  let protectedTlvs: TlvEntry[] = [];
  let unprotOffset = tlvOffset;
  if (info.magic === TLV_PROT_INFO_MAGIC) {
    if (info.total_bytes !== header.protectedTlvSize_bytes) {
      throw new ImageError(
        'BAD_HEADER',
        `header protect_tlv_size ${header.protectedTlvSize_bytes} disagrees with the protected TLV area length ${info.total_bytes} at offset ${tlvOffset}`,
      );
    }
    protectedTlvs = decodeTlvEntries(input, tlvOffset, tlvOffset + info.total_bytes, true);
    unprotOffset = tlvOffset + info.total_bytes;
    info = readTlvInfo(input, unprotOffset);
  } else if (header.protectedTlvSize_bytes !== 0) {
    throw new ImageError(
      'BAD_HEADER',
      `header protect_tlv_size ${header.protectedTlvSize_bytes} but no protected TLV area (magic 0x6908) at offset ${tlvOffset}`,
    );
  }
  if (info.magic !== TLV_INFO_MAGIC) {
    throw new ImageError(
      'BAD_TLV_MAGIC',
      `no TLV area at offset ${unprotOffset}: magic 0x${info.magic.toString(16).padStart(4, '0')}, expected 0x6907 (header sizes wrong or image damaged)`,
    );
  }
  const unprotectedTlvs = decodeTlvEntries(input, unprotOffset, unprotOffset + info.total_bytes, false);
  const totalSize_bytes = unprotOffset + info.total_bytes;
  return {
    bytes: input.subarray(0, totalSize_bytes),
    header,
    hashedSize_bytes: unprotOffset,
    tlvOffset,
    protectedTlvs,
    unprotectedTlvs,
    tlvs: protectedTlvs.concat(unprotectedTlvs),
    totalSize_bytes,
  };
}

/** First TLV of a type, optionally only from the protected area. */
export function findTlv(image: ImageLayout, type: number, protectedOnly = false): TlvEntry | undefined {
  return (protectedOnly ? image.protectedTlvs : image.tlvs).find((t) => t.type === type);
}

/** Parse an image and decode the TLVs ota-sim gives meaning to (SEC_CNT, behaviour, board). */
export function parseImage(input: Uint8Array): ParsedImage {
  const layout = parseImageLayout(input);
  let securityCounter: number | null = null;
  const secCnt = findTlv(layout, TLV.SEC_CNT, true);
  if (secCnt) {
    if (secCnt.value.length !== 4) {
      throw new ImageError('BAD_TLV', `SEC_CNT TLV is ${secCnt.value.length} bytes, expected 4`);
    }
    const v = secCnt.value;
    securityCounter = (v[0]! | (v[1]! << 8) | (v[2]! << 16) | (v[3]! << 24)) >>> 0;
  }
  // Only protected vendor TLVs count: an unprotected one is not covered by the signature.
  const behaviourEntry = findTlv(layout, TLV.BEHAVIOUR, true);
  const boardEntry = findTlv(layout, TLV.BOARD, true);
  return {
    ...layout,
    version: formatVersion(layout.header.version),
    securityCounter,
    behaviour: behaviourEntry ? decodeBehaviour(behaviourEntry.value) : null,
    board: boardEntry ? decodeBoard(boardEntry.value) : null,
  };
}
