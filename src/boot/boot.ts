/**
 * The bootloader: MCUboot's context_boot_go for one image (loader.c). Reads both trailers,
 * completes a swap a power cut interrupted, otherwise decides the swap type from the swap table,
 * validates the secondary (erasing it if invalid), performs the upgrade or revert with the chosen
 * strategy, and finally checks the primary. Every flash op is the one MCUboot makes, in its order,
 * so a cut at op K of ours is a cut at op K of MCUboot's.
 */
import { InputError } from '../errors.js';
import type { ImageHeader } from '../image/header.js';
import type { ParsedImage } from '../image/parse.js';
import { parseImage } from '../image/parse.js';
import { DEFAULT_BEHAVIOUR } from '../image/vendor.js';
import type { FirmwareBehaviour } from '../image/vendor.js';
import { scrambleSlot } from './area.js';
import type { BootArea, Strategy } from './area.js';
import { BootPanic, hasImageMagic, resetStatus, statusIsReset } from './context.js';
import type { BootContext, BootDefect, BootStatus, RawHeader, Validator } from './context.js';
import { appMaxSizeOverwrite, copyImage } from './overwrite-only.js';
import { swapTypeFromStates, trailerConfigOf } from './public.js';
import type { BootFlash } from './public.js';
import { scrambleTrailerSectors } from './swap-misc.js';
import { appMaxSizeMove, checkMoveLayout, readImageHeaderMove, slotsCompatibleMove, swapRunMove } from './swap-move.js';
import {
  appMaxSizeScratch,
  findStatusAreaScratch,
  readImageHeaderScratch,
  requireScratch,
  slotsCompatibleScratch,
  swapRunScratch,
} from './swap-scratch.js';
import {
  SwapType,
  decodeStatusEntries,
  readStatusSwapType,
  readSwapSize,
  readSwapState,
  statusSourceMove,
  statusSourceScratch,
  swapTypeName,
  writeCopyDone,
  writeImageOk,
} from './trailer.js';
import type { SwapTypeName } from './trailer.js';
import { headerLooksValid, isNonBootable, validateImage } from './validate.js';
import type { TrustedKey, ValidationVerdict } from './validate.js';

export interface BootOptions {
  strategy: Strategy;
  /** Public keys MCUboot is built with; an image must carry a valid signature by one of them. */
  trustedKeys: readonly TrustedKey[];
  /** MCUBOOT_VALIDATE_PRIMARY_SLOT; default: the board's mcuboot.validatePrimary. */
  validatePrimary?: boolean;
  /** Hardware security counter now (MCUBOOT_HW_ROLLBACK_PROT); default board.nvCounter; null = none. */
  nvCounter?: number | null;
  /** MCUBOOT_DOWNGRADE_PREVENTION (version compare, overwrite-only only); default true for overwrite-only. */
  downgradePrevention?: boolean;
  defects?: readonly BootDefect[];
  /** Replace image validation (tests, memoizing sweeps); default validateImage. */
  validator?: Validator;
  /**
   * Validate a slot from its flash area instead of its bytes (sweeps: remember verdicts by the
   * area's contents without reading the slot). Same contract as `validator`; takes precedence.
   */
  areaValidator?: AreaValidator;
}

/** Image validation given the slot's area (it reads what it needs); see BootOptions.areaValidator. */
export type AreaValidator = (area: BootArea, trustedKeys: readonly TrustedKey[], maxImageSize_bytes: number, nvCounter: number | null) => ValidationVerdict;

const areaValidators = new WeakMap<BootContext, AreaValidator>();

interface OutcomeBase {
  strategy: Strategy;
  /** The swap type MCUboot acted on at this boot ('none' when it only booted). */
  action: SwapTypeName | `0x${string}`;
  /** A swap interrupted by a power cut was completed. */
  resumed: boolean;
  /** False for overwrite-only: the old image is overwritten, a failed test image cannot be reverted. */
  canRevert: boolean;
  /** Hardware security counter after this boot (null: the board has none). */
  nvCounter: number | null;
  notes: string[];
}

