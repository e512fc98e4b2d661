/**
 * What `flash inspect` shows: partitions, the image in each slot (version, verdict), each trailer's
 * fields, where an interrupted swap stands (decoded as MCUboot would), and the swap type the next
 * boot would choose. Pure: reads the flash, changes nothing.
 */
import { OtaSimError } from '../errors.js';
import { decodeOtaState } from '../device/ota-state.js';
import { stateToJson } from '../device/ota-state-record.js';
import type { Flash } from '../flash/flash.js';
import type { PartitionName, Strategy } from '../flash/types.js';
import { ImageError, parseImage, verifyImage } from '../image/index.js';
import type { TrustStore } from '../image/index.js';
import { swapTypeFromStates, trailerConfigOf } from '../boot/public.js';
import { inspectSwap } from '../boot/inspect.js';
import { readSwapSize, readSwapState, swapTypeName } from '../boot/trailer.js';
import type { SwapState, TrailerConfig } from '../boot/trailer.js';

export interface SlotDescription {
  name: PartitionName;
  device: string;
  offset: number;
  size: number;
  image: {
    version: string;
    valid: boolean;
    /** false when no --trust key was given: `valid` then covers the hash only. */
    signatureChecked: boolean;
    reason: string | null;
    size: number;
  } | null;
  /** Why no image could be read, when the slot is not erased but holds no parsable image. */
  imageProblem: string | null;
  trailer: {
    magic: string;
    imageOk: string;
    copyDone: string;
    swapType: string;
    swapSize: number | null;
  } | null;
  erased: boolean;
}

export interface FlashDescription {
  board: string;
  strategy: Strategy;
  devices: { id: string; size: number; writeSize: number; eraseValue: number; sectors: string }[];
  opIndex: number;
  elapsedUs: number;
  partitions: { name: PartitionName; device: string; offset: number; size: number }[];
  slots: SlotDescription[];
  nextBootSwapType: string;
  /** MCUboot's reading of where a swap stands (null for overwrite-only, which keeps no status). */
  swap: { source: string; interrupted: { op: string; idx: number; state: number; swapType: string } | null; summary: string } | null;
  /** The agent's durable records (src/device/ota-state): the latest state and every record found. */
  otaState: {
    usedBytes: number;
    records: number;
    latestSeq: number | null;
    state: unknown;
    garbageBytes: number;
    problem: string | null;
  } | null;
  storage: { usedBytes: number } | null;
}

const SLOT_AREAS: PartitionName[] = ['slot0', 'slot1', 'scratch'];

export function describeFlash(flash: Flash, options: { strategy?: Strategy | undefined; trust: TrustStore | null }): FlashDescription {
  const cfg = trailerConfigOf(flash.board, options.strategy);
  const parts = Object.entries(flash.board.partitions) as [PartitionName, { device: string; offset: number; size: number }][];
  const states = new Map<PartitionName, SwapState>();
  const slots: SlotDescription[] = [];
  for (const name of SLOT_AREAS) {
    if (!flash.hasPartition(name)) continue;
    const area = flash.area(name);
    const bytes = area.read(0, area.size);
    const erased = bytes.every((b) => b === area.eraseValue);
    const state = trailerFits(area.size, cfg) ? readSwapState(area, cfg) : null;
    if (state) states.set(name, state);
    let image: SlotDescription['image'] = null;
    let imageProblem: string | null = null;
    if (name !== 'scratch' && !erased) {
      try {
        const parsed = parseImage(bytes);
        const result = options.trust
          ? verifyImage(bytes, options.trust)
          : verifyImage(bytes, [], { requireSignature: false });
        image = {
          version: parsed.version,
          valid: result.valid,
          signatureChecked: options.trust !== null,
          reason: result.valid ? null : result.message,
          size: parsed.totalSize_bytes,
        };
      } catch (err) {
        if (!(err instanceof ImageError)) throw err;
        imageProblem = err.message;
      }
    }
    slots.push({
      name,
      device: area.deviceId,
      offset: area.offset,
      size: area.size,
      image,
      imageProblem,
      erased,
      trailer: state
        ? {
            magic: state.magic,
            imageOk: state.imageOk,
            copyDone: state.copyDone,
            swapType: String(swapTypeName(state.swapType)),
            swapSize: state.magic === 'good' ? readSwapSize(area, cfg) : null,
          }
        : null,
    });
  }
  const primary = states.get('slot0');
  const secondary = states.get('slot1');
  const next = primary && secondary ? String(swapTypeName(swapTypeFromStates(primary, secondary))) : 'unknown';
  const swap = cfg.strategy === 'swap-move' || cfg.strategy === 'swap-scratch' ? inspectSwap(flash, cfg.strategy) : null;
  return {
    board: flash.board.name,
    strategy: cfg.strategy,
    devices: flash.board.flash.map((d) => ({
      id: d.id,
      size: flash.deviceSize(d.id),
      writeSize: d.writeSize,
      eraseValue: d.eraseValue,
      sectors: d.sectors.map((s) => `${s.count}×${formatSize(s.size)}`).join(' + '),
    })),
    opIndex: flash.opIndex,
    elapsedUs: flash.elapsedUs,
    partitions: parts.map(([name, p]) => ({ name, device: p.device, offset: p.offset, size: p.size })),
    slots,
    nextBootSwapType: next,
    swap: swap
      ? {
          source: swap.source,
          interrupted: swap.interrupted ? { op: swap.interrupted.op, idx: swap.interrupted.idx, state: swap.interrupted.state, swapType: swap.interrupted.swapType } : null,
          summary: swap.summary,
        }
      : null,
    otaState: otaStateOf(flash),
    storage: usedBytes(flash, 'storage'),
  };
}

