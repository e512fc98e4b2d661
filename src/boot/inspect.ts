/**
 * "Where the swap stands" for `ota-sim flash inspect`: the trailers of slot0, slot1 (and scratch),
 * decoded as MCUboot decodes them, where MCUboot would read the swap status from, the position it
 * would resume at, and what the next boot will do. Read-only: no flash op is issued.
 */
import type { Strategy } from './area.js';
import type { BootFlash } from './public.js';
import { swapTypeFromStates, trailerConfigOf } from './public.js';
import {
  decodeStatusEntries,
  readStatusSwapType,
  readSwapSize,
  readSwapState,
  statusSourceMove,
  statusSourceScratch,
  swapTypeName,
} from './trailer.js';
import type { StatusPosition, StatusSource, SwapState } from './trailer.js';

export interface AreaTrailer extends SwapState {
  swapTypeName: string;
  swapSize_bytes: number;
}

export interface SwapInspection {
  strategy: Strategy;
  slot0: AreaTrailer;
  slot1: AreaTrailer;
  scratch: AreaTrailer | null;
  /** Where MCUboot reads the status from (swap_status_source). */
  source: StatusSource;
  /** The recorded position when a swap was interrupted; null when none is under way. */
  interrupted: (StatusPosition & { swapType: string; swapSize_bytes: number; inconsistent: boolean }) | null;
  /** What the swap table says the next boot does when nothing is being resumed. */
  pending: string;
  summary: string;
}

function areaTrailer(flash: BootFlash, name: 'slot0' | 'slot1' | 'scratch', strategy: Strategy): AreaTrailer {
  const cfg = trailerConfigOf(flash.board, strategy);
  const area = flash.area(name);
  const st = readSwapState(area, cfg);
  return { ...st, swapTypeName: swapTypeName(st.swapType), swapSize_bytes: readSwapSize(area, cfg) };
}

export function inspectSwap(flash: BootFlash, strategy: Strategy): SwapInspection {
  const cfg = trailerConfigOf(flash.board, strategy);
  const slot0 = areaTrailer(flash, 'slot0', strategy);
  const slot1 = areaTrailer(flash, 'slot1', strategy);
  const hasScratch = strategy === 'swap-scratch' && flash.board.partitions.scratch !== undefined;
  const scratch = hasScratch ? areaTrailer(flash, 'scratch', strategy) : null;
  let source: StatusSource = 'none';
  if (strategy === 'swap-move') source = statusSourceMove(slot0, slot1);
  else if (scratch) source = statusSourceScratch(slot0, scratch);
  let interrupted: SwapInspection['interrupted'] = null;
  if (source !== 'none') {
    const area = flash.area(source === 'scratch' ? 'scratch' : 'slot0');
    const writeSize = Math.max(flash.area('slot0').writeSize, scratch ? flash.area('scratch').writeSize : 0);
    const { position, inconsistent } = decodeStatusEntries(area, source === 'scratch', cfg, writeSize);
    if (position) {
      interrupted = {
        ...position,
        swapType: swapTypeName(readStatusSwapType(area, cfg)),
        swapSize_bytes: readSwapSize(area, cfg),
        inconsistent,
      };
    }
  }
  const pending = swapTypeName(swapTypeFromStates(slot0, slot1));
  let summary: string;
  if (interrupted) {
    const phase = strategy === 'swap-move' ? `${interrupted.op} phase, ` : '';
    summary = `${interrupted.swapType} swap interrupted: ${phase}idx ${interrupted.idx} state ${interrupted.state} (status in ${source}, swap size ${interrupted.swapSize_bytes} bytes); the next boot resumes it`;
  } else if (source !== 'none') {
    const area = flash.area(source === 'scratch' ? 'scratch' : 'slot0');
    summary = `${swapTypeName(readStatusSwapType(area, cfg))} swap starting: trailer initialised in ${source}, no status entry yet; the next boot starts it over`;
  } else if (strategy === 'overwrite-only') {
    summary = `no swap status in overwrite-only; next boot: ${pending}`;
  } else {
    summary = `no swap under way; next boot: ${pending}`;
  }
  return { strategy, slot0, slot1, scratch, source, interrupted, pending, summary };
}