export type BootResult =
  | (OutcomeBase & {
      kind: 'booted';
      slot: 'slot0';
      header: ImageHeader;
      /** The booted image, parsed (null if its TLVs do not parse and the primary is not validated). */
      image: ParsedImage | null;
      behaviour: FirmwareBehaviour;
    })
  | (OutcomeBase & { kind: 'no-bootable-image'; reason: string; panic: boolean });

interface StrategyImpl {
  slotsCompatible(ctx: BootContext): boolean;
  readImageHeader(ctx: BootContext, slot: 0 | 1, bs: BootStatus | null): { header: RawHeader; ok: boolean };
  maxImageSize(ctx: BootContext): number;
}

const IMPLS: Record<'swap-move' | 'swap-scratch' | 'overwrite-only', StrategyImpl> = {
  'swap-move': { slotsCompatible: slotsCompatibleMove, readImageHeader: readImageHeaderMove, maxImageSize: appMaxSizeMove },
  'swap-scratch': { slotsCompatible: (c) => slotsCompatibleScratch(c, true), readImageHeader: readImageHeaderScratch, maxImageSize: appMaxSizeScratch },
  'overwrite-only': { slotsCompatible: (c) => slotsCompatibleScratch(c, false), readImageHeader: readImageHeaderScratch, maxImageSize: appMaxSizeOverwrite },
};

function implOf(ctx: BootContext): StrategyImpl {
  if (ctx.strategy === 'swap-offset') throw new InputError('UNSUPPORTED_STRATEGY', 'swap-offset is not modelled yet; use swap-move, swap-scratch or overwrite-only');
  return IMPLS[ctx.strategy];
}

/** Build the boot state for a flash: areas, BOOT_WRITE_SZ, and a check that the map suits the strategy. */
export function makeContext(flash: BootFlash, opts: BootOptions): BootContext {
  const board = flash.board;
  const strategy = opts.strategy;
  if (strategy === 'swap-offset') throw new InputError('UNSUPPORTED_STRATEGY', 'swap-offset is not modelled yet; use swap-move, swap-scratch or overwrite-only');
  const cfg = trailerConfigOf(board, strategy);
  const primary = flash.area('slot0');
  const secondary = flash.area('slot1');
  let scratch: BootArea | null = null;
  if (strategy === 'swap-scratch') {
    if (!board.partitions.scratch) {
      throw new InputError('NO_SCRATCH', `swap-scratch needs a "scratch" partition; board ${board.name} has none (use swap-move or overwrite-only)`);
    }
    scratch = flash.area('scratch');
  }
  const writeSize = Math.max(primary.writeSize, scratch?.writeSize ?? 0);
  const ctx: BootContext = {
    strategy,
    cfg,
    primary,
    secondary,
    scratch,
    writeSize,
    defects: new Set(opts.defects ?? []),
    validatePrimary: opts.validatePrimary ?? board.mcuboot.validatePrimary,
    downgradePrevention: opts.downgradePrevention ?? strategy === 'overwrite-only',
    trustedKeys: opts.trustedKeys,
    validator: opts.validator ?? validateImage,
    nvCounter: opts.nvCounter !== undefined ? opts.nvCounter : board.nvCounter ?? null,
    headers: [null, null],
    swapType: SwapType.NONE,
    notes: [],
  };
  if (strategy === 'swap-move') checkMoveLayout(ctx);
  if (opts.areaValidator) areaValidators.set(ctx, opts.areaValidator);
  return ctx;
}

/** boot_read_image_headers. */
function readHeaders(ctx: BootContext, requireAll: boolean, bs: BootStatus | null): boolean {
  const impl = implOf(ctx);
  for (const slot of [0, 1] as const) {
    const { header, ok } = impl.readImageHeader(ctx, slot, bs);
    ctx.headers[slot] = header;
    if (!ok) return slot > 0 && !requireAll;
  }
  return true;
}

function currentSwapType(ctx: BootContext): number {
  return swapTypeFromStates(readSwapState(ctx.primary, ctx.cfg), readSwapState(ctx.secondary, ctx.cfg), ctx.defects.has('revert-requires-secondary-unset'));
}

function compareVersionsNoBuild(a: ImageHeader['version'], b: ImageHeader['version']): number {
  return a.major - b.major || a.minor - b.minor || a.revision - b.revision;
}

