/**
 * Small formatting helpers shared by every report (console, JUnit, HTML): escaping, durations,
 * the compact "1.1.0×3, 1.0.0×1" version summary and the faults summary. Pure functions only.
 */
import type { DeviceResult, ScenarioResult } from '../scenario/result.js';

/** Characters XML 1.0 does not allow at all (C0 controls except tab/LF/CR, lone surrogates, U+FFFE/U+FFFF). */
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Escape text for XML/HTML text content and attribute values (both quote kinds). */
export function escapeXml(text: string): string {
  return text
    .replace(XML_INVALID, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** HTML uses the same escaping; &apos; is valid in HTML5 too. */
export const escapeHtml = escapeXml;

/** "850ms", "12.3s", "4m05s", "2h03m" — for simulated and wall durations alike. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const totalS = Math.round(s);
  const m = Math.floor(totalS / 60);
  if (m < 60) return `${m}m${String(totalS % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Seconds with millisecond precision, as JUnit's time attribute wants. */
export function secondsAttr(ms: number): string {
  return Number.isFinite(ms) && ms > 0 ? (ms / 1000).toFixed(3) : '0.000';
}

/** A device's final state as one word: its version, "(test)" when unconfirmed, "bricked" when nothing boots. */
export function finalLabel(d: DeviceResult): string {
  if (d.bricked || d.finalVersion === null) return 'bricked';
  return d.confirmed ? d.finalVersion : `${d.finalVersion}(test)`;
}

/** "1.1.0×3, 1.0.0×1": final versions by count, most common first; `times` is '×' or the ASCII 'x'. */
export function compactVersions(devices: readonly DeviceResult[], times: string): string {
  const counts = new Map<string, number>();
  for (const d of devices) {
    const label = finalLabel(d);
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([v, n]) => `${v}${times}${n}`)
    .join(', ');
}

/** Total faults injected and the kinds, most frequent first: "12 (loss×9, power-cut×3)"; "0" when none. */
export function faultSummary(s: ScenarioResult, times: string): { total: number; text: string } {
  const entries = Object.entries(s.faultsInjected)
    .filter(([, n]) => Number.isFinite(n) && n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return { total, text: '0' };
  return { total, text: `${total} (${entries.map(([k, n]) => `${k}${times}${n}`).join(', ')})` };
}

export function totalReboots(s: ScenarioResult): number {
  return s.devices.reduce((sum, d) => sum + d.reboots, 0);
}

/** The one sentence that explains a failed scenario (the runner's, or one built from what failed). */
export function failureSentence(s: ScenarioResult): string {
  if (s.passed) return '';
  if (s.failure !== null && s.failure.trim() !== '') return oneLine(s.failure);
  const v = s.violations[0];
  if (v) return oneLine(`invariant ${v.invariant} violated on ${v.device}: ${v.message}`);
  const e = s.expectations.find((x) => !x.passed);
  if (e) return oneLine(`expectation not met: ${e.what}${e.detail ? ` (${e.detail})` : ''}`);
  return 'failed (no reason recorded)';
}

/** Collapse whitespace and newlines so a message fits one line of a table or an attribute. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** An id usable in an HTML anchor, unique per index. */
export function anchorId(index: number, name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .toLowerCase()
    .slice(0, 48);
  return `s${index}-${slug || 'scenario'}`;
}
