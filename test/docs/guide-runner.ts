/**
 * Runs the fenced blocks of one guide, in order, in one temporary folder that looks like a user's
 * project (node_modules/ota-sim → the project root, node_modules/.bin/ota-sim → bin/ota-sim.js):
 * ```sh/```bash with bash (set -euo pipefail), ```ts transpiled to .mjs and run with node, ```yaml
 * scenarios and fault fragments validated with the scenario loader, CI and Kubernetes YAML parsed
 * and their ota-sim commands run. Every block runs in its own process group; whatever a block left
 * in the background is killed when the guide ends.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parse as parseYaml } from 'yaml';
import { loadScenario } from '../../src/scenario/load.js';
import type { Block } from './blocks.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A documented stand-in: `from` in a guide's commands is run as `to`, for the reason given. */
export interface Substitution {
  guide: string;
  from: string;
  to: string;
  reason: string;
}

export interface GuideOptions {
  /** Values for `${{ matrix.X }}` and the like in GitHub Actions YAML, and env vars for CI/K8s scripts. */
  ciExpressions: Record<string, string>;
  ciEnv: Record<string, string>;
  substitutions: readonly Substitution[];
  /** Wall-clock bound for one block. */
  blockTimeout_ms: number;
  /** A scenario that fault fragments are inserted into (its `faults` replaced). */
  baseScenario: Record<string, unknown>;
}

/** CI lines that set up the runner (installing, checking out) rather than run ota-sim: not run here. */
const SETUP_LINE = /^\s*(sudo\s+)?(apt-get|apt|npm\s+ci|npm\s+install|npm\s+i)\b/;
const MAX_OUTPUT_CHARS = 6000;
const KILL_GRACE_MS = 2000;

export interface BlockOutcome {
  block: Block;
  what: string;
}

function tail(text: string): string {
  return text.length > MAX_OUTPUT_CHARS ? `…${text.slice(-MAX_OUTPUT_CHARS)}` : text;
}

export class GuideRun {
  readonly dir: string;
  private readonly logDir: string;
  private readonly groups: number[] = [];
  private readonly used = new Set<Substitution>();
  readonly ran: BlockOutcome[] = [];
  private seq = 0;

  constructor(readonly guide: string, private readonly opts: GuideOptions) {
    this.dir = mkdtempSync(join(tmpdir(), `ota-sim-guide-${guide.replace(/\W+/g, '-')}-`));
    this.logDir = mkdtempSync(join(tmpdir(), `ota-sim-guide-logs-`));
    mkdirSync(join(this.dir, 'node_modules', '.bin'), { recursive: true });
    symlinkSync(ROOT.replace(/\/$/, ''), join(this.dir, 'node_modules', 'ota-sim'), 'dir');
    symlinkSync(join(ROOT, 'bin', 'ota-sim.js'), join(this.dir, 'node_modules', '.bin', 'ota-sim'));
    writeFileSync(join(this.dir, 'package.json'), JSON.stringify({ name: 'guide-project', private: true, type: 'module', devDependencies: { 'ota-sim': '*' } }, null, 2) + '\n');
  }

  private where(block: Block): string {
    return `${block.file}:${block.line}`;
  }

  /** Applies this guide's substitutions, remembering which were used. */
  substitute(text: string): string {
    let out = text;
    for (const s of this.opts.substitutions) {
      if (s.guide !== this.guide || !out.includes(s.from)) continue;
      out = out.split(s.from).join(s.to);
      this.used.add(s);
    }
    return out;
  }

  unusedSubstitutions(): Substitution[] {
    return this.opts.substitutions.filter((s) => s.guide === this.guide && !this.used.has(s));
  }

