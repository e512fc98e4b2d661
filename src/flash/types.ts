/**
 * Types of the flash model and of board profiles. Board profiles are data (sim-flash/boards/*.json),
 * validated by board.ts; the flash model (flash.ts) and the bootloader only see these types.
 */

export type EraseValue = 0xff | 0x00;

/** A run of equal sectors; a chip's map is a list of runs (STM32F4: 4×16K, 1×64K, 7×128K). */
export interface SectorRun {
  size: number; // bytes
  count: number;
  eraseMs: number; // typical erase time of one such sector, from the datasheet
}

/** One flash chip: internal flash or an external SPI/QSPI NOR. */
export interface FlashDeviceSpec {
  id: string; // e.g. "internal", "spi"
  sectors: SectorRun[];
  writeSize: 1 | 2 | 4 | 8 | 16 | 32; // program granularity and alignment, bytes
  eraseValue: EraseValue;
  writeUsPerBlock: number; // time to program one write block, µs
  enduranceCycles: number; // erase cycles per sector before it wears out
}

export type PartitionName = 'mcuboot' | 'slot0' | 'slot1' | 'scratch' | 'ota-state' | 'storage';

export interface Partition {
  device: string; // FlashDeviceSpec.id
  offset: number; // bytes from the chip's start
  size: number; // bytes
}

export type Strategy = 'overwrite-only' | 'swap-scratch' | 'swap-move' | 'swap-offset';
/** Every strategy a board profile can name (the bootloader model runs the first three). */
export const ALL_STRATEGIES: readonly Strategy[] = ['overwrite-only', 'swap-scratch', 'swap-move', 'swap-offset'];

export interface McubootSettings {
  maxSectors: number; // BOOT_MAX_IMG_SECTORS
  maxAlign: number; // BOOT_MAX_ALIGN: 8..32
  validatePrimary: boolean; // MCUBOOT_VALIDATE_PRIMARY_SLOT
  strategies: Strategy[]; // what the partition map supports
  /**
   * MCUBOOT_LOGICAL_SECTOR_SIZE: when set, the bootloader sees slot0, slot1 and scratch as runs of
   * sectors of this size (grouping smaller erase pages), not the chip's own sectors. MCUboot's
   * simulator needs it for `small-pages` (512-byte pages) and models `k64f-big` with it.
   */
  logicalSectorSize?: number;
}

export interface BoardProfile {
  name: string;
  description: string;
  source: string; // where geometry and timings come from
  flash: FlashDeviceSpec[];
  partitions: Partial<Record<PartitionName, Partition>> & { slot0: Partition; slot1: Partition };
  mcuboot: McubootSettings;
  nvCounter?: number; // hardware security counter (downgrade prevention)
}
