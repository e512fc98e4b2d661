/**
 * The console summary of a run: one table row per scenario, then each failure in one sentence
 * with its replay command, then "N passed, N failed". With color off it is plain ASCII (CI logs);
 * no line ever ends in a space.
 */
import type { RunResult, ScenarioResult } from '../scenario/result.js';
import { compactVersions, failureSentence, faultSummary, formatDuration, oneLine, totalReboots } from './format.js';

export interface ConsoleOptions {
  color: boolean;
  /** Terminal width in columns; the widest columns are shortened to fit. Unlimited when absent. */
  width?: number;
}

/** At most this many violations are listed per failed scenario (the JSON/HTML reports have them all). */
const MAX_VIOLATIONS_LISTED = 5;
/** No column is shrunk below this many characters. */
const MIN_COLUMN_CHARS = 8;

const ANSI = { red: '\u001b[31m', green: '\u001b[32m', bold: '\u001b[1m', dim: '\u001b[2m', reset: '\u001b[0m' } as const;

interface Column {
  title: string;
  align: 'left' | 'right';
  /** May be shortened (with an ellipsis) when the table is wider than the terminal. */
  shrinkable: boolean;
}

const COLUMNS: readonly Column[] = [
  { title: 'RESULT', align: 'left', shrinkable: false },
  { title: 'SCENARIO', align: 'left', shrinkable: true },
  { title: 'DEVICES', align: 'right', shrinkable: false },
  { title: 'FINAL VERSIONS', align: 'left', shrinkable: true },
  { title: 'FAULTS', align: 'left', shrinkable: true },
  { title: 'REBOOTS', align: 'right', shrinkable: false },
  { title: 'SIM TIME', align: 'right', shrinkable: false },
  { title: 'WALL', align: 'right', shrinkable: false },
];
const GAP = '  ';

function row(s: ScenarioResult, times: string): string[] {
  return [
    s.passed ? 'PASS' : 'FAIL',
    oneLine(s.name),
    String(s.devices.length),
    compactVersions(s.devices, times) || '-',
    faultSummary(s, times).text,
    String(totalReboots(s)),
    formatDuration(s.simulated_ms),
    formatDuration(s.duration_wallMs),
  ];
}

/** Shorten `text` to `max` columns with an ellipsis. */
function clip(text: string, max: number, ellipsis: string): string {
  if (charLength(text) <= max) return text;
  const budget = Math.max(0, max - ellipsis.length);
  let out = '';
  for (const ch of text) {
    if (charLength(out + ch) > budget) break;
    out += ch;
  }
  return out + ellipsis;
}

/** Wide (East Asian, emoji) characters take two terminal columns, combining marks none. */
const WIDE = /[\u1100-\u115F\u2E80-\u303E\u3041-\u33FF\u3400-\u4DBF\u4E00-\u9FFF\uA000-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFF60\uFFE0-\uFFE6]|[\u{1F300}-\u{1FAFF}\u{20000}-\u{3FFFD}]/u;
const ZERO_WIDTH = /[\u0300-\u036F\u200B-\u200F\uFE0F]/;

/** Terminal columns `text` takes. */
function charLength(text: string): number {
  let n = 0;
  for (const ch of text) n += ZERO_WIDTH.test(ch) ? 0 : WIDE.test(ch) ? 2 : 1;
  return n;
}

/** Column widths that fit `width` when possible, shrinking the shrinkable columns widest first. */
function fitWidths(natural: number[], width: number | undefined): number[] {
  const widths = [...natural];
  if (width === undefined || !Number.isFinite(width)) return widths;
  const total = (): number => widths.reduce((a, b) => a + b, 0) + GAP.length * (widths.length - 1);
  // Bounded: each pass takes one character off the widest shrinkable column, or stops.
  for (let guard = 0; guard < 10_000 && total() > width; guard++) {
    let widest = -1;
    COLUMNS.forEach((c, i) => {
      const w = widths[i] ?? 0;
      if (c.shrinkable && w > MIN_COLUMN_CHARS && (widest < 0 || w > (widths[widest] ?? 0))) widest = i;
    });
    if (widest < 0) break;
    widths[widest] = (widths[widest] ?? 0) - 1;
  }
  return widths;
}

export function renderConsole(run: RunResult, opts: ConsoleOptions): string {
  const color = opts.color;
  const times = color ? '\u00d7' : ' x';
  const ellipsis = color ? '\u2026' : '...';
  const paint = (code: string, text: string): string => (color ? `${code}${text}${ANSI.reset}` : text);

  const rows = run.scenarios.map((s) => row(s, times));
  const natural = COLUMNS.map((c, i) => Math.max(charLength(c.title), ...rows.map((r) => charLength(r[i] ?? ''))));
  const widths = fitWidths(natural, opts.width);

  const line = (cells: string[], style: (i: number, text: string) => string): string =>
    cells
      .map((cell, i) => {
        const w = widths[i] ?? 0;
        const text = clip(cell, w, ellipsis);
        const pad = ' '.repeat(Math.max(0, w - charLength(text)));
        const col = COLUMNS[i];
        const padded = col?.align === 'right' ? pad + style(i, text) : style(i, text) + pad;
        return padded;
      })
      .join(GAP)
      .trimEnd();

  const out: string[] = [];
  out.push(line(COLUMNS.map((c) => c.title), (_, t) => paint(ANSI.bold, t)));
  out.push(widths.map((w) => '-'.repeat(w)).join(GAP));
  run.scenarios.forEach((s, idx) => {
    const cells = rows[idx] ?? [];
    out.push(line(cells, (i, t) => (i === 0 ? paint(s.passed ? ANSI.green : ANSI.red + ANSI.bold, t) : t)));
  });

  const failed = run.scenarios.filter((s) => !s.passed);
  if (failed.length > 0) {
    out.push('');
    for (const s of failed) {
      out.push(`${paint(ANSI.red + ANSI.bold, 'FAIL')} ${oneLine(s.name)} (seed ${s.seed}): ${failureSentence(s)}`);
      out.push(`  replay: ${s.replay}`);
      // Violations whose replay differs from the scenario's (a single sweep case, a device) get their own line.
      const listed = s.violations.slice(0, MAX_VIOLATIONS_LISTED);
      for (const v of listed) {
        const where = [v.device, v.opIndex !== null ? `op ${v.opIndex}` : null, v.at_ms !== null ? `t=${formatDuration(v.at_ms)}` : null]
          .filter((x) => x !== null)
          .join(', ');
        out.push(`  - ${v.invariant} (${where}): ${oneLine(v.message)}`);
        if (v.replay && v.replay !== s.replay) out.push(`    replay: ${v.replay}`);
      }
      if (s.violations.length > listed.length) out.push(`  ... and ${s.violations.length - listed.length} more violations (see the JSON/HTML report)`);
    }
  }
  out.push('');
  const summary = `${run.passed} passed, ${run.failed} failed`;
  out.push(color ? paint(run.failed > 0 ? ANSI.red + ANSI.bold : ANSI.green, summary) : summary);
  return out.map((l) => l.trimEnd()).join('\n') + '\n';
}
