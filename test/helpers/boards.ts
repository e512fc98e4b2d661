/** Small hand-made board profiles for unit tests that must not depend on the shipped boards. */
import type { BoardProfile, EraseValue, FlashDeviceSpec, SectorRun } from '../../src/flash/types.js';

export function testBoard(options: {
  sectors?: SectorRun[];
  writeSize?: FlashDeviceSpec['writeSize'];
  eraseValue?: EraseValue;
  endurance?: number;
  second?: boolean;
} = {}): BoardProfile {
  const sectors = options.sectors ?? [{ size: 4096, count: 16, eraseMs: 85 }];
  const size = sectors.reduce((n, r) => n + r.size * r.count, 0);
  const flash: FlashDeviceSpec[] = [
    {
      id: 'internal',
      sectors,
      writeSize: options.writeSize ?? 4,
      eraseValue: options.eraseValue ?? 0xff,
      writeUsPerBlock: 41,
      enduranceCycles: options.endurance ?? 10_000,
    },
  ];
  if (options.second) {
    flash.push({ id: 'spi', sectors: [{ size: 4096, count: 8, eraseMs: 40 }], writeSize: 1, eraseValue: 0xff, writeUsPerBlock: 2, enduranceCycles: 100_000 });
  }
  return {
    name: 'test-board',
    description: 'unit test board',
    source: 'test',
    flash,
    partitions: {
      slot0: { device: 'internal', offset: 0, size: size / 2 },
      slot1: { device: 'internal', offset: size / 2, size: size / 2 },
    },
    mcuboot: { maxSectors: 128, maxAlign: 8, validatePrimary: false, strategies: ['overwrite-only'] },
  };
}
