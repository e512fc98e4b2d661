/** Shared helpers for the image tests: fixture access and an in-process CLI runner. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseKeyPem, parseSigningKeyPem } from '../../src/image/index.js';
import type { AnyKey, KeyType, SigningKey } from '../../src/image/index.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/imgtool/', import.meta.url));

export interface Vector {
  name: string;
  key: string | null;
  input: string;
  args: string[];
}

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, name)));
}

export function fixturePath(name: string): string {
  return join(FIXTURES, name);
}

export function vectors(): Vector[] {
  return (JSON.parse(readFileSync(join(FIXTURES, 'vectors.json'), 'utf8')) as { vectors: Vector[] }).vectors;
}

export const KEY_FILES: Record<KeyType, string> = {
  ed25519: 'ed25519',
  'ecdsa-p256': 'ecdsa-p256',
  'rsa-2048': 'rsa-2048',
  'rsa-3072': 'rsa-3072',
};

export function signingKey(file: string): SigningKey {
  return parseSigningKeyPem(readFileSync(join(FIXTURES, file), 'utf8'), file);
}

export function anyKey(file: string): AnyKey {
  return parseKeyPem(readFileSync(join(FIXTURES, file), 'utf8'), file);
}

/** The public keys of all four committed test keys (as imgtool getpub wrote them). */
export function trustedPublicKeys(): AnyKey[] {
  return Object.values(KEY_FILES).map((k) => anyKey(`${k}.pub.pem`));
}

export { runCli } from '../helpers/cli.js';
export type { CliResult } from '../helpers/cli.js';
