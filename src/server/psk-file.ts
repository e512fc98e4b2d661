/**
 * The PSK file (`--psk-file`): one device per line, `identity,key[,board[,tag;tag...]]`, keys as
 * ASCII strings (what libcoap's `-k` and the Golioth SDK take). Blank lines and `#` comments are
 * skipped. Errors name the file and line.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import type { DeviceInfo } from './types.js';

const NAME = /^[A-Za-z0-9._:@+-]{1,128}$/;

export function parsePskText(text: string, source: string): DeviceInfo[] {
  const devices: DeviceInfo[] = [];
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `${source}:${i + 1}`;
    const [identity = '', key = '', board = '', tags = '', ...extra] = line.split(',').map((f) => f.trim());
    if (extra.length > 0) throw new InputError('BAD_PSK_FILE', `${where}: expected identity,key[,board[,tag;tag]], got ${extra.length + 4} fields`);
    if (!NAME.test(identity)) throw new InputError('BAD_PSK_FILE', `${where}: identity ${JSON.stringify(identity)} must be 1..128 of A-Z a-z 0-9 . _ : @ + -`);
    if (!/^[\x21-\x7e]{1,64}$/.test(key)) throw new InputError('BAD_PSK_FILE', `${where}: key must be 1..64 printable ASCII characters`);
    if (board !== '' && !NAME.test(board)) throw new InputError('BAD_PSK_FILE', `${where}: board ${JSON.stringify(board)} is not a valid name`);
    const tagList = tags === '' ? [] : tags.split(';').map((t) => t.trim()).filter((t) => t !== '');
    for (const t of tagList) if (!NAME.test(t)) throw new InputError('BAD_PSK_FILE', `${where}: tag ${JSON.stringify(t)} is not a valid name`);
    if (seen.has(identity)) throw new InputError('BAD_PSK_FILE', `${where}: identity ${identity} appears twice`);
    seen.add(identity);
    devices.push({ identity, key, board: board === '' ? null : board, tags: tagList });
  }
  return devices;
}

export function readPskFile(path: string): DeviceInfo[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError('FILE_NOT_READABLE', `${path}: cannot read the PSK file (${e instanceof Error ? e.message : String(e)})`);
  }
  return parsePskText(text, path);
}

export { NAME as NAME_PATTERN };
