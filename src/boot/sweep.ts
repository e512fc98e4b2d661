/**
 * Power-cut sweep of the bootloader: record one clean boot's flash ops, then for every op index k
 * rebuild the flash at k (a journal cursor advanced op by op, cloned copy-on-write), cut power
 * before op k (and, with `torn`, inside op k at every write block and with seeded partial-erase
 * patterns), boot again to completion and check MCUboot's simulator assertions: the device boots,
 * the primary holds the new image byte for byte, the secondary holds the old one (swap
 * strategies), the primary trailer ends as the clean run left it.
 */
import { OtaSimError } from '../errors.js';
import { mixSeed } from '../prng.js';
import { PowerCut } from '../flash/errors.js';
import type { Flash } from '../flash/flash.js';
import type { PartitionName } from '../flash/types.js';
import { parseImage } from '../image/parse.js';
import type { BootArea, Strategy } from './area.js';
import { boot } from './boot.js';
import type { BootResult } from './boot.js';
import type { BootDefect } from './context.js';
import type { BootFlash } from './public.js';
import { readSwapState } from './trailer.js';
import type { TrailerConfig } from './trailer.js';
import { trailerConfigOf } from './public.js';
import type { TrustedKey } from './validate.js';

export interface SweepOptions {
  strategy: Strategy;
  trustedKeys: readonly TrustedKey[];
  /** Label for reports and the replay command ('swap' upgrade or 'revert'). */
  phase: 'swap' | 'revert';
  torn?: boolean;
  /** Seeded partial-erase patterns per erase op with `torn` (default 3). */
  erasePatterns?: number;
  defects?: readonly BootDefect[];
  seed?: number;
  validatePrimary?: boolean;
  /** Only cut at op indices in [fromOp, toOp) of the clean run (default: all). */
  fromOp?: number;
  toOp?: number;
}

export interface SweepViolation {
  /** Op index of the cut (0-based, "before op k"), or null for the clean run itself. */
  opIndex: number | null;
  cut: string;
  invariant: string;
  detail: string;
  replay: string;
}

export interface SweepReport {
  cases: number;
  ops: number;
  violations: SweepViolation[];
}

interface RecordedOp {
  kind: 'write' | 'erase';
  area: PartitionName;
  off: number;
  length: number;
  data: Uint8Array | null;
  blocks: number;
}

/** A BootFlash whose areas log each op the bootloader issues (to replay op k torn). */
function recording(flash: Flash, log: RecordedOp[]): BootFlash {
  const cache = new Map<PartitionName, BootArea>();
  return {
    board: flash.board,
    area(name: PartitionName): BootArea {
      const hit = cache.get(name);
      if (hit) return hit;
      const a = flash.area(name);
      const wrapped: BootArea = {
        name: a.name,
        size: a.size,
        writeSize: a.writeSize,
        eraseValue: a.eraseValue,
        sectors: a.sectors,
        read: (off, length) => a.read(off, length),
        write: (off, data) => {
          log.push({ kind: 'write', area: name, off, length: data.length, data: data.slice(), blocks: data.length / a.writeSize });
          a.write(off, data);
        },
        erase: (off, length) => {
          log.push({ kind: 'erase', area: name, off, length, data: null, blocks: 1 });
          a.erase(off, length);
        },
      };
      cache.set(name, wrapped);
      return wrapped;
    },
  };
}

