/**
 * The OTA state store: round trip, compaction, wear, garbage, and the power-cut property — on
 * every shipped board's ota-state geometry with both erase values (and a one-sector partition),
 * a cut before and inside every flash op of random update sequences: after power-on the store
 * opens with the last committed state or the one before the interrupted update, and keeps working.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PAYLOAD_BYTES, OtaStateStore, decodeOtaState, encodePayload, otaStatesEqual, stateToJson, withAttempt, EMPTY_OTA_STATE } from '../../src/device/ota-state.js';
import type { OtaState } from '../../src/device/ota-state.js';
import { boardsDir, listBoards, loadBoard, parseBoard } from '../../src/flash/board.js';
import { Flash, PowerCut } from '../../src/flash/index.js';
import type { BoardProfile, EraseValue } from '../../src/flash/index.js';
import { OpKind } from '../../src/flash/journal.js';
import { mixSeed } from '../../src/prng.js';

type Patch = Partial<OtaState>;

const version = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 32 });
const bytesOf = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
const patchArb: fc.Arbitrary<Patch> = fc.record(
  {
    download: fc.option(
      fc.record({
        targetVersion: version,
        sha256: bytesOf(32),
        etag: fc.option(fc.uint8Array({ maxLength: 8 })),
        nextBlock: fc.nat({ max: 100_000 }),
        blockSize_bytes: fc.constantFrom(16, 64, 256, 1024),
        size_bytes: fc.nat({ max: 0xffffffff }),
        manifestSeq: fc.nat({ max: 0xffffffff }),
      }),
    ),
    attempts: fc.uniqueArray(fc.record({ version, attempts: fc.nat({ max: 0xffff }) }), { maxLength: 8, selector: (a) => a.version }),
    highestSeq: fc.option(fc.nat({ max: 0xffffffff })),
    lastUpdate: fc.option(
      fc.record({
        targetVersion: version,
        fromVersion: version,
        result: fc.constantFrom('pending-test' as const, 'confirmed' as const, 'failed' as const, 'reverted' as const, 'testing' as const),
        reason: fc.nat({ max: 11 }),
        reported: fc.boolean(),
      }),
    ),
  },
  { requiredKeys: [] },
);

const apply = (s: OtaState, p: Patch): OtaState => ({ ...s, ...p });

function oneSectorBoard(eraseValue: EraseValue, writeSize: 1 | 4): BoardProfile {
  const json = JSON.parse(readFileSync(join(boardsDir(), 'nrf52840.json'), 'utf8')) as { partitions: Record<string, { size: string | number }> };
  json.partitions['ota-state']!.size = 0x1000;
  return parseBoard(json, 'nrf52840 with a one-sector ota-state', { eraseValue, writeSize });
}

interface Geometry {
  label: string;
  board: BoardProfile;
  oneSector: boolean;
}

const geometries: Geometry[] = [];
for (const name of listBoards()) {
  for (const ev of [0xff, 0x00] as const) {
    const board = loadBoard(name, { eraseValue: ev });
    if (!board.partitions['ota-state']) continue;
    geometries.push({ label: `${name} erase 0x${ev.toString(16)}`, board, oneSector: false });
  }
}
for (const ev of [0xff, 0x00] as const) for (const ws of [1, 4] as const) geometries.push({ label: `one sector ws ${ws} erase 0x${ev.toString(16)}`, board: oneSectorBoard(ev, ws), oneSector: true });

/**
 * Run `patches` on a fresh flash, then cut power before and inside every op they made (rebuilding
 * the flash from the journal), power on, open, check the state, finish the sequence and reopen.
 */
