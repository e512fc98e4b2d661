/**
 * JUnit XML for CI: one <testsuite name="ota-sim">, one <testcase> per scenario, a <failure>
 * whose message is the one-sentence reason and whose body lists every violation and the replay
 * command. Everything user-supplied is XML-escaped (names may contain <>&"' and non-ASCII).
 */
import { INVARIANTS, type RunResult, type ScenarioResult } from '../scenario/result.js';
import { compactVersions, escapeXml as x, failureSentence, faultSummary, formatDuration, secondsAttr, totalReboots } from './format.js';

function failureBody(s: ScenarioResult): string {
  const lines: string[] = [];
  lines.push(failureSentence(s));
  lines.push(`seed: ${s.seed}`);
  lines.push(`replay: ${s.replay}`);
  for (const e of s.expectations.filter((e) => !e.passed)) lines.push(`expectation failed: ${e.what}${e.detail ? ` -- ${e.detail}` : ''}`);
  for (const inv of s.invariants.filter((i) => !i.passed)) {
    const title = INVARIANTS.find((d) => d.id === inv.id)?.title ?? inv.id;
    lines.push(`invariant failed: ${inv.id} (${title})${inv.detail ? ` -- ${inv.detail}` : ''}`);
  }
  for (const v of s.violations) {
    const where = [`device ${v.device}`, v.opIndex !== null ? `op ${v.opIndex}` : null, v.at_ms !== null ? `at ${v.at_ms} ms` : null].filter((w) => w !== null).join(', ');
    lines.push(`violation: ${v.invariant} (${where}): ${v.message}`);
    lines.push(`  replay: ${v.replay}`);
  }
  return lines.join('\n');
}

function systemOut(s: ScenarioResult): string {
  return [
    `devices: ${s.devices.length} (${s.board}, ${s.strategy})`,
    `final versions: ${compactVersions(s.devices, ' x') || '-'}`,
    `faults injected: ${faultSummary(s, ' x').text}`,
    `reboots: ${totalReboots(s)}`,
    `simulated: ${formatDuration(s.simulated_ms)}, time scale ${s.timeScale}`,
    `replay: ${s.replay}`,
  ].join('\n');
}

function testcase(s: ScenarioResult): string {
  const attrs = `classname="ota-sim.scenarios" name="${x(s.name)}" time="${secondsAttr(s.duration_wallMs)}"${s.file !== null ? ` file="${x(s.file)}"` : ''}`;
  const parts: string[] = [];
  parts.push(`    <testcase ${attrs}>`);
  parts.push(`      <properties>`);
  parts.push(`        <property name="seed" value="${s.seed}"/>`);
  parts.push(`        <property name="replay" value="${x(s.replay)}"/>`);
  parts.push(`      </properties>`);
  if (!s.passed) {
    parts.push(`      <failure message="${x(failureSentence(s))}" type="ScenarioFailed">${x(failureBody(s))}</failure>`);
  }
  parts.push(`      <system-out>${x(systemOut(s))}</system-out>`);
  parts.push(`    </testcase>`);
  return parts.join('\n');
}

export function renderJUnit(run: RunResult): string {
  const tests = run.scenarios.length;
  const failures = run.scenarios.filter((s) => !s.passed).length;
  const time = secondsAttr(run.duration_wallMs);
  const seed = run.seed === null ? 'per-scenario' : String(run.seed);
  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(`<testsuites name="ota-sim" tests="${tests}" failures="${failures}" errors="0" time="${time}">`);
  out.push(`  <testsuite name="ota-sim" tests="${tests}" failures="${failures}" errors="0" skipped="0" time="${time}">`);
  out.push('    <properties>');
  out.push(`      <property name="seed" value="${x(seed)}"/>`);
  out.push(`      <property name="schema" value="${x(run.schema)}"/>`);
  out.push('    </properties>');
  for (const s of run.scenarios) out.push(testcase(s));
  out.push('  </testsuite>');
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
