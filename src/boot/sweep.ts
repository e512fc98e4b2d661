/**
 * Power-cut sweep of the bootloader — the public API. `sweep` builds a scenario from a small setup
 * (board, strategy, image size: see sweep-setup.ts), records the clean upgrade boot (phase `swap`)
 * and the clean revert boot after it (phase `revert`), then for every op index k of a phase
 * rebuilds the flash at k from the journal, cuts power there (before op k; with `torn` also inside
 * op k at every write block, and with seeded partial-erase patterns), boots again to completion
 * (with `multiCut`, cutting again while recovering) and checks MCUboot's simulator assertions plus
 * ota-sim's own: the device boots, slot0 holds the expected image byte for byte, slot1 the other
 * one (swap strategies), both trailers as MCUboot's simulator expects them. See sweep-engine.ts.
 */
export type { SweepPhase, SweepSetup, Scenario } from './sweep-setup.js';
export { buildScenario, maxImageSize, strategyUnsupported, sweepSigningKey } from './sweep-setup.js';
export type { MatrixOptions, MatrixResult, MatrixSkip } from './sweep-matrix.js';
export { sweepMatrix, MATRIX_STRATEGIES, MATRIX_WRITE_SIZES } from './sweep-matrix.js';
export type { SweepOptions, SweepViolation, SweepReport, ReplayOptions, ReplayResult, SweepCut } from './sweep-engine.js';
export { sweep, replayCase, replayCommand } from './sweep-engine.js';
