/**
 * Output helpers every command uses: `--json` prints one JSON document on stdout instead of text.
 */

export interface GlobalArgs {
  json?: boolean;
}

/** Print the human text, or the JSON document when --json was given. */
export function emit(argv: GlobalArgs, human: string | (() => string), json: unknown): void {
  if (argv.json) {
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  } else {
    const text = typeof human === 'function' ? human() : human;
    if (text.length > 0) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }
}

/** Parse a number given in decimal or 0x-hex, as imgtool accepts them. */
export function parseIntArg(name: string, value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string') {
    const text = value.trim();
    const n = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text, 16) : /^[0-9]+$/.test(text) ? parseInt(text, 10) : NaN;
    if (Number.isSafeInteger(n)) return n;
  }
  throw new UsageNumberError(name, value);
}

import { InputError } from '../errors.js';

class UsageNumberError extends InputError {
  constructor(name: string, value: unknown) {
    super('BAD_ARGUMENT', `${name}: expected a number (decimal or 0x hex), got ${JSON.stringify(value)}`);
  }
}
