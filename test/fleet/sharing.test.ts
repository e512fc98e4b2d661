/** Content-addressed sector sharing (src/flash/sector-store.ts): N identical flashes store each sector once. */
import { describe, expect, it } from 'vitest';
import { programSlot } from '../../src/boot/program.js';
import { Flash, FlashError, SectorStore, loadBoard } from '../../src/flash/index.js';
import { signImage } from '../../src/image/index.js';
import { Prng } from '../../src/prng.js';

const board = loadBoard('nrf52840');
const image = signImage(new Prng(5).bytes(200 * 1024 - 0x400), { headerSize_bytes: 0x200, padHeader: true, slotSize_bytes: board.partitions.slot0.size, align: 4, version: '1.0.0' });

function programmed(): Flash {
  const f = Flash.create(board, { journal: false });
  programSlot(f, 'slot0', image, 'confirm', 'swap-move');
  return f;
}

function distinctBuffers(flashes: Flash[]): number {
  const set = new Set<Uint8Array>();
  for (const f of flashes) f.collectSectorBuffers(set);
  return set.size;
}

describe('content-addressed sector store', () => {
  it('N flashes programmed independently with the same 200 KiB image hold each sector once', () => {
    const N = 100;
    const store = new SectorStore();
    const flashes = Array.from({ length: N }, () => programmed());
    const perFlash = distinctBuffers([flashes[0]!]);
    expect(perFlash).toBeGreaterThanOrEqual(50); // 200 KiB of 4 KiB sectors, plus the trailer
    expect(distinctBuffers(flashes)).toBe(N * perFlash); // without the store: N copies
    for (const f of flashes) f.intern(store);
    expect(distinctBuffers(flashes)).toBe(perFlash); // with it: one
    expect(store.hits).toBe((N - 1) * perFlash);
    for (const f of flashes) expect(f.contentEquals(flashes[0]!)).toBe(true);
  });

  it('a shared sector is copied before one flash changes it, and the NOR rules still hold', () => {
    const store = new SectorStore();
    const a = programmed();
    const b = programmed();
    a.intern(store);
    b.intern(store);
    const slot0 = board.partitions.slot0;
    const before = b.read(slot0.device, slot0.offset, 4096);
    // strict mode: the shared programmed flags still refuse a write to a programmed block
    expect(() => a.write(slot0.device, slot0.offset, new Uint8Array(4))).toThrow(FlashError);
    a.erase(slot0.device, slot0.offset, 4096);
    a.write(slot0.device, slot0.offset, new Uint8Array(4096).fill(0x5a));
    expect(b.read(slot0.device, slot0.offset, 4096)).toEqual(before);
    expect(a.read(slot0.device, slot0.offset, 4)).toEqual(new Uint8Array(4).fill(0x5a));
    // interning again shares the unchanged sectors and keeps the changed one apart
    a.intern(store);
    expect(distinctBuffers([a, b])).toBe(distinctBuffers([b]) + 1);
  });
});
