/**
 * Checkpoints of the bootloader, for sweeps. The strategies call `checkpoint` at the top of each
 * swap step (a place where everything the rest of the boot depends on is in the flash, in the
 * boot status `bs`, in `ctx`, and in the step's own loop variables `a`, `b`). Outside a sweep no
 * hook is installed and a checkpoint costs one comparison; it never changes what the boot does.
 * A sweep's hook may throw (see sweep-converge.ts) to stop a boot whose rest it already knows.
 */
import type { BootContext, BootStatus } from './context.js';

export type CheckpointHook = (ctx: BootContext, bs: BootStatus | null, where: string, a: number, b: number) => void;

let active: CheckpointHook | null = null;

/** Install (or with null remove) the hook; returns the previous one. */
export function setCheckpointHook(hook: CheckpointHook | null): CheckpointHook | null {
  const previous = active;
  active = hook;
  return previous;
}

export function checkpoint(ctx: BootContext, bs: BootStatus | null, where: string, a: number, b: number): void {
  if (active !== null) active(ctx, bs, where, a, b);
}
