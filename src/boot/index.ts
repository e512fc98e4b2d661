/** The bootloader model's public surface. */
export { boot, makeContext } from './boot.js';
export type { BootOptions, BootResult } from './boot.js';
export { BOOT_DEFECTS } from './context.js';
export type { BootDefect } from './context.js';
export { bootIsImgConfirmed, bootSetConfirmed, bootSetNext, bootSetPending, swapType, swapTypeFromStates, trailerConfigOf } from './public.js';
export type { BootFlash, SetNextResult } from './public.js';
export { inspectSwap } from './inspect.js';
export type { AreaTrailer, SwapInspection } from './inspect.js';
export * from './trailer.js';
export { validateImage } from './validate.js';
export type { TrustedKey, ValidationVerdict } from './validate.js';
