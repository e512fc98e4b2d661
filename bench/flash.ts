/**
 * Flash model figures: write throughput into a 1 MiB part, journal replay rate, and the cost of
 * producing the flash at one cut point (as a sweep does), each beside a plain-memory reference
 * measured in the same process so the ratio means something on any machine.
 */
import { Flash } from '../src/flash/flash.js';
import type { BoardProfile } from '../src/flash/types.js';
import { type BenchResult, timeIt } from './harness.js';

const MIB = 1024 * 1024;

function oneMiBBoard(): BoardProfile {
  return {
    name: 'bench-1mib',
    description: '1 MiB of 4 KiB sectors, write size 4',
    source: 'bench',
    flash: [{ id: 'internal', sectors: [{ size: 4096, count: 256, eraseMs: 85 }], writeSize: 4, eraseValue: 0xff, writeUsPerBlock: 41, enduranceCycles: 10_000 }],
    partitions: { slot0: { device: 'internal', offset: 0, size: MIB / 2 }, slot1: { device: 'internal', offset: MIB / 2, size: MIB / 2 } },
    mcuboot: { maxSectors: 128, maxAlign: 8, validatePrimary: false, strategies: ['overwrite-only'] },
  };
}

export async function benchFlash(): Promise<BenchResult[]> {
  const board = oneMiBBoard();
  const results: BenchResult[] = [];
  for (const chunk of [4, 256]) {
    const data = new Uint8Array(chunk).map((_, i) => i & 0x7f);
    const reference = new Uint8Array(MIB);
    const ref = timeIt(() => {
      reference.fill(0xff);
      for (let a = 0; a < MIB; a += chunk) reference.set(data, a);
    });
    const sim = timeIt(() => {
      const flash = Flash.create(board, { journal: false });
      for (let a = 0; a < MIB; a += chunk) flash.write('internal', a, data);
    });
    results.push({
      name: `flash write, ${chunk}-byte writes into 1 MiB`,
      value: 1 / (sim.msPerRun / 1000),
      unit: 'MiB/s',
      ratio: `${(sim.msPerRun / ref.msPerRun).toFixed(1)}× the time of plain Uint8Array.set`,
    });
  }

  // A journal like a swap's: per sector an erase and 16 writes of 256 bytes, over 1 MiB.
  const flash = Flash.create(board);
  const page = new Uint8Array(256).fill(0x5a);
  for (let s = 0; s < 256; s++) {
    flash.erase('internal', s * 4096, 4096);
    for (let w = 0; w < 16; w++) flash.write('internal', s * 4096 + w * 256, page);
  }
  const ops = flash.journalLength;
  const replay = timeIt(() => {
    flash.rebuild(ops);
  });
  results.push({ name: `journal replay, full rebuild of 1 MiB (${ops} ops)`, value: ops / (replay.msPerRun / 1000), unit: 'ops/s', ratio: `${replay.msPerRun.toFixed(3)} ms per full rebuild` });

  const cursor = flash.cursor();
  const perCut = timeIt(() => {
    const c = flash.cursor();
    for (let k = 0; k < ops; k++) {
      c.flash.clone();
      c.advance();
    }
  });
  void cursor;
  results.push({ name: 'flash at one cut point (cursor advance + copy-on-write clone)', value: (perCut.msPerRun * 1000) / ops, unit: 'µs per cut point', ratio: `${(ops / (perCut.msPerRun / 1000)).toFixed(0)} cut points/s` });
  const copy = timeIt(() => new Uint8Array(MIB).set(flash.dump('internal')));
  results.push({ name: 'reference: copy of a 1 MiB dump', value: copy.msPerRun * 1000, unit: 'µs', ratio: `${((perCut.msPerRun * 1000) / ops / (copy.msPerRun * 1000)).toFixed(3)}× per cut point` });
  return results;
}
