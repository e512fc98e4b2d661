/**
 * ota-sim's public API: everything users import comes from here (`import { ... } from 'ota-sim'`).
 * The CLI is a thin layer over these functions.
 */
export * from './errors.js';
export { Prng, mixSeed } from './prng.js';
export * from './flash/index.js';
export * from './image/index.js';
export { boot, bootIsImgConfirmed, bootSetConfirmed, bootSetPending, swapType, inspectSwap, BOOT_DEFECTS } from './boot/index.js';
export type { BootOptions, BootResult, BootDefect, SwapInspection } from './boot/index.js';
export { programSlot } from './boot/program.js';
export type { SlotMark, SlotName } from './boot/program.js';
export { sweep, replayCase, sweepMatrix } from './boot/sweep.js';
export type { SweepOptions, SweepReport, SweepViolation, SweepPhase, MatrixOptions, MatrixResult } from './boot/sweep.js';
export { ScaledClock, ManualClock } from './clock.js';
export type { Clock, TimerHandle } from './clock.js';
export * from './dtls/index.js';
export * from './server/index.js';
export * from './device/index.js';
export * from './agent/index.js';
export * from './net/proxy/index.js';
export * from './report/index.js';
export * from './scenario/index.js';
export * from './fleet/index.js';
export * from './dashboard/index.js';
