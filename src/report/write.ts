/**
 * Writes the three report files of a run into a folder: junit.xml, results.json, report.html.
 * Each is written to a temporary file in the same folder and renamed over the final name, so a
 * crash or a full disk never leaves a half-written report that CI would then parse.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { EnvironmentError } from '../errors.js';
import type { RunResult } from '../scenario/result.js';
import { renderHtml } from './html.js';
import { renderJson } from './json.js';
import { renderJUnit } from './junit.js';

export interface ReportPaths {
  junit: string;
  json: string;
  html: string;
}

export const REPORT_FILES = { junit: 'junit.xml', json: 'results.json', html: 'report.html' } as const;

let tmpCounter = 0;

async function writeAtomic(path: string, text: string): Promise<void> {
  tmpCounter = (tmpCounter + 1) % 1_000_000;
  const tmp = `${path}.tmp-${process.pid}-${tmpCounter}`;
  try {
    await writeFile(tmp, text, 'utf8');
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    const why = e instanceof Error ? e.message : String(e);
    throw new EnvironmentError('REPORT_WRITE', `${path}: cannot write the report (${why})`);
  }
}

export async function writeReports(run: RunResult, dir: string): Promise<ReportPaths> {
  const root = resolve(dir);
  try {
    await mkdir(root, { recursive: true });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new EnvironmentError('REPORT_DIR', `${root}: cannot create the report directory (${why})`);
  }
  const paths: ReportPaths = { junit: join(root, REPORT_FILES.junit), json: join(root, REPORT_FILES.json), html: join(root, REPORT_FILES.html) };
  // Render everything first: a rendering bug then leaves the previous reports in place.
  const junit = renderJUnit(run);
  const json = renderJson(run);
  const html = renderHtml(run);
  await writeAtomic(paths.junit, junit);
  await writeAtomic(paths.json, json);
  await writeAtomic(paths.html, html);
  return paths;
}
