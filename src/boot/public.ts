/**
 * What an application calls in MCUboot's bootutil_public.c: boot_set_pending, boot_set_confirmed,
 * boot_is_img_confirmed and boot_swap_type (the swap table after MCUboot PR 2100). Each writes
 * exactly the trailer fields, in the order, that MCUboot's boot_set_next writes them.
 */
import { InputError } from '../errors.js';
import type { BootArea, Strategy } from './area.js';
import type { BoardProfile, PartitionName } from '../flash/types.js';
import { SwapType, checkTrailerConfig, readSwapState, writeImageOk, writeMagic, writeSwapInfo } from './trailer.js';
import type { SwapState, TrailerConfig } from './trailer.js';

/** What these functions need of a flash: its board and its partitions as MCUboot flash areas. */
export interface BootFlash {
  readonly board: BoardProfile;
  area(name: PartitionName): BootArea;
}

/** The trailer settings of a board for a strategy (default: the board's first supported one). */
export function trailerConfigOf(board: BoardProfile, strategy?: Strategy): TrailerConfig {
  const chosen = strategy ?? board.mcuboot.strategies[0];
  if (chosen === undefined) throw new InputError('NO_STRATEGY', `board ${board.name} lists no MCUboot strategy (mcuboot.strategies is empty)`);
  const cfg = { maxAlign: board.mcuboot.maxAlign, maxSectors: board.mcuboot.maxSectors, strategy: chosen };
  checkTrailerConfig(cfg);
  return cfg;
}

/**
 * boot_swap_type_multi's table, first matching row wins:
 *   secondary magic GOOD, secondary image_ok UNSET            -> TEST
 *   secondary magic GOOD, secondary image_ok SET              -> PERM
 *   primary magic GOOD, primary image_ok UNSET, copy_done SET -> REVERT (secondary magic ANY since PR 2100)
 *   otherwise                                                 -> NONE
 * With `preRevertFix` the REVERT row requires the secondary magic UNSET, as before PR 2100.
 */
export function swapTypeFromStates(primary: SwapState, secondary: SwapState, preRevertFix = false): number {
  if (secondary.magic === 'good' && secondary.imageOk === 'unset') return SwapType.TEST;
  if (secondary.magic === 'good' && secondary.imageOk === 'set') return SwapType.PERM;
  if (
    primary.magic === 'good' &&
    (!preRevertFix || secondary.magic === 'unset') &&
    primary.imageOk === 'unset' &&
    primary.copyDone === 'set'
  ) {
    return SwapType.REVERT;
  }
  return SwapType.NONE;
}

/** boot_swap_type(): the action the next boot will take, read from both trailers. */
export function swapType(flash: BootFlash, strategy?: Strategy): number {
  const cfg = trailerConfigOf(flash.board, strategy);
  return swapTypeFromStates(readSwapState(flash.area('slot0'), cfg), readSwapState(flash.area('slot1'), cfg));
}

export type SetNextResult = 'ok' | 'already-pending' | 'bad-image' | 'bad-vector';

/**
 * boot_set_next (non-direct-XIP): on the secondary (active=false) an UNSET magic gets magic,
 * image_ok if confirm, swap_info; on the running primary (active=true) a GOOD magic with image_ok
 * UNSET gets image_ok. A BAD magic is refused (BOOT_EBADIMAGE / BOOT_EBADVECT).
 */
export function bootSetNext(area: BootArea, active: boolean, confirm: boolean, cfg: TrailerConfig): SetNextResult {
  const doConfirm = active ? true : confirm;
  const st = readSwapState(area, cfg);
  switch (st.magic) {
    case 'good':
      if (active && st.imageOk === 'unset') writeImageOk(area, cfg);
      return active ? 'ok' : 'already-pending';
    case 'unset':
      if (!active) {
        writeMagic(area, cfg);
        if (doConfirm) writeImageOk(area, cfg);
        writeSwapInfo(area, doConfirm ? SwapType.PERM : SwapType.TEST, 0, cfg);
      }
      return 'ok';
    case 'bad':
      return active ? 'bad-vector' : 'bad-image';
  }
}

/** boot_set_pending(permanent): request a test (revert unless confirmed) or permanent upgrade of the secondary. */
export function bootSetPending(flash: BootFlash, permanent: boolean, strategy?: Strategy): SetNextResult {
  return bootSetNext(flash.area('slot1'), false, permanent, trailerConfigOf(flash.board, strategy));
}

/** boot_set_confirmed(): mark the running primary image OK so it is never reverted. */
export function bootSetConfirmed(flash: BootFlash, strategy?: Strategy): SetNextResult {
  return bootSetNext(flash.area('slot0'), true, true, trailerConfigOf(flash.board, strategy));
}

/** boot_is_img_confirmed() (Zephyr dfu/mcuboot.c): the primary's image_ok reads SET. */
export function bootIsImgConfirmed(flash: BootFlash, strategy?: Strategy): boolean {
  return readSwapState(flash.area('slot0'), trailerConfigOf(flash.board, strategy)).imageOk === 'set';
}