function imageLength(bytes: Uint8Array): number {
  return parseImage(bytes).totalSize_bytes;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Run the sweep from `initial` (a flash whose next boot performs the upgrade or revert). */
export function sweepBoot(initial: Flash, opts: SweepOptions): SweepReport {
  const seed = opts.seed ?? 1;
  const bootOpts = { strategy: opts.strategy, trustedKeys: opts.trustedKeys, defects: opts.defects ?? [], ...(opts.validatePrimary !== undefined ? { validatePrimary: opts.validatePrimary } : {}) };
  const cfg: TrailerConfig = trailerConfigOf(initial.board, opts.strategy);
  const slot0 = initial.area('slot0');
  const slot1 = initial.area('slot1');
  const newImage = slot1.read(0, imageLength(slot1.read(0, slot1.size)));
  const oldImage = slot0.read(0, imageLength(slot0.read(0, slot0.size)));
  const swapping = opts.strategy !== 'overwrite-only';
  const violations: SweepViolation[] = [];
  const defectArgs = (opts.defects ?? []).map((d) => ` --defect ${d}`).join('');
  const replay = (cut: string): string =>
    `ota-sim sweep --board ${initial.board.name} --strategy ${opts.strategy} --phase ${opts.phase}${defectArgs} ${cut}`;

  // The clean run: its journal is the sweep's map, its end state the expectation.
  const reference = initial.clone({ journal: true });
  reference.startJournal();
  const log: RecordedOp[] = [];
  const clean = boot(recording(reference, log), bootOpts);
  const want = readSwapState(reference.area('slot0'), cfg);
  const check = (flash: Flash, r: BootResult, opIndex: number | null, cut: string, replayArgs: string): void => {
    const fail = (invariant: string, detail: string): void => {
      violations.push({ opIndex, cut, invariant, detail, replay: replay(replayArgs) });
    };
    if (r.kind !== 'booted') return fail('never bricked', `no bootable image: ${r.reason}`);
    if (!equalBytes(flash.area('slot0').read(0, newImage.length), newImage)) return fail('primary holds the new image', 'slot0 differs from the image that was in slot1');
    if (swapping && !equalBytes(flash.area('slot1').read(0, oldImage.length), oldImage)) return fail('secondary holds the old image', 'slot1 differs from the image that was in slot0');
    const st = readSwapState(flash.area('slot0'), cfg);
    if (st.magic !== want.magic || st.imageOk !== want.imageOk || st.copyDone !== want.copyDone) {
      return fail('trailer as after a clean boot', `slot0 trailer magic/image_ok/copy_done ${st.magic}/${st.imageOk}/${st.copyDone}, clean run ${want.magic}/${want.imageOk}/${want.copyDone}`);
    }
  };
  check(reference, clean, null, 'none', '');
  // A flash error the model raises (refused write) ends that boot: report it, do not abort the sweep.
  const safeBoot = (flash: Flash): BootResult => {
    try {
      return boot(flash, bootOpts);
    } catch (e) {
      if (!(e instanceof OtaSimError)) throw e;
      return { strategy: opts.strategy, action: 'panic', resumed: false, canRevert: swapping, nvCounter: null, notes: [], kind: 'no-bootable-image', reason: `${e.code}: ${e.message}`, panic: true };
    }
  };
  let cases = 1;
  const total = reference.journalLength;
  const cursor = reference.cursor();
  const fromOp = Math.max(0, opts.fromOp ?? 0);
  const toOp = Math.min(total, opts.toOp ?? total);
  cursor.advance(Math.min(fromOp, total));
  for (let k = fromOp; k < toOp; k++) {
    const before = cursor.flash.clone({ journal: false });
    check(before, safeBoot(before), k, `before op ${k}`, `--cut ${k}`);
    cases++;
    if (opts.torn) {
      const op = log[k];
      if (!op) throw new Error(`assertion failed: op ${k} recorded`);
      const variants = op.kind === 'write' ? op.blocks : (opts.erasePatterns ?? 3);
      for (let v = 0; v < variants; v++) {
        // Non-strict: real NOR re-programs a torn block (1->0 only), and MCUboot rewrites such blocks.
        const f = cursor.flash.clone({ journal: false, strict: false });
        const cutSeed = mixSeed(seed, k, v);
        f.armPowerCut(op.kind === 'write' ? { atOp: f.opIndex, kind: 'inside', seed: cutSeed, block: v } : { atOp: f.opIndex, kind: 'inside', seed: cutSeed });
        try {
          if (op.kind === 'write' && op.data) f.area(op.area).write(op.off, op.data);
          else f.area(op.area).erase(op.off, op.length);
          throw new Error(`assertion failed: power cut inside op ${k} fired`);
        } catch (e) {
          if (!(e instanceof PowerCut)) throw e;
        }
        f.powerOn();
        const what = op.kind === 'write' ? `inside op ${k} (write block ${v})` : `inside op ${k} (erase pattern ${v})`;
        check(f, safeBoot(f), k, what, `--cut ${k} --torn --block ${v} --seed ${seed}`);
        cases++;
      }
    }
    cursor.advance(1);
  }
  return { cases, ops: total, violations };
}