function checkEveryCut(board: BoardProfile, oneSector: boolean, patches: readonly Patch[], seed: number): number {
  const flash = Flash.create(board);
  const states: OtaState[] = [OtaStateStore.open(flash.area('ota-state')).state];
  const firstOp: number[] = [];
  const erasesIn: boolean[] = [];
  {
    const store = OtaStateStore.open(flash.area('ota-state'));
    for (const p of patches) {
      firstOp.push(flash.opIndex);
      const before = store.stats.eraseOps;
      states.push(store.update(p));
      erasesIn.push(store.stats.eraseOps > before);
    }
  }
  const totalOps = flash.opIndex;
  firstOp.push(totalOps);
  let cases = 0;
  for (let k = 0; k < totalOps; k++) {
    let i = 0; // the update that op k belongs to
    while (firstOp[i + 1]! <= k) i++;
    for (const kind of ['before', 'inside'] as const) {
      const cursor = flash.cursor();
      cursor.advance(k);
      const entry = cursor.peek()!;
      const cut = cursor.flash.clone({ journal: false });
      const deviceId = board.flash[entry.chip]!.id;
      cut.armPowerCut(kind === 'before' ? { atOp: cut.opIndex, kind } : { atOp: cut.opIndex, kind, seed: mixSeed(seed, k) });
      expect(() => (entry.kind === OpKind.Write ? cut.write(deviceId, entry.addr, entry.data!) : cut.erase(deviceId, entry.addr, entry.length))).toThrow(PowerCut);
      cut.powerOn();
      const store = OtaStateStore.open(cut.area('ota-state'));
      const got = store.state;
      const allowed = [states[i]!, states[i + 1]!];
      const ok = allowed.some((s) => otaStatesEqual(s, got)) || (oneSector && erasesIn[i]! && otaStatesEqual(got, EMPTY_OTA_STATE));
      if (!ok) throw new Error(`${board.name}: cut ${kind} op ${k} (update ${i}): opened ${stateToJson(got)}`);
      // The store keeps working: finish the sequence (the interrupted update again), with a power-on in the middle.
      let expected = got;
      const rest = patches.slice(i);
      const half = Math.floor(rest.length / 2);
      let s2 = store;
      rest.forEach((p, j) => {
        if (j === half) s2 = OtaStateStore.open(cut.area('ota-state'));
        expected = apply(expected, p);
        s2.update(p);
      });
      expect(stateToJson(OtaStateStore.open(cut.area('ota-state')).state)).toBe(stateToJson(expected));
      cases++;
    }
  }
  return cases;
}