/** boot_validate_slot: true if the slot holds a valid bootable image; an invalid secondary is erased. */
function validateSlot(ctx: BootContext, slot: 0 | 1, bs: BootStatus | null): boolean {
  const area = slot === 0 ? ctx.primary : ctx.secondary;
  const hdr = ctx.headers[slot];
  const swapStrategy = ctx.strategy !== 'overwrite-only';
  if (!hdr || hdr.magicErased || isNonBootable(hdr)) {
    if (slot === 1 && swapStrategy) {
      // A trailer left behind an erased image could block later uploads: remove it.
      scrambleTrailerSectors(ctx, area);
      if (ctx.strategy === 'swap-move' && ((bs && bs.swapType === SwapType.REVERT) || currentSwapType(ctx) === SwapType.REVERT)) {
        scrambleTrailerSectors(ctx, ctx.primary);
        ctx.notes.push('cleared the primary trailer of a stuck revert');
      }
    }
    ctx.notes.push(`${area.name}: no bootable image (${!hdr || hdr.magicErased ? 'header erased' : 'NON_BOOTABLE'})`);
    return false;
  }
  if (ctx.strategy === 'overwrite-only' && ctx.downgradePrevention && slot === 1) {
    const pri = ctx.headers[0];
    if (pri && !pri.magicErased && compareVersionsNoBuild(hdr.version, pri.version) < 0) {
      ctx.notes.push(`${area.name}: version lower than the primary's: erased (downgrade prevention)`);
      scrambleSlot(area);
      return false;
    }
  }
  let reason: string | null = null;
  if (!headerLooksValid(hdr, area.size)) {
    reason = 'header invalid';
  } else {
    const byArea = areaValidators.get(ctx);
    const max = implOf(ctx).maxImageSize(ctx);
    const verdict = byArea ? byArea(area, ctx.trustedKeys, max, ctx.nvCounter) : ctx.validator(area.read(0, area.size), ctx.trustedKeys, max, ctx.nvCounter);
    if (!verdict.ok) reason = verdict.reason;
  }
  if (reason !== null) {
    ctx.notes.push(`${area.name}: image not valid (${reason})${slot === 1 ? ': erased' : ''}`);
    if (slot === 1) scrambleSlot(area);
    return false;
  }
  return true;
}

/** swap_read_status: where an interrupted swap's status is and what it says. */
function readStatus(ctx: BootContext, bs: BootStatus): void {
  const pri = readSwapState(ctx.primary, ctx.cfg);
  if (ctx.strategy === 'swap-move') {
    bs.source = statusSourceMove(pri, readSwapState(ctx.secondary, ctx.cfg));
  } else {
    bs.source = statusSourceScratch(pri, readSwapState(requireScratch(ctx), ctx.cfg));
  }
  if (bs.source === 'none') return;
  const area = bs.source === 'scratch' ? requireScratch(ctx) : ctx.primary;
  const { position, inconsistent } = decodeStatusEntries(area, bs.source === 'scratch', ctx.cfg, ctx.writeSize);
  if (inconsistent) {
    ctx.notes.push('detected inconsistent swap status');
    // Without primary validation MCUboot asserts here: it cannot know the primary is sound.
    if (!ctx.validatePrimary) throw new BootPanic('inconsistent swap status and MCUBOOT_VALIDATE_PRIMARY_SLOT off');
  }
  if (position) {
    bs.op = position.op;
    bs.idx = position.idx;
    bs.state = position.state;
  }
  bs.swapType = readStatusSwapType(area, ctx.cfg);
}

/** boot_read_image_size: header + payload + both TLV areas, read from flash. */
function readImageSize(ctx: BootContext, slot: 0 | 1): number {
  const area = slot === 0 ? ctx.primary : ctx.secondary;
  const hdr = ctx.headers[slot];
  if (!hdr) throw new BootPanic(`no header read for slot ${slot}`);
  const off = hdr.headerSize_bytes + hdr.imageSize_bytes;
  const info = (at: number): { magic: number; total: number } => {
    if (at + 4 > area.size) throw new BootPanic(`${area.name}: TLV info at ${at} is outside the slot`);
    const b = area.read(at, 4);
    return { magic: b[0]! | (b[1]! << 8), total: b[2]! | (b[3]! << 8) };
  };
  let it = info(off);
  const prot = hdr.protectedTlvSize_bytes;
  if (it.magic === 0x6908) {
    if (prot !== it.total) throw new BootPanic(`${area.name}: protected TLV size disagrees with the header`);
    it = info(off + it.total);
  } else if (prot !== 0) {
    throw new BootPanic(`${area.name}: header announces protected TLVs that are not there`);
  }
  if (it.magic !== 0x6907) throw new BootPanic(`${area.name}: no TLV area where the header says`);
  return off + prot + it.total;
}

