/**
 * Convergence of recovery boots: the reason a sweep case costs microseconds, not a whole boot.
 *
 * The bootloader is deterministic: from a checkpoint (sweep-hook.ts: the top of a swap step, where
 * the rest of the boot depends only on the flash, the boot status, the context and the step's loop
 * variables) two boots whose in-memory state is the same and whose flash holds the same bytes and
 * programmed flags do exactly the same thing to the end. A recovery boot resumes at the step the
 * cut interrupted, redoes it, and from the next step on it is in a state some earlier boot of the
 * sweep was already in. So each boot records (state key, frozen flash) at its checkpoints, and a
 * later boot that reaches a recorded state stops there and takes the verdict the recorded boot's
 * final state got. The flash is compared sector by sector, buffer identity first (copy-on-write
 * keeps unchanged sectors shared) and bytes where the buffers differ (Flash.sameContent), so the
 * shortcut never changes a verdict — `SweepOptions.exhaustive` runs
 * every boot to its end instead, and the tests check both give the same report.
 */
import type { Flash, FlashSnapshot } from '../flash/flash.js';
import type { BootResult } from './boot.js';
import type { BootContext, BootStatus, RawHeader } from './context.js';
import { setCheckpointHook } from './sweep-hook.js';
import type { CheckpointHook } from './sweep-hook.js';

/** A violation without the case-specific fields: what a final state and a boot result fail. */
export interface Finding {
  invariant: string;
  detail: string;
}

/**
 * Thrown by the checkpoint hook to stop a boot whose rest is known; carries the verdict's index.
 * Not an Error on purpose: nothing should catch it but ConvergenceMemo, and an Error's stack
 * capture would cost more than the rest of the case.
 */
export class Converged {
  constructor(readonly verdict: number) {}
}

function headerKey(h: RawHeader | null): string {
  if (!h) return '-';
  const v = h.version;
  return `${h.magic},${h.loadAddr},${h.headerSize_bytes},${h.protectedTlvSize_bytes},${h.imageSize_bytes},${h.flags},${v.major}.${v.minor}.${v.revision}.${v.build},${h.magicErased ? 1 : 0}`;
}

/** Everything in memory the rest of a boot depends on at a checkpoint (notes aside: they only narrate). */
export function stateKey(strict: boolean, ctx: BootContext, bs: BootStatus | null, where: string, a: number, b: number): string {
  const st = bs ? `${bs.op},${bs.idx},${bs.state},${bs.swapType},${bs.swapSize_bytes},${bs.source},${bs.useScratch ? 1 : 0}` : '-';
  return `${strict ? 'S' : 'L'}|${where}|${a}|${b}|${st}|${ctx.swapType}|${ctx.nvCounter}|${headerKey(ctx.headers[0])}|${headerKey(ctx.headers[1])}`;
}

export interface MemoOutcome {
  findings: Finding[];
  /** The boot's result, or null when it stopped at a known state (its findings are that state's). */
  result: BootResult | null;
  converged: boolean;
}

export interface MemoStats {
  /** Boots stopped early at a known state. */
  converged: number;
  /** Boots run to their end. */
  full: number;
  /** Checkpoints passed. */
  checkpoints: number;
  /** Recorded states now held. */
  states: number;
}

export class ConvergenceMemo {
  private states = new Map<string, { snap: FlashSnapshot; verdict: number }[]>();
  private stored = 0;
  /** Per verdict, its findings (the boot results themselves are not kept: they hold whole slot reads). */
  private readonly verdicts: Finding[][] = [];
  readonly stats: MemoStats = { converged: 0, full: 0, checkpoints: 0, states: 0 };

  /** `maxStates`: recorded states held before the memo starts over (bounds memory on huge sweeps). */
  constructor(
    private readonly maxStates = 100_000,
    private readonly perKey = 4,
  ) {}

  /**
   * Run `boot` on `f` (no cut armed: the boot runs to its end) with the checkpoint hook installed;
   * `check` judges the final state of a boot that ran to its end.
   */
  run(f: Flash, boot: () => BootResult, check: (r: BootResult) => Finding[]): MemoOutcome {
    const pending: { key: string; snap: FlashSnapshot }[] = [];
    const hook: CheckpointHook = (ctx, bs, where, a, b) => {
      this.stats.checkpoints++;
      const key = stateKey(f.strict, ctx, bs, where, a, b);
      const list = this.states.get(key);
      if (list) {
        for (const e of list) if (f.sameContent(e.snap)) throw new Converged(e.verdict);
      }
      pending.push({ key, snap: f.freeze() });
    };
    const previous = setCheckpointHook(hook);
    let verdict: number;
    let converged = false;
    let result: BootResult | null = null;
    try {
      result = boot();
      verdict = this.verdicts.length;
      this.verdicts.push(check(result));
      this.stats.full++;
    } catch (e) {
      if (!(e instanceof Converged)) throw e;
      verdict = e.verdict;
      converged = true;
      this.stats.converged++;
    } finally {
      setCheckpointHook(previous);
    }
    // A converged boot's first checkpoint is where its cut left it (seen once, not worth keeping).
    for (let i = converged ? 1 : 0; i < pending.length; i++) this.record(pending[i]!.key, pending[i]!.snap, verdict);
    return { findings: this.verdicts[verdict]!, result, converged };
  }

  private record(key: string, snap: FlashSnapshot, verdict: number): void {
    if (this.stored >= this.maxStates) {
      this.states = new Map();
      this.stored = 0;
    }
    const list = this.states.get(key);
    if (list) {
      // The first states recorded under a key are the ones later boots join (a sweep runs its cut
      // points in order); beyond a few, a state is one torn case's own and only costs memory.
      if (list.length >= this.perKey) return;
      list.push({ snap, verdict });
    } else {
      this.states.set(key, [{ snap, verdict }]);
    }
    this.stored++;
    this.stats.states = this.stored;
  }
}
