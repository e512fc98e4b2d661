/**
 * Typed errors shared by every module. Each carries a stable `code` (every one is listed in docs/api.md) and
 * the process exit code the CLI uses for it: 1 a check failed, 2 bad usage or input, 3 environment.
 */

export type ExitCode = 1 | 2 | 3;

export class OtaSimError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  constructor(code: string, message: string, exitCode: ExitCode = 2) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** Bad input: a file, field or argument that is not what was expected (exit 2). */
export class InputError extends OtaSimError {
  constructor(code: string, message: string) {
    super(code, message, 2);
  }
}

/** Something the tool checked did not hold (exit 1): an image that does not verify, a violation. */
export class CheckError extends OtaSimError {
  constructor(code: string, message: string) {
    super(code, message, 1);
  }
}

/** The environment is in the way (exit 3): port in use, peer unreachable, file not writable. */
export class EnvironmentError extends OtaSimError {
  constructor(code: string, message: string) {
    super(code, message, 3);
  }
}

/** A broken invariant inside ota-sim itself: a bug, never a user error. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}