/** boot_swap_image: size the swap (new) or read it back (resume), then run the strategy. */
function swapImage(ctx: BootContext, bs: BootStatus): void {
  let copySize = 0;
  if (statusIsReset(bs, ctx.strategy)) {
    if (hasImageMagic(ctx.headers[0])) copySize = readImageSize(ctx, 0);
    let size = 0;
    if (hasImageMagic(ctx.headers[1])) size = readImageSize(ctx, 1);
    if (size > copySize) copySize = size;
    bs.swapSize_bytes = copySize;
  } else {
    const area = ctx.strategy === 'swap-scratch' ? findStatusAreaScratch(ctx) : ctx.primary;
    bs.swapSize_bytes = readSwapSize(area, ctx.cfg);
    copySize = bs.swapSize_bytes;
  }
  if (ctx.strategy === 'swap-move') swapRunMove(ctx, bs, copySize);
  else swapRunScratch(ctx, bs, copySize);
}

function setImageOk(ctx: BootContext): void {
  if (readSwapState(ctx.primary, ctx.cfg).imageOk === 'unset') writeImageOk(ctx.primary, ctx.cfg);
}

function setCopyDone(ctx: BootContext): void {
  // The copy-done-early defect wrote it already; MCUboot itself writes it exactly once, here.
  if (ctx.defects.has('copy-done-early') && readSwapState(ctx.primary, ctx.cfg).copyDone === 'set') return;
  writeCopyDone(ctx.primary, ctx.cfg);
}

function isUpgrade(t: number): boolean {
  return t === SwapType.TEST || t === SwapType.PERM || t === SwapType.REVERT;
}

/** boot_perform_update. */
function performUpdate(ctx: BootContext, bs: BootStatus): void {
  if (ctx.strategy === 'overwrite-only') {
    copyImage(ctx);
    return;
  }
  swapImage(ctx, bs);
  const t = ctx.swapType;
  if (t === SwapType.REVERT || t === SwapType.PERM) setImageOk(ctx);
  if (isUpgrade(t)) setCopyDone(ctx);
}

/** boot_prepare_image_for_update; returns true if an interrupted swap was completed. */
function prepare(ctx: BootContext, bs: BootStatus): boolean {
  if (!readHeaders(ctx, false, null)) {
    ctx.notes.push('could not read the image headers');
    ctx.swapType = SwapType.NONE;
    return false;
  }
  if (!implOf(ctx).slotsCompatible(ctx)) {
    ctx.swapType = SwapType.NONE;
    return false;
  }
  Object.assign(bs, resetStatus());
  if (ctx.strategy !== 'overwrite-only') {
    readStatus(ctx, bs);
    if (!readHeaders(ctx, !statusIsReset(bs, ctx.strategy), bs)) {
      ctx.notes.push('image headers not where the swap status says: no upgrade');
      ctx.swapType = SwapType.NONE;
      return false;
    }
  }
  if (!statusIsReset(bs, ctx.strategy)) {
    ctx.notes.push(`resuming an interrupted ${swapTypeName(bs.swapType)} swap at ${bs.op === 'move' && ctx.strategy === 'swap-move' ? 'move' : 'swap'} idx ${bs.idx} state ${bs.state} (status in ${bs.source})`);
    // boot_complete_partial_swap
    swapImage(ctx, bs);
    ctx.swapType = bs.swapType;
    if (bs.swapType === SwapType.REVERT || bs.swapType === SwapType.PERM) setImageOk(ctx);
    if (isUpgrade(bs.swapType)) setCopyDone(ctx);
    readHeaders(ctx, false, null);
    ctx.swapType = SwapType.NONE;
    return true;
  }
  if (bs.swapType === SwapType.NONE) {
    // boot_validated_swap_type
    let t = currentSwapType(ctx);
    if (isUpgrade(t) && !validateSlot(ctx, 1, bs)) t = SwapType.NONE;
    ctx.swapType = t;
  } else {
    ctx.swapType = validateSlot(ctx, 1, bs) ? bs.swapType : SwapType.FAIL;
  }
  return false;
}

