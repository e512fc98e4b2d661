/** File reading and writing for commands: failures become one-line typed errors naming the file. */
import { readFileSync, writeFileSync } from 'node:fs';
import { EnvironmentError, InputError } from '../errors.js';

export function readInput(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : String(code ?? err);
    throw new InputError('FILE_NOT_READABLE', `${path}: cannot read ${what} (${why})`);
  }
}

export function writeOutput(path: string, data: Uint8Array | string, mode?: number): void {
  try {
    writeFileSync(path, data, mode === undefined ? undefined : { mode });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EnvironmentError('FILE_NOT_WRITABLE', `${path}: cannot write (${String(code ?? err)})`);
  }
}