describe('OtaStateStore', () => {
  it('round-trips states and lists every record for inspection', () => {
    const flash = Flash.create(loadBoard('nrf52840'));
    const store = OtaStateStore.open(flash.area('ota-state'));
    expect(store.state).toEqual(EMPTY_OTA_STATE);
    let s = store.update({ highestSeq: 7 });
    s = store.update(withAttempt(s, '1.2.0'));
    s = store.update({
      download: { targetVersion: '1.2.0', sha256: new Uint8Array(32).fill(0xab), etag: Uint8Array.of(1, 2, 3), nextBlock: 42, blockSize_bytes: 1024, size_bytes: 262144, manifestSeq: 7 },
    });
    s = store.update({ lastUpdate: { targetVersion: '1.2.0', fromVersion: '1.1.0', result: 'reverted', reason: 8, reported: false } });
    const again = OtaStateStore.open(flash.area('ota-state'));
    expect(stateToJson(again.state)).toBe(stateToJson(s));
    expect(again.seq).toBe(4);
    expect(again.state.attempts).toEqual([{ version: '1.2.0', attempts: 1 }]);
    const decoded = decodeOtaState(flash.area('ota-state'));
    expect(decoded.banks.map((b) => b.records.length)).toEqual([4, 0]);
    expect(decoded.banks[0]!.records.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(decoded.latest?.seq).toBe(4);
    expect(decoded.banks[0]!.garbage).toEqual([]);
  });

  it('bounds: the largest state fits MAX_PAYLOAD_BYTES; out-of-bound fields are refused', () => {
    const v = 'v'.repeat(32);
    let s: OtaState = {
      download: { targetVersion: v, sha256: new Uint8Array(32), etag: new Uint8Array(8), nextBlock: 0xffffffff, blockSize_bytes: 1024, size_bytes: 0xffffffff, manifestSeq: 0xffffffff },
      attempts: [],
      highestSeq: 0xffffffff,
      lastUpdate: { targetVersion: v, fromVersion: v, result: 'pending-test', reason: 11, reported: true },
    };
    for (let i = 0; i < 20; i++) s = withAttempt(s, `${i}`.padStart(32, 'x'));
    expect(s.attempts.length).toBe(8);
    expect(s.attempts[0]!.version).toBe('12'.padStart(32, 'x'));
    expect(encodePayload({ ...s, attempts: s.attempts.map((a) => ({ ...a, attempts: 0xffff })) }).length).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    const store = OtaStateStore.open(Flash.create(loadBoard('nrf52840')).area('ota-state'));
    expect(() => store.update({ highestSeq: -1 })).toThrow(RangeError);
    expect(() => store.update({ lastUpdate: { targetVersion: 'x'.repeat(33), fromVersion: '1', result: 'failed', reason: 8, reported: false } })).toThrow(/targetVersion/);
    expect(store.seq).toBe(0);
  });

  it('compacts into the other bank when full; appends cost no erase; one erase op per compaction (+1 after power-on)', () => {
    for (const name of ['nrf52840', 'stm32l0', 'small-pages']) {
      const flash = Flash.create(loadBoard(name));
      const area = flash.area('ota-state');
      const eraseSum = (): number => flash.eraseCounts(area.deviceId).reduce((n, c) => n + c, 0);
      let store = OtaStateStore.open(area);
      let s = store.state;
      let lastErases = eraseSum();
      for (let i = 0; i < 300; i++) {
        const compactionsBefore = store.stats.compactions;
        s = store.update(withAttempt({ ...s, highestSeq: i }, `1.0.${i % 12}`));
        if (store.stats.compactions === compactionsBefore) expect(eraseSum()).toBe(lastErases);
        lastErases = eraseSum();
        if (i === 150) {
          const { compactions, eraseOps } = store.stats;
          expect(compactions).toBeGreaterThan(1);
          expect(eraseOps).toBe(compactions + 1);
          store = OtaStateStore.open(area);
        }
      }
      expect(store.stats.compactions).toBeGreaterThan(1);
      expect(store.stats.eraseOps).toBe(store.stats.compactions + 1);
      expect(stateToJson(OtaStateStore.open(area).state)).toBe(stateToJson(s));
      // Sector erases: one bank's used sectors per compaction, plus one sector of the precaution.
      const bankSectors = Math.ceil(area.sectors.length / 2);
      const decoded = decodeOtaState(area);
      expect(decoded.banks.filter((b) => b.records.length > 0).length).toBe(1);
      expect(eraseSum()).toBeLessThanOrEqual((store.stats.compactions + 150) * bankSectors + 2);
    }
  });

  it('opens over garbage and torn data, then keeps working', () => {
    for (const ev of [0xff, 0x00] as const) {
      const board = loadBoard('nrf52840', { eraseValue: ev });
      const flash = Flash.create(board);
      const area = flash.area('ota-state');
      const noise = new Uint8Array(area.size);
      for (let i = 0; i < noise.length; i++) noise[i] = mixSeed(ev, i) & 0xff;
      const dump = flash.dump(area.deviceId);
      dump.set(noise, area.offset);
      flash.loadContents(area.deviceId, dump);
      const store = OtaStateStore.open(area);
      expect(store.state).toEqual(EMPTY_OTA_STATE);
      expect(decodeOtaState(area).banks[0]!.garbage.length).toBeGreaterThan(0);
      const s = store.update({ highestSeq: 3 });
      store.update({ highestSeq: 4 });
      expect(OtaStateStore.open(area).state).toEqual({ ...s, highestSeq: 4 });
    }
  });

  it('refuses use after a power cut (nothing carried across it)', () => {
    const flash = Flash.create(loadBoard('nrf52840'));
    const store = OtaStateStore.open(flash.area('ota-state'));
    store.update({ highestSeq: 1 });
    flash.armPowerCut({ atOp: flash.opIndex, kind: 'inside', seed: 1 });
    expect(() => store.update({ highestSeq: 2 })).toThrow(PowerCut);
    flash.powerOn();
    expect(() => store.update({ highestSeq: 3 })).toThrow(/open it again/);
    expect([1, 2]).toContain(OtaStateStore.open(flash.area('ota-state')).state.highestSeq);
  });

  it('a power cut before or inside any op loses at most the interrupted update (every board, both erase values, one sector)', () => {
    let cases = 0;
    for (const [gi, g] of geometries.entries()) {
      fc.assert(
        fc.property(fc.array(patchArb, { minLength: 1, maxLength: 40 }), fc.nat(), (patches, seed) => {
          cases += checkEveryCut(g.board, g.oneSector, patches, seed);
        }),
        { seed: 0x07a5 + gi, numRuns: 3, endOnFailure: true },
      );
    }
    expect(cases).toBeGreaterThan(1000);
  });

  it('the cut property also holds across many compactions on small banks', () => {
    // Large records on stm32l0 (1 KiB banks, 0x00 erase) and small-pages: a compaction every few updates.
    for (const [name, ev] of [['stm32l0', 0x00], ['small-pages', 0xff], ['nrf52840', 0x00]] as const) {
      const board = loadBoard(name, { eraseValue: ev });
      const big = (i: number): Patch => ({
        attempts: Array.from({ length: 8 }, (_, j) => ({ version: `${i}.${j}`.padEnd(30, '#'), attempts: i + j })),
        highestSeq: i,
      });
      const patches = Array.from({ length: name === 'nrf52840' ? 30 : 14 }, (_, i) => big(i));
      expect(checkEveryCut(board, false, patches, 99)).toBeGreaterThan(30);
    }
  });
});