  private env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      ...process.env,
      PATH: `${join(this.dir, 'node_modules', '.bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      npm_config_update_notifier: 'false',
      npm_config_offline: 'true',
      NO_COLOR: '1',
      ...extra,
    };
  }

  /** Runs a process in its own group with output to a file; resolves with exit code and output. */
  private async exec(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; signal: string | null; output: string; timedOut: boolean }> {
    const log = join(this.logDir, `block-${++this.seq}.log`);
    const fd = openSync(log, 'w');
    // Output goes to a file, not a pipe: a server a block leaves in the background would hold a
    // pipe open, and 'close' would never come.
    const child = spawn(cmd, args, { cwd: this.dir, env, detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    if (child.pid !== undefined) this.groups.push(child.pid);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    }, this.opts.blockTimeout_ms);
    const [code, signal] = await new Promise<[number | null, string | null]>((res) => {
      child.once('error', () => res([null, 'spawn-error']));
      child.once('exit', (c, s) => res([c, s]));
    });
    clearTimeout(timer);
    return { code, signal, output: readFileSync(log, 'utf8'), timedOut };
  }

  /** bash with set -euo pipefail; on failure the message names the guide line that failed. */
  async shell(block: Block, script: string, extraEnv: Record<string, string> = {}, what = 'sh'): Promise<void> {
    // One prefix line, so $LINENO - 1 is the line inside the block.
    const prefix = `set -Eeuo pipefail; trap 'echo "doc-test: failed at block line $((LINENO - 1))" >&2' ERR\n`;
    const r = await this.exec('bash', ['-c', prefix + script], this.env(extraEnv));
    if (r.code !== 0 || r.timedOut) {
      const m = /doc-test: failed at block line (\d+)/.exec(r.output);
      // A sh block maps to guide lines; a CI script was assembled from YAML, so name its own line.
      const at = m === null ? this.where(block) : what === 'sh' ? `${block.file}:${block.line + Number(m[1]) - 1}` : `${this.where(block)} (${what}, script line ${m[1]})`;
      throw new Error(
        `${at}: ${what} block ${r.timedOut ? `timed out after ${this.opts.blockTimeout_ms} ms` : `failed (exit ${r.code ?? r.signal})`}\n--- block (as run) ---\n${script}--- output ---\n${tail(r.output)}`,
      );
    }
    this.ran.push({ block, what });
  }

  async typescript(block: Block): Promise<void> {
    const out = ts.transpileModule(block.text, {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, sourceMap: false },
      fileName: `block-${block.line}.ts`,
      reportDiagnostics: true,
    });
    const errs = (out.diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    if (errs.length > 0) throw new Error(`${this.where(block)}: ts block does not transpile: ${errs.join('; ')}`);
    const file = join(this.dir, `doc-block-${block.line}.mjs`);
    writeFileSync(file, out.outputText);
    const r = await this.exec(process.execPath, [file], this.env());
    if (r.code !== 0 || r.timedOut) {
      throw new Error(`${this.where(block)}: ts block ${r.timedOut ? 'timed out' : `exited ${r.code ?? r.signal}`}\n--- block ---\n${block.text}--- output ---\n${tail(r.output)}`);
    }
    this.ran.push({ block, what: 'ts' });
  }

  /** A block with file=PATH is written into the folder first (then checked like any other). */
  writeFileBlock(block: Block): void {
    const rel = block.attrs.file;
    if (rel === undefined) return;
    const path = resolve(this.dir, rel);
    if (!path.startsWith(this.dir + '/')) throw new Error(`${this.where(block)}: file=${rel} leaves the guide folder`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, block.text);
  }

  json(block: Block): void {
    this.writeFileBlock(block);
    try {
      JSON.parse(block.text);
    } catch (e) {
      throw new Error(`${this.where(block)}: json block does not parse: ${(e as Error).message}`);
    }
    this.ran.push({ block, what: 'json' });
  }

  async yaml(block: Block): Promise<void> {
    this.writeFileBlock(block);
    let doc: unknown;
    try {
      doc = parseYaml(block.text);
    } catch (e) {
      throw new Error(`${this.where(block)}: yaml block does not parse: ${(e as Error).message}`);
    }
    if (!isRecord(doc)) throw new Error(`${this.where(block)}: yaml block is not a mapping`);
    const check = (what: string, f: () => void): void => {
      try {
        f();
      } catch (e) {
        throw new Error(`${this.where(block)}: ${what}: ${(e as Error).message}`);
      }
      this.ran.push({ block, what });
    };
    if (doc.kind === 'Job' && typeof doc.apiVersion === 'string') return this.kubernetes(block, doc);
    if (isRecord(doc.jobs)) return this.githubActions(block, doc.jobs);
    const gitlabJobs = Object.entries(doc).filter(([, v]) => isRecord(v) && Array.isArray(v.script));
    if (gitlabJobs.length > 0) return this.gitlab(block, gitlabJobs);
    if ('groups' in doc && 'name' in doc) {
      const file = block.attrs.file;
      return check('scenario', () => void (file !== undefined ? loadScenario(resolve(this.dir, file)) : loadScenario(doc, { dir: this.dir })));
    }
    if (Object.keys(doc).length === 1 && Array.isArray(doc.faults)) {
      const faults = doc.faults;
      return check('fault fragment', () => void loadScenario({ ...this.opts.baseScenario, faults }, { dir: this.dir }));
    }
    throw new Error(`${this.where(block)}: yaml block is neither a scenario, a faults: fragment, GitHub Actions, GitLab CI nor a Kubernetes Job; fence it as text if it is only shown`);
  }

  private ciScript(lines: string[]): string | null {
    const kept = lines.filter((l) => !SETUP_LINE.test(l));
    return kept.some((l) => l.includes('ota-sim')) ? kept.join('\n') + '\n' : null;
  }

  private async githubActions(block: Block, jobs: Record<string, unknown>): Promise<void> {
    let ran = 0;
    for (const [name, job] of Object.entries(jobs)) {
      if (!isRecord(job) || !Array.isArray(job.steps)) continue;
      const runs = job.steps.filter(isRecord).map((s) => s.run).filter((r): r is string => typeof r === 'string');
      const script = this.ciScript(runs.flatMap((r) => r.split('\n')));
      if (script === null) continue;
      const expanded = script.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_, expr: string) => {
        const v = this.opts.ciExpressions[expr];
        if (v === undefined) throw new Error(`${this.where(block)}: job ${name}: no test value for \${{ ${expr} }} (add it to ciExpressions)`);
        return v;
      });
      await this.shell(block, this.substitute(expanded), this.opts.ciEnv, `GitHub Actions job ${name}`);
      ran++;
    }
    if (ran === 0) throw new Error(`${this.where(block)}: GitHub Actions YAML without a run: step using ota-sim`);
  }

  private async gitlab(block: Block, jobs: [string, unknown][]): Promise<void> {
    let ran = 0;
    for (const [name, job] of jobs) {
      if (!isRecord(job)) continue;
      const lines = [...asStrings(job.before_script), ...asStrings(job.script)];
      const script = this.ciScript(lines);
      if (script === null) continue;
      await this.shell(block, this.substitute(script), this.opts.ciEnv, `GitLab CI job ${name}`);
      ran++;
    }
    if (ran === 0) throw new Error(`${this.where(block)}: GitLab CI YAML without a script using ota-sim`);
  }

  private async kubernetes(block: Block, doc: Record<string, unknown>): Promise<void> {
    const containers = dig(doc, ['spec', 'template', 'spec', 'containers']);
    if (!Array.isArray(containers)) throw new Error(`${this.where(block)}: Job without spec.template.spec.containers`);
    let ran = 0;
    for (const c of containers.filter(isRecord)) {
      const argv = [...asStrings(c.command), ...asStrings(c.args)];
      const env: Record<string, string> = { ...this.opts.ciEnv };
      for (const e of Array.isArray(c.env) ? c.env.filter(isRecord) : []) if (typeof e.name === 'string' && typeof e.value === 'string') env[e.name] = e.value;
      let script: string;
      if ((argv[0] === 'sh' || argv[0] === 'bash' || argv[0] === '/bin/sh') && argv[1] === '-c' && argv[2] !== undefined) script = argv[2];
      else script = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
      if (!script.includes('ota-sim')) continue;
      await this.shell(block, this.substitute(script) + '\n', env, `Kubernetes container ${String(c.name)}`);
      ran++;
    }
    if (ran === 0) throw new Error(`${this.where(block)}: Kubernetes Job without a container running ota-sim`);
  }

  /** Runs every block in order. */
  async runAll(blocks: readonly Block[]): Promise<void> {
    for (const b of blocks) {
      if (b.flags.includes('no-run')) continue;
      switch (b.lang) {
        case 'sh':
        case 'bash':
        case 'shell':
          await this.shell(b, this.substitute(b.text));
          break;
        case 'ts':
        case 'typescript':
          await this.typescript(b);
          break;
        case 'yaml':
        case 'yml':
          await this.yaml(b);
          break;
        case 'json':
          this.json(b);
          break;
        default:
          // Output samples (text, console, no language) are shown, not run.
          this.writeFileBlock(b);
      }
    }
  }

  /** Kills whatever the blocks left running (their process groups), then removes the folders. */
  async close(keep: boolean): Promise<void> {
    for (const pgid of this.groups) killGroup(pgid, 'SIGTERM');
    const deadline = Date.now() + KILL_GRACE_MS;
    while (Date.now() < deadline && this.groups.some(alive)) await new Promise((r) => setTimeout(r, 50));
    for (const pgid of this.groups) killGroup(pgid, 'SIGKILL');
    if (!keep) {
      rmSync(this.dir, { recursive: true, force: true });
      rmSync(this.logDir, { recursive: true, force: true });
    }
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

function alive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asStrings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function dig(v: unknown, path: string[]): unknown {
  let cur = v;
  for (const k of path) cur = isRecord(cur) ? cur[k] : undefined;
  return cur;
}
