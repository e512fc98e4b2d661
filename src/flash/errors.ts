/**
 * What the flash model refuses, and the power cut. FlashError is what a real driver would report
 * (or what real silicon would punish); PowerCut is not an error of the caller but the end of the
 * simulated power: every operation throws it until the device is powered on again.
 */
import { OtaSimError } from '../errors.js';

export type FlashErrorCode =
  | 'UNALIGNED' // address or length not a whole number of write blocks
  | 'NOT_ERASED' // strict mode: writing a block that was programmed since its last erase
  | 'PARTIAL_SECTOR' // erase that does not start and end on sector boundaries
  | 'OUT_OF_RANGE' // outside the chip or the partition
  | 'WORN_OUT' // the sector is past its endurance
  | 'DEVICE_FAILURE' // an injected driver error
  | 'UNKNOWN_DEVICE';

export class FlashError extends OtaSimError {
  override readonly code: FlashErrorCode;
  constructor(code: FlashErrorCode, message: string) {
    super(code, message, 1);
    this.code = code;
  }
}

export class PowerCut extends Error {
  /** Index of the op during or before which power went away. */
  readonly opIndex: number;
  constructor(opIndex: number, inside: boolean) {
    super(`power cut ${inside ? 'inside' : 'before'} flash op ${opIndex}`);
    this.name = 'PowerCut';
    this.opIndex = opIndex;
  }
}
