/** The flash model's public surface. */
export { Flash, JournalCursor } from './flash.js';
export type { FlashArea, FlashOptions, PowerCutPlan } from './flash.js';
export { FlashError, PowerCut } from './errors.js';
export { SectorStore } from './sector-store.js';
export type { FlashErrorCode } from './errors.js';
export { openFlash, saveFlash, sidecarPath } from './persist.js';
export type { OpenOptions } from './persist.js';
export { loadBoard, listBoards, parseBoard } from './board.js';
export type * from './types.js';
