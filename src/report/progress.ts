/**
 * The progress bar shown while `ota-sim run` works: scenario name, n/total and failures so far
 * (cli-progress). Only when enabled (the CLI enables it on a TTY); disabled it prints nothing,
 * because the console table that follows already has one row per scenario and stdout stays clean
 * for --json.
 */
import cliProgress from 'cli-progress';
import { assert } from '../errors.js';

export interface Progress {
  /** A scenario started (several may run at once). */
  start(name: string): void;
  /** A scenario finished. */
  done(name: string, passed: boolean): void;
  /** Remove the bar; call once, before printing the table. */
  stop(): void;
}

export interface ProgressOptions {
  enabled: boolean;
  /** Where the bar is drawn (default stderr, so stdout stays a clean report). */
  stream?: NodeJS.WritableStream;
}

/** Names longer than this are shortened on the bar so it stays on one line. */
const MAX_NAME_CHARS = 40;

const NOOP: Progress = { start() {}, done() {}, stop() {} };

function shortName(running: readonly string[]): string {
  if (running.length === 0) return '';
  const first = running[0] ?? '';
  const clipped = [...first].length > MAX_NAME_CHARS ? [...first].slice(0, MAX_NAME_CHARS - 1).join('') + '\u2026' : first;
  return running.length > 1 ? `${clipped} +${running.length - 1}` : clipped;
}

export function createProgress(total: number, opts: ProgressOptions): Progress {
  assert(Number.isInteger(total) && total >= 0, `progress total must be a non-negative integer, got ${total}`);
  if (!opts.enabled) return NOOP;

  const bar = new cliProgress.SingleBar(
    {
      stream: opts.stream ?? process.stderr,
      format: '{bar} {value}/{total} | failed {failed} | {name}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: true,
      stopOnComplete: false,
      // the caller decided to show it; draw even when the stream is not a TTY (e.g. a pipe under `script`)
      noTTYOutput: true,
      notTTYSchedule: 1000,
    },
    cliProgress.Presets.shades_classic,
  );
  const running: string[] = [];
  let finished = 0;
  let failed = 0;
  let stopped = false;
  bar.start(total, 0, { failed: 0, name: '' });

  return {
    start(name: string): void {
      if (stopped) return;
      running.push(name);
      bar.update({ name: shortName(running) });
    },
    done(name: string, passed: boolean): void {
      if (stopped) return;
      const i = running.indexOf(name);
      if (i >= 0) running.splice(i, 1);
      finished = Math.min(total, finished + 1);
      if (!passed) failed++;
      bar.update(finished, { failed, name: shortName(running) });
    },
    stop(): void {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
