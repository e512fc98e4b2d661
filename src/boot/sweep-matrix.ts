/**
 * The sweep over a matrix of configurations — every board × every strategy it supports × write
 * sizes × erase values, as MCUboot's simulator runs its 12 layouts × 4 alignments × 2 erase values —
 * with the combinations that cannot run listed as skipped, each with its reason.
 */
import { OtaSimError } from '../errors.js';
import { listBoards } from '../flash/board.js';
import type { Strategy } from '../flash/types.js';
import { sweepScenario } from './sweep-engine.js';
import type { SweepReport } from './sweep-engine.js';
import { buildScenario, maxImageSize, resolveBoard, strategyUnsupported } from './sweep-setup.js';
import type { SweepPhase } from './sweep-setup.js';

/** The strategies ota-sim models (swap-offset is listed by boards but not modelled yet). */
export const MATRIX_STRATEGIES: readonly Strategy[] = ['swap-move', 'swap-scratch', 'overwrite-only'];
export const MATRIX_WRITE_SIZES: readonly number[] = [1, 2, 4, 8];
export const MATRIX_ERASE_VALUES: readonly (0 | 0xff)[] = [0xff, 0x00];
/** Default image size of a matrix run: MCUboot's simulator's 200 KiB, capped at what each configuration takes. */
export const MATRIX_DEFAULT_IMAGE_SIZE = 200 * 1024;

export interface MatrixOptions {
  /** Default: every shipped board. */
  boards?: string[];
  /** Default: every strategy each board offers (of swap-move, swap-scratch, overwrite-only). */
  strategies?: Strategy[];
  writeSizes?: number[];
  eraseValues?: (0 | 0xff)[];
  phase: SweepPhase;
  torn?: boolean;
  /** Size of each signed image. Default: 200 KiB, or the largest image the configuration takes if smaller. */
  imageSize_bytes?: number;
  seed?: number;
  onCase?: (r: SweepReport) => void;
}

export interface MatrixSkip {
  board: string;
  strategy: string;
  writeSize: number;
  eraseValue: number;
  why: string;
}

export interface MatrixResult {
  reports: SweepReport[];
  skipped: MatrixSkip[];
}

/** Sweep every configuration of the matrix; one report per configuration that can run. */
export function sweepMatrix(options: MatrixOptions): MatrixResult {
  const boards = options.boards ?? listBoards();
  const writeSizes = options.writeSizes ?? [...MATRIX_WRITE_SIZES];
  const eraseValues = options.eraseValues ?? [...MATRIX_ERASE_VALUES];
  const reports: SweepReport[] = [];
  const skipped: MatrixSkip[] = [];
  for (const boardName of boards) {
    // Which strategies: those asked for, else those the board offers that ota-sim models.
    const profile = resolveBoard({ board: boardName }).board;
    const strategies = options.strategies ?? profile.mcuboot.strategies;
    for (const strategy of strategies) {
      for (const writeSize of writeSizes) {
        for (const eraseValue of eraseValues) {
          const skip = (why: string): void => {
            skipped.push({ board: boardName, strategy, writeSize, eraseValue, why });
          };
          try {
            const { board } = resolveBoard({ board: boardName, writeSize, eraseValue: eraseValue });
            const why = strategyUnsupported(board, strategy);
            if (why) {
              skip(why);
              continue;
            }
            const size = options.imageSize_bytes ?? Math.min(MATRIX_DEFAULT_IMAGE_SIZE, maxImageSize(board, strategy));
            const setup = { board: boardName, strategy, imageSize_bytes: size, writeSize, eraseValue, seed: options.seed ?? 1 };
            const scenario = buildScenario(setup);
            const report = sweepScenario({ ...setup, phase: options.phase, torn: options.torn ?? false }, scenario);
            reports.push(report);
            options.onCase?.(report);
          } catch (e) {
            if (!(e instanceof OtaSimError)) throw e;
            skip(e.message);
          }
        }
      }
    }
  }
  return { reports, skipped };
}
