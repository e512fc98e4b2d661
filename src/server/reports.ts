/**
 * Validation of state reports (`POST /.u/c/<package>`, FORMATS.md): a CBOR map with text keys
 * `s` (0..3), `r` (0..11), `pkg` (text, the package of the path), optional `v` and `t` (text
 * versions). Unknown keys are ignored, as the SDKs add some. The result is the report or one
 * readable diagnostic, which the server sends back with 4.00.
 */
import { decodeCbor } from './cbor.js';
import { REPORT_REASONS, REPORT_STATES } from './types.js';
import type { StateReport } from './types.js';

export type ReportCheck = { ok: true; report: StateReport } | { ok: false; error: string };

const MAX_TEXT_CHARS = 128;

function text(map: Map<unknown, unknown>, key: string, required: boolean): { value: string | null } | { error: string } {
  const v = map.get(key);
  if (v === undefined || v === null) return required ? { error: `missing "${key}" (text)` } : { value: null };
  if (typeof v !== 'string') return { error: `"${key}" must be text, got ${typeof v}` };
  if (v.length === 0 || v.length > MAX_TEXT_CHARS) return { error: `"${key}" must be 1..${MAX_TEXT_CHARS} characters` };
  return { value: v };
}

function enumInt(map: Map<unknown, unknown>, key: string, names: readonly string[]): { value: number } | { error: string } {
  const v = map.get(key);
  if (v === undefined) return { error: `missing "${key}" (integer 0..${names.length - 1})` };
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= names.length) {
    return { error: `"${key}" must be an integer 0..${names.length - 1}, got ${JSON.stringify(v)}` };
  }
  return { value: v };
}

export function checkReport(payload: Uint8Array, pathPackage: string): ReportCheck {
  const decoded = decodeCbor(payload);
  if (!decoded.ok) return { ok: false, error: decoded.error };
  const map = decoded.value;
  if (!(map instanceof Map)) return { ok: false, error: 'a state report must be a CBOR map with text keys s, r, pkg, v, t' };
  const s = enumInt(map, 's', REPORT_STATES);
  if ('error' in s) return { ok: false, error: s.error };
  const r = enumInt(map, 'r', REPORT_REASONS);
  if ('error' in r) return { ok: false, error: r.error };
  const pkg = text(map, 'pkg', true);
  if ('error' in pkg) return { ok: false, error: pkg.error };
  if (pkg.value !== pathPackage) return { ok: false, error: `"pkg" is ${JSON.stringify(pkg.value)} but the report was posted to /.u/c/${pathPackage}` };
  const v = text(map, 'v', false);
  if ('error' in v) return { ok: false, error: v.error };
  const t = text(map, 't', false);
  if ('error' in t) return { ok: false, error: t.error };
  return { ok: true, report: { s: s.value, r: r.value, pkg: pathPackage, v: v.value, t: t.value } };
}
