/** Shared set-up for the server tests: signed images, a server on 127.0.0.1:0, cleanup. */
import { createHash } from 'node:crypto';
import { signImage } from '../../src/image/index.js';
import { boardTlv } from '../../src/image/index.js';
import { UpdateServer } from '../../src/server/index.js';
import type { UpdateServerOptions } from '../../src/server/index.js';
import { decodeCbor } from '../../src/server/cbor.js';

export const DEVICES = [
  { identity: 'dev-1', key: 'secret-1', board: 'nrf52840', tags: ['beta'] },
  { identity: 'dev-2', key: 'secret-2', board: 'nrf52840', tags: [] },
  { identity: 'dev-3', key: 'secret-3', board: 'stm32f4', tags: [] },
];

/** A signed (hash-only) MCUboot image of `size` payload bytes, content depending on the version. */
export function image(version: string, size = 5000, board: string | null = null): Uint8Array {
  const payload = Buffer.alloc(size);
  for (let i = 0; i < size; i++) payload[i] = (i * 31 + version.length * 7 + version.charCodeAt(version.length - 1)) & 0xff;
  return signImage(payload, { headerSize_bytes: 0x200, padHeader: true, version, customTlvs: board ? [boardTlv(board)] : [] });
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export async function startServer(options: UpdateServerOptions = {}): Promise<UpdateServer> {
  return UpdateServer.start({ devices: DEVICES, adminPort: 0, ...options });
}

export interface Manifest {
  seq: number;
  hash: string;
  components: { package: string; version: string; hash: string; size: number; uri: string }[];
}

export function parseManifest(payload: Buffer): Manifest {
  const d = decodeCbor(payload);
  if (!d.ok || !(d.value instanceof Map)) throw new Error(`not a CBOR map: ${payload.toString('hex')}`);
  const m = d.value as Map<number, unknown>;
  const comps = (m.get(3) as Map<number, unknown>[]).map((c) => ({
    package: c.get(1) as string,
    version: c.get(2) as string,
    hash: c.get(3) as string,
    size: c.get(4) as number,
    uri: c.get(5) as string,
  }));
  return { seq: m.get(1) as number, hash: m.get(2) as string, components: comps };
}
