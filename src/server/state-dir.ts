/**
 * `--state-dir` persistence. Layout:
 *   DIR/journal.ndjson      append-only, one JSON object per line ({"op": ..., ...}, see JournalEntry)
 *   DIR/artifacts/<sha256>  artifact bytes, one file per distinct content
 * An artifact file is written to a temporary name, fsynced, renamed and the directory fsynced
 * before its journal line is appended. Journal appends are group-committed: lines queued while a
 * write is in flight go out together and one fdatasync covers them; a caller's promise resolves
 * only after the fdatasync that covers its line, and the server acknowledges only then. A crash
 * mid-write can leave a torn last line: it was never acknowledged, so opening drops it (and
 * truncates the file back to the last complete line) rather than refusing to start.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync, existsSync, ftruncateSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { EnvironmentError, InputError } from '../errors.js';
import type { ArtifactInfo, DeviceInfo, ReleaseInfo, ReportRecord } from './types.js';

export type JournalEntry =
  | { op: 'artifact'; artifact: ArtifactInfo }
  | { op: 'release'; release: ReleaseInfo }
  | { op: 'device'; device: DeviceInfo }
  | { op: 'report'; identity: string; record: ReportRecord };

const JOURNAL = 'journal.ndjson';

function isEntry(v: unknown): v is JournalEntry {
  if (typeof v !== 'object' || v === null) return false;
  const op = (v as { op?: unknown }).op;
  return op === 'artifact' || op === 'release' || op === 'device' || op === 'report';
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface OpenedStateDir {
  stateDir: StateDir;
  entries: JournalEntry[];
  /** A torn last line was dropped (a crash mid-write). */
  droppedTornLine: boolean;
}

export class StateDir {
  private pending: { line: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  private flushing = false;
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly fh: FileHandle,
  ) {}

  /** Create the directory if needed, read the journal back, and open it for appending. */
  static async open(dir: string): Promise<OpenedStateDir> {
    try {
      mkdirSync(join(dir, 'artifacts'), { recursive: true });
    } catch (e) {
      throw new EnvironmentError('STATE_DIR', `${dir}: cannot create the state directory (${e instanceof Error ? e.message : String(e)})`);
    }
    const path = join(dir, JOURNAL);
    const entries: JournalEntry[] = [];
    let droppedTornLine = false;
    if (existsSync(path)) {
      const text = readFileSync(path, 'utf8');
      let goodEnd = 0;
      const lines = text.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i] ?? '';
        if (i === lines.length - 1) {
          // Text after the last newline is an append that did not finish: never acknowledged.
          if (line !== '') droppedTornLine = true;
          break;
        }
        if (line.trim() !== '') {
          let parsed: unknown;
          try {
            parsed = JSON.parse(line);
          } catch {
            parsed = undefined;
          }
          if (!isEntry(parsed)) throw new InputError('BAD_STATE_DIR', `${path}:${i + 1}: not a journal entry; the state directory is damaged`);
          entries.push(parsed);
        }
        goodEnd += Buffer.byteLength(line) + 1;
      }
      if (goodEnd !== Buffer.byteLength(text)) {
        const fd = openSync(path, 'r+');
        try {
          ftruncateSync(fd, goodEnd);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
    }
    let fh: FileHandle;
    try {
      fh = await open(path, 'a');
      fsyncDir(dir);
    } catch (e) {
      throw new EnvironmentError('STATE_DIR', `${path}: cannot open the journal (${e instanceof Error ? e.message : String(e)})`);
    }
    return { stateDir: new StateDir(dir, fh), entries, droppedTornLine };
  }

  artifactPath(sha256: string): string {
    return join(this.dir, 'artifacts', sha256);
  }

  /** Write artifact bytes durably (no-op when the content is already there). */
  writeArtifact(sha256: string, bytes: Uint8Array): void {
    const path = this.artifactPath(sha256);
    if (existsSync(path) && statSync(path).size === bytes.length) return;
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeFileSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    fsyncDir(join(this.dir, 'artifacts'));
  }

  readArtifact(sha256: string): Buffer {
    try {
      return readFileSync(this.artifactPath(sha256));
    } catch (e) {
      throw new InputError('BAD_STATE_DIR', `${this.artifactPath(sha256)}: artifact file missing (${e instanceof Error ? e.message : String(e)})`);
    }
  }

  /** Append one entry; resolves once it is on disk (fdatasync). */
  append(entry: JournalEntry): Promise<void> {
    if (this.closed) return Promise.reject(new EnvironmentError('STATE_DIR', `${this.dir}: the journal is closed`));
    const line = JSON.stringify(entry) + '\n';
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ line, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        await this.fh.write(batch.map((p) => p.line).join(''));
        await this.fh.datasync();
        for (const p of batch) p.resolve();
      } catch (e) {
        const err = new EnvironmentError('STATE_DIR', `${this.dir}: journal write failed (${e instanceof Error ? e.message : String(e)})`);
        for (const p of batch) p.reject(err);
      }
    }
    this.flushing = false;
  }

  /** Wait for queued appends, then close the journal. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.flushing || this.pending.length > 0) await new Promise((r) => setImmediate(r));
    this.closed = true;
    await this.fh.close();
  }
}
