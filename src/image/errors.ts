/**
 * The one error type the image module throws. Malformed images, bad keys and bad sign options all
 * surface as an ImageError with a stable `code`, so callers (CLI, bootloader, agent) can tell a
 * corrupt image from a bug without parsing messages. It is an InputError: exit code 2 in the CLI.
 */
import { InputError } from '../errors.js';

/** Structural problems found while parsing; verifyImage reports these as its `reason` too. */
export type ImageParseCode =
  | 'TRUNCATED' // the buffer ends before the header or payload the header announces
  | 'BAD_MAGIC' // header magic is not 0x96f3b83d
  | 'BAD_HEADER' // header fields inconsistent with each other or the TLV area (hdr_size < 32, protect_tlv_size)
  | 'BAD_TLV_MAGIC' // no TLV info header (0x6907 / 0x6908) where the header says the TLVs start
  | 'TLV_OVERRUN' // a TLV area or entry runs past its area or past the buffer
  | 'BAD_TLV'; // a known TLV with an impossible length (SHA256 != 32 bytes, SEC_CNT != 4)

export type ImageErrorCode =
  | ImageParseCode
  | 'BAD_BEHAVIOUR' // vendor TLV 0x00A0 is not valid behaviour JSON
  | 'BAD_BOARD' // vendor TLV 0x00A1 is not valid UTF-8 / empty
  | 'UNSUPPORTED' // encrypted, compressed, DEPENDENCY, pure-signature or SHA-384/512 images
  | 'BAD_VERSION' // a version string that is not maj.min.rev+build, or out of range
  | 'BAD_KEY' // a key file that is not a supported PEM key
  | 'BAD_OPTION' // a sign option out of range or contradictory
  | 'IMAGE_TOO_LARGE'; // image + trailer do not fit the slot

export class ImageError extends InputError {
  declare readonly code: ImageErrorCode;
  constructor(code: ImageErrorCode, message: string) {
    super(code, message);
  }
}