/**
 * Boot the device once, as MCUboot would: complete or start an upgrade/revert, then hand over to
 * the primary slot. A PowerCut thrown by the flash propagates (the caller powers on and boots again).
 */
export function boot(flash: BootFlash, opts: BootOptions): BootResult {
  const ctx = makeContext(flash, opts);
  const canRevert = ctx.strategy !== 'overwrite-only';
  let action: number = SwapType.NONE;
  let resumed = false;
  const base = (): OutcomeBase => ({ strategy: ctx.strategy, action: swapTypeName(action), resumed, canRevert, nvCounter: ctx.nvCounter, notes: ctx.notes });
  try {
    const bs = resetStatus();
    if (ctx.primary.sectors.length <= ctx.cfg.maxSectors) {
      resumed = prepare(ctx, bs);
      if (resumed) action = bs.swapType;
    } else {
      ctx.notes.push(`slot0 has more sectors than mcuboot.maxSectors ${ctx.cfg.maxSectors}: no upgrade`);
    }
    if (ctx.swapType === SwapType.REVERT && ctx.defects.has('revert-skipped')) {
      ctx.notes.push('defect revert-skipped: the revert is not done');
      ctx.swapType = SwapType.NONE;
    }
    bs.swapType = ctx.swapType;
    switch (ctx.swapType) {
      case SwapType.NONE:
        break;
      case SwapType.TEST:
      case SwapType.PERM:
      case SwapType.REVERT:
        action = ctx.swapType;
        if (ctx.strategy === 'overwrite-only' && ctx.swapType === SwapType.TEST) {
          ctx.notes.push('overwrite-only cannot revert: the test image is installed for good');
        }
        performUpdate(ctx, bs);
        break;
      case SwapType.FAIL:
        action = SwapType.FAIL;
        if (ctx.strategy !== 'overwrite-only') setImageOk(ctx);
        break;
      default:
        throw new BootPanic(`swap type ${ctx.swapType}`);
    }
    if (ctx.swapType !== SwapType.NONE && !readHeaders(ctx, false, null)) {
      return { ...base(), kind: 'no-bootable-image', reason: 'could not read the image headers after the update', panic: false };
    }
    const hdr = ctx.headers[0];
    if (ctx.validatePrimary) {
      if (!validateSlot(ctx, 0, null)) return { ...base(), kind: 'no-bootable-image', reason: 'the primary slot holds no valid image', panic: false };
    } else if (!hasImageMagic(hdr)) {
      return { ...base(), kind: 'no-bootable-image', reason: 'bad image magic in the primary slot', panic: false };
    }
    if (!hdr) throw new BootPanic('primary header missing');
    let image: ParsedImage | null = null;
    try {
      image = parseImage(ctx.primary.read(0, ctx.primary.size));
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      ctx.notes.push(`slot0: image TLVs do not parse (${e.message})`);
    }
    // boot_update_hw_rollback_protection: only a confirmed (or trailer-less) image raises the counter.
    if (ctx.nvCounter !== null && image?.securityCounter != null) {
      const st = readSwapState(ctx.primary, ctx.cfg);
      if ((st.magic !== 'good' || st.imageOk === 'set') && image.securityCounter > ctx.nvCounter) ctx.nvCounter = image.securityCounter;
    }
    const { magicErased: _erased, ...header } = hdr;
    return { ...base(), kind: 'booted', slot: 'slot0', header, image, behaviour: image?.behaviour ?? { ...DEFAULT_BEHAVIOUR } };
  } catch (e) {
    if (e instanceof BootPanic) {
      ctx.notes.push(`panic: ${e.message}`);
      return { ...base(), kind: 'no-bootable-image', reason: `MCUboot would hang: ${e.message}`, panic: true };
    }
    throw e;
  }
}