function otaStateOf(flash: Flash): FlashDescription['otaState'] {
  const used = usedBytes(flash, 'ota-state');
  if (!used) return null;
  try {
    const decoded = decodeOtaState(flash.area('ota-state'));
    const records = decoded.banks.reduce((n, b) => n + b.records.filter((r) => r.state).length, 0);
    const garbageBytes = decoded.banks.reduce((n, b) => n + b.garbage.reduce((m, g) => m + g.length_bytes, 0), 0);
    const state = JSON.parse(stateToJson(decoded.state)) as unknown;
    return { usedBytes: used.usedBytes, records, latestSeq: decoded.latest?.seq ?? null, state, garbageBytes, problem: null };
  } catch (err) {
    if (!(err instanceof OtaSimError)) throw err;
    return { usedBytes: used.usedBytes, records: 0, latestSeq: null, state: null, garbageBytes: 0, problem: err.message };
  }
}

function trailerFits(size: number, cfg: TrailerConfig): boolean {
  return size >= cfg.maxAlign * 4 + 16;
}

function usedBytes(flash: Flash, name: PartitionName): { usedBytes: number } | null {
  if (!flash.hasPartition(name)) return null;
  const area = flash.area(name);
  const bytes = area.read(0, area.size);
  let used = 0;
  for (const b of bytes) if (b !== area.eraseValue) used++;
  return { usedBytes: used };
}

function formatSize(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

const hex = (n: number): string => `0x${n.toString(16).padStart(6, '0')}`;

/** `brief`: slots, swap progress and next swap type only (no devices, partitions or data areas). */
export function formatFlashDescription(file: string, d: FlashDescription, options: { brief?: boolean } = {}): string {
  const lines: string[] = [];
  lines.push(`${file}: board ${d.board}, trailers read as ${d.strategy}; ${d.opIndex} flash ops so far, ${(d.elapsedUs / 1e6).toFixed(3)} s of flash time`);
  if (!options.brief) for (const dev of d.devices) {
    lines.push(`  device ${dev.id}: ${formatSize(dev.size)} (${dev.sectors}), write size ${dev.writeSize}, erased 0x${dev.eraseValue.toString(16).padStart(2, '0')}`);
  }
  if (!options.brief) lines.push('partitions:');
  if (!options.brief) for (const p of d.partitions) lines.push(`  ${p.name.padEnd(10)} ${p.device.padEnd(9)} ${hex(p.offset)}  ${formatSize(p.size).padStart(9)}`);
  for (const s of d.slots) {
    // The scratch area matters to swap-scratch alone (other strategies never touch it).
    if (s.name === 'scratch' && d.strategy !== 'swap-scratch') continue;
    lines.push(`${s.name}:`);
    if (s.image) {
      const verdict = s.image.valid ? (s.image.signatureChecked ? 'valid (hash and signature)' : 'hash ok, signature not checked (no --trust)') : `INVALID: ${s.image.reason}`;
      lines.push(`  image    ${s.image.version}, ${s.image.size} bytes, ${verdict}`);
    } else if (s.name !== 'scratch') {
      const why = s.imageProblem ?? 'not an image';
      lines.push(`  image    ${s.erased ? 'none (erased)' : d.swap?.interrupted ? `parts of both images while the swap is in progress (${why})` : `none readable (${why})`}`);
    } else {
      lines.push(`  ${s.erased ? 'erased' : 'holds data'}`);
    }
    if (s.trailer) {
      const t = s.trailer;
      lines.push(`  trailer  magic ${t.magic}, image_ok ${t.imageOk}, copy_done ${t.copyDone}, swap_info ${t.swapType}${t.swapSize !== null && t.swapSize !== 0xffffffff ? `, swap_size ${t.swapSize}` : ''}`);
    }
  }
  if (d.swap) lines.push(`swap: ${d.swap.summary}`);
  if (d.swap?.interrupted) lines.push(`next boot: resumes the interrupted ${d.swap.interrupted.swapType} swap (MCUboot's swap table alone reads ${d.nextBootSwapType})`);
  else lines.push(`next boot: swap type ${d.nextBootSwapType}`);
  if (options.brief) return lines.join('\n');
  if (d.otaState) {
    const o = d.otaState;
    if (o.problem) lines.push(`ota-state: ${o.problem}`);
    else if (o.records === 0) lines.push(`ota-state: ${o.usedBytes === 0 ? 'erased (no OTA records yet)' : `no valid record (${o.usedBytes} bytes programmed)`}`);
    else {
      lines.push(`ota-state: ${o.records} record(s), latest #${o.latestSeq}${o.garbageBytes > 0 ? `, ${o.garbageBytes} bytes of torn or foreign data skipped` : ''}`);
      lines.push(`  ${JSON.stringify(o.state)}`);
    }
  }
  if (d.storage) lines.push(`storage: ${d.storage.usedBytes === 0 ? 'erased' : `${d.storage.usedBytes} bytes programmed`}`);
  return lines.join('\n');
}
