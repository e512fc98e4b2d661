/**
 * ota-sim's vendor TLVs (FORMATS.md "Extension"): 0x00A0 firmware behaviour JSON and 0x00A1 board
 * name. Both sit in the protected area, so the signature covers what the simulated firmware does.
 */
import { z } from 'zod';
import { ImageError } from './errors.js';
import { TLV } from './format.js';
import type { TlvInput } from './tlv.js';

export type SelfTestOutcome = 'pass' | 'fail' | 'crash' | 'hang';

/** What the simulated firmware does when it runs. Absent fields mean nominal behaviour. */
export interface FirmwareBehaviour {
  selfTest: SelfTestOutcome; // default "pass"
  connect: boolean; // default true: the firmware reaches the server
  bootMs?: number; // time from reset to the application running
  crashAfterMs?: number; // crash (watchdog reset) this long after boot
}

export const DEFAULT_BEHAVIOUR: Readonly<FirmwareBehaviour> = Object.freeze({ selfTest: 'pass', connect: true });

// Strict: a misspelt key ("selftest") in a test image must fail loudly rather than run nominally.
const behaviourSchema = z
  .object({
    selfTest: z.enum(['pass', 'fail', 'crash', 'hang']).optional(),
    connect: z.boolean().optional(),
    bootMs: z.number().finite().nonnegative().optional(),
    crashAfterMs: z.number().finite().nonnegative().optional(),
  })
  .strict();

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Decode and validate the 0x00A0 TLV value. */
export function decodeBehaviour(value: Uint8Array): FirmwareBehaviour {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(value));
  } catch {
    throw new ImageError('BAD_BEHAVIOUR', 'behaviour TLV 0x00a0: not UTF-8 JSON (expected e.g. {"selfTest":"fail","bootMs":1200})');
  }
  const result = behaviourSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new ImageError(
      'BAD_BEHAVIOUR',
      `behaviour TLV 0x00a0: ${where}${issue?.message ?? 'invalid'} (fields: selfTest pass|fail|crash|hang, connect bool, bootMs ms, crashAfterMs ms)`,
    );
  }
  const b: FirmwareBehaviour = { selfTest: result.data.selfTest ?? 'pass', connect: result.data.connect ?? true };
  if (result.data.bootMs !== undefined) b.bootMs = result.data.bootMs;
  if (result.data.crashAfterMs !== undefined) b.crashAfterMs = result.data.crashAfterMs;
  return b;
}

/** Decode the 0x00A1 TLV value: a non-empty UTF-8 board name. */
export function decodeBoard(value: Uint8Array): string {
  let name: string;
  try {
    name = utf8.decode(value);
  } catch {
    throw new ImageError('BAD_BOARD', 'board TLV 0x00a1: not valid UTF-8');
  }
  if (name.length === 0) throw new ImageError('BAD_BOARD', 'board TLV 0x00a1: empty board name');
  return name;
}

/** The 0x00A0 TLV for signImage's customTlvs; validated so a bad behaviour cannot be signed. */
export function behaviourTlv(behaviour: Partial<FirmwareBehaviour>): TlvInput {
  const value = utf8Encoder.encode(JSON.stringify(behaviour));
  decodeBehaviour(value);
  return { type: TLV.BEHAVIOUR, value };
}

/** The 0x00A1 TLV for signImage's customTlvs. */
export function boardTlv(board: string): TlvInput {
  const value = utf8Encoder.encode(board);
  decodeBoard(value);
  return { type: TLV.BOARD, value };
}
