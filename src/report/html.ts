/**
 * report.html: one self-contained page (inline CSS, JS and SVG; no URL of any kind, so it works
 * offline and from a CI artifact). A summary header, failed scenarios first and linked from the
 * top, then per scenario: a red banner when it failed, its devices, expectations, the seven
 * invariants, violations with replay commands, and a timeline with one lane per device. The agent
 * statechart is drawn once at the end.
 */
import { INVARIANTS, type DeviceResult, type RunResult, type ScenarioResult } from '../scenario/result.js';
import { anchorId, compactVersions, escapeHtml as h, failureSentence, faultSummary, finalLabel, formatDuration, totalReboots } from './format.js';
import { renderStatechart, renderTransitionTable } from './statechart.js';
import { laneCapFor, renderLegend, renderMarkDefs, renderTimeline, TIMELINE_LIMITS } from './timeline.js';

/** Events listed in a failed scenario's per-device event table (the timeline and JSON have all). */
const MAX_EVENT_ROWS_PER_DEVICE = 100;

const CSS = `
:root{--red:#c62828;--red-bg:#fdecea;--green:#2e7d32;--green-bg:#e8f5e9;--muted:#607d8b;--line:#e0e0e0}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#212121;background:#fafafa}
header.top{background:#263238;color:#fff;padding:16px 24px}
header.top h1{margin:0 0 4px;font-size:20px}
header.top .counts span{display:inline-block;margin-right:16px}
main{max-width:1240px;margin:0 auto;padding:16px 24px 48px}
a{color:#1565c0}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
code.replay{display:block;white-space:pre-wrap;word-break:break-all;background:#263238;color:#eceff1;padding:6px 10px;border-radius:4px;margin:4px 0}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:700;vertical-align:middle;color:#fff}
.badge.failed{background:var(--red)}
.badge.passed{background:var(--green)}
.banner.failed{background:var(--red-bg);border-left:6px solid var(--red);color:#b71c1c;padding:8px 12px;margin:8px 0;font-weight:600}
.failed-list{background:var(--red-bg);border:1px solid #ef9a9a;border-radius:6px;padding:8px 16px;margin:12px 0}
.failed-list h2{color:var(--red);font-size:16px;margin:4px 0}
section.scenario{background:#fff;border:1px solid var(--line);border-radius:6px;margin:18px 0;padding:12px 18px}
section.scenario.failed{border-color:var(--red);border-width:2px}
section.scenario h2{font-size:17px;margin:4px 0}
.meta{color:var(--muted);font-size:13px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600}
td.num{text-align:right}
.ok{color:var(--green);font-weight:700}
.bad{color:var(--red);font-weight:700}
.na{color:var(--muted)}
nav.index ol{columns:2;margin:4px 0}
nav.index li.failed a{color:var(--red);font-weight:700}
.timeline-wrap{overflow-x:auto;margin:8px 0}
svg.timeline{min-width:760px;font:11px system-ui,sans-serif;background:#fff}
svg.timeline .lane-bg{fill:#fff}
svg.timeline .lane:nth-child(even) .lane-bg{fill:#f5f7f8}
svg.timeline .lane.bricked .lane-label{fill:var(--red);font-weight:700}
svg.timeline .lane-label{font-weight:600}
svg.timeline .lane-sub{fill:var(--muted);font-size:10px}
svg.timeline .lane-cap{fill:var(--red);font-size:10px;text-anchor:end}
svg.timeline .grid{stroke:#eceff1}
svg.timeline .tick{fill:var(--muted);text-anchor:middle;font-size:10px}
svg.timeline .axis-title{fill:var(--muted);text-anchor:end;font-size:10px}
.chart-wrap{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px}
svg.statechart{font:12px system-ui,sans-serif}
svg.statechart .state text{text-anchor:middle;fill:#102027;font-weight:600}
svg.statechart .state.initial rect{stroke:#102027;stroke-width:2}
svg.statechart .state.compound rect{stroke:#102027;stroke-width:1.5}
svg.statechart .edge path{fill:none;stroke:#78909c;stroke-width:1.2}
svg.statechart .edge.implicit path{stroke-dasharray:4 3}
svg.statechart .edge text{font-size:9.5px;fill:#455a64;text-anchor:middle;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg.statechart .edge:hover path{stroke:#d84315;stroke-width:2}
ul.legend{list-style:none;padding:0;margin:6px 0;display:flex;flex-wrap:wrap;gap:4px 18px;font-size:12px;color:#37474f}
ul.legend svg{vertical-align:middle}
details summary{cursor:pointer;color:#1565c0}
body.only-failed section.scenario.passed{display:none}
`;

// Inline, tiny, no network: "show failed only" toggle.
const JS = `
(function(){var c=document.getElementById('only-failed');if(!c)return;c.addEventListener('change',function(){document.body.classList.toggle('only-failed',c.checked);});})();
`;

function pf(passed: boolean): string {
  return passed ? '<span class="ok">pass</span>' : '<span class="bad">FAIL</span>';
}

function deviceRows(devices: DeviceResult[]): string {
  const rows = devices.map((d) => {
    const last = d.reports[d.reports.length - 1];
    const lastText = last ? `s=${last.s} r=${last.r} v=${last.v}${last.t !== null ? ` t=${last.t}` : ''} at ${formatDuration(last.at_ms)}` : '—';
    return (
      `<tr><td class="mono">${h(d.id)}</td><td>${h(d.group)}</td><td>${h(d.initialVersion)} → ${d.bricked ? '<span class="bad">bricked</span>' : h(finalLabel(d))}</td>` +
      `<td>${d.confirmed ? 'yes' : '<span class="bad">no</span>'}</td><td class="num">${d.reboots}</td><td class="num">${d.downloads}</td><td class="num">${d.bytesDownloaded}</td>` +
      `<td class="num">${d.powerCuts}</td><td class="num">${d.netFaults}</td><td class="num">${d.reports.length}</td><td class="mono">${h(lastText)}</td></tr>`
    );
  });
  return (
    `<table class="devices"><thead><tr><th>device</th><th>group</th><th>version</th><th>confirmed</th><th>reboots</th><th>downloads</th><th>bytes</th><th>power cuts</th><th>net faults</th><th>reports</th><th>last report</th></tr></thead>` +
    `<tbody>${rows.join('')}</tbody></table>`
  );
}

function invariantsTable(s: ScenarioResult): string {
  const rows = INVARIANTS.map((def) => {
    const res = s.invariants.find((i) => i.id === def.id);
    const status = res ? pf(res.passed) : '<span class="na">not checked</span>';
    return `<tr data-invariant="${h(def.id)}"><td>${status}</td><td class="mono">${h(def.id)}</td><td>${h(def.title)}</td><td class="meta">${h(res?.detail ?? '')}</td></tr>`;
  });
  return `<table class="invariants"><thead><tr><th></th><th>invariant</th><th>what</th><th>detail</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function expectationsList(s: ScenarioResult): string {
  if (s.expectations.length === 0) return '<p class="na">No expectations stated.</p>';
  return `<ul class="expectations">${s.expectations.map((e) => `<li>${pf(e.passed)} ${h(e.what)}${!e.passed && e.detail ? ` — <span class="bad">${h(e.detail)}</span>` : ''}</li>`).join('')}</ul>`;
}

function violationsBlock(s: ScenarioResult): string {
  if (s.violations.length === 0) return '';
  const items = s.violations.map((v) => {
    const where = [`device ${v.device}`, v.opIndex !== null ? `op ${v.opIndex}` : null, v.at_ms !== null ? `t=${formatDuration(v.at_ms)}` : null].filter((w) => w !== null).join(', ');
    return `<li><span class="bad">${h(v.invariant)}</span> (${h(where)}): ${h(v.message)}<code class="replay">${h(v.replay)}</code></li>`;
  });
  return `<h3>Violations (${s.violations.length})</h3><ol class="violations">${items.join('')}</ol>`;
}

function eventTables(s: ScenarioResult): string {
  const blocks = s.devices.map((d) => {
    const events = [...d.timeline].sort((a, b) => a.at_ms - b.at_ms);
    const shown = events.slice(0, MAX_EVENT_ROWS_PER_DEVICE);
    const rows = shown.map((e) => {
      const detail = e.detail ? Object.entries(e.detail).map(([k, v]) => `${k}=${v === null ? 'null' : String(v)}`).join(' ') : '';
      return `<tr><td class="num mono">${(e.at_ms / 1000).toFixed(3)}</td><td class="num mono">${e.end_ms !== undefined ? (e.end_ms / 1000).toFixed(3) : ''}</td><td>${h(e.kind)}</td><td>${h(e.label)}</td><td class="mono">${h(detail)}</td></tr>`;
    });
    const more = events.length > shown.length ? `<p class="meta">${events.length - shown.length} later events not listed (first ${MAX_EVENT_ROWS_PER_DEVICE} shown; results.json has all).</p>` : '';
    return `<details><summary>${h(d.id)}: ${events.length} events</summary><table class="events"><thead><tr><th>t (s)</th><th>end (s)</th><th>kind</th><th>label</th><th>detail</th></tr></thead><tbody>${rows.join('')}</tbody></table>${more}</details>`;
  });
  return `<h3>Events</h3>${blocks.join('')}`;
}

function scenarioSection(s: ScenarioResult, id: string, laneCap: number): string {
  const status = s.passed ? 'passed' : 'failed';
  const faults = faultSummary(s, '×');
  const timeline = renderTimeline(s, laneCap);
  const parts: string[] = [];
  parts.push(`<section class="scenario ${status}" id="${h(id)}" data-scenario="${h(s.name)}">`);
  parts.push(`<h2><span class="badge ${status}">${s.passed ? 'PASSED' : 'FAILED'}</span> ${h(s.name)}</h2>`);
  if (!s.passed) parts.push(`<div class="banner failed" role="alert">${h(failureSentence(s))}<code class="replay">${h(s.replay)}</code></div>`);
  if (s.description) parts.push(`<p>${h(s.description)}</p>`);
  parts.push(
    `<p class="meta">${s.file !== null ? `file <span class="mono">${h(s.file)}</span> · ` : ''}seed <span class="mono">${s.seed}</span> · board ${h(s.board)} · strategy ${h(s.strategy)} · ` +
      `${s.devices.length} devices · final ${h(compactVersions(s.devices, '×') || '—')} · faults ${h(faults.text)} · reboots ${totalReboots(s)} · ` +
      `simulated ${h(formatDuration(s.simulated_ms))} (time scale ${s.timeScale}) · wall ${h(formatDuration(s.duration_wallMs))}</p>`,
  );
  if (s.passed) parts.push(`<p class="meta">replay: <span class="mono">${h(s.replay)}</span></p>`);
  parts.push(`<h3>Timeline</h3><div class="timeline-wrap">${timeline.svg}</div>`);
  if (timeline.coarsenedLanes > 0) parts.push(`<p class="meta">${timeline.coarsenedLanes} lanes drawn coarser (nearby marks merged over a wider span) to stay within ${laneCap} marks per lane; hover a mark for what it stands for.</p>`);
  if (timeline.droppedShapes > 0) parts.push(`<p class="meta bad">${timeline.droppedShapes} marks not drawn: a lane of this report draws at most ${laneCap}.</p>`);
  parts.push(`<h3>Devices</h3>${deviceRows(s.devices)}`);
  parts.push(`<h3>Expectations</h3>${expectationsList(s)}`);
  parts.push(`<h3>Invariants</h3>${invariantsTable(s)}`);
  parts.push(violationsBlock(s));
  if (!s.passed) parts.push(eventTables(s));
  parts.push('</section>');
  return parts.join('\n');
}

export function renderHtml(run: RunResult): string {
  // Failed scenarios first (each group in run order), with stable anchors from the original index.
  const indexed = run.scenarios.map((s, i) => ({ s, id: anchorId(i, s.name) }));
  const ordered = [...indexed.filter((e) => !e.s.passed), ...indexed.filter((e) => e.s.passed)];
  const failed = ordered.filter((e) => !e.s.passed);
  const title = `ota-sim report: ${run.passed} passed, ${run.failed} failed`;
  const seed = run.seed === null ? 'per scenario' : String(run.seed);

  const laneCap = laneCapFor(run.scenarios.reduce((n, s) => n + s.devices.length, 0));

  const out: string[] = [];
  out.push('<!DOCTYPE html>');
  out.push('<html lang="en"><head><meta charset="utf-8">');
  out.push('<meta name="viewport" content="width=device-width, initial-scale=1">');
  out.push(`<title>${h(title)}</title><style>${CSS}</style></head>`);
  out.push(`<body class="${run.failed > 0 ? 'has-failures' : 'all-passed'}">`);
  out.push(renderMarkDefs());
  out.push(
    `<header class="top"><h1>ota-sim run report</h1><div class="counts">` +
      `<span class="badge ${run.failed > 0 ? 'failed' : 'passed'}" id="summary-badge">${run.failed > 0 ? `${run.failed} FAILED` : 'ALL PASSED'}</span>` +
      `<span>${run.passed} passed</span><span>${run.failed} failed</span><span>${run.scenarios.length} scenarios</span>` +
      `<span>seed ${h(seed)}</span><span>wall time ${h(formatDuration(run.duration_wallMs))}</span><span class="mono">${h(run.schema)}</span></div></header>`,
  );
  out.push('<main>');
  if (failed.length > 0) {
    out.push(
      `<div class="failed-list" id="failed"><h2>Failed scenarios</h2><ol>${failed
        .map((e) => `<li><a href="#${h(e.id)}">${h(e.s.name)}</a> — ${h(failureSentence(e.s))}</li>`)
        .join('')}</ol></div>`,
    );
  }
  out.push(
    `<nav class="index"><label><input type="checkbox" id="only-failed"> show failed scenarios only</label><ol>${ordered
      .map((e) => `<li class="${e.s.passed ? 'passed' : 'failed'}"><a href="#${h(e.id)}">${h(e.s.name)}</a> ${e.s.passed ? '' : '(failed)'}</li>`)
      .join('')}</ol><a href="#statechart">agent statechart</a></nav>`,
  );
  out.push(
    `<h3>Legend</h3>${renderLegend()}<p class="meta">Timelines: time in simulated seconds; hover a mark for details. To keep the file small, marks of one kind closer than ${TIMELINE_LIMITS.POINT_BUCKET_PX}px are drawn as one (the hover text says how many), runs of agent states or flash phases narrower than ${TIMELINE_LIMITS.MIN_SPAN_PX}px are drawn as one gray bar, and a lane draws at most ${laneCap} marks in this report: a busier lane is redrawn coarser (up to ${2 ** TIMELINE_LIMITS.MAX_COARSEN}× wider merging), and only then are the least important marks left out (power cuts, boots, reboots and faults are kept first; such a lane says so). results.json has every event.</p>`,
  );
  for (const e of ordered) out.push(scenarioSection(e.s, e.id, laneCap));
  out.push(
    `<section class="statechart-section" id="statechart"><h2>Agent statechart</h2><p class="meta">Drawn from the agent's xstate machine (src/agent/machine.ts). Arrows into the next row are labelled; longer arrows run along the left (forward) and right (back) margins, hover them for their events, or open the table below. Dashed arrows are not transitions of the chart: a compound state's initial child, and the reboot that starts the chart again at its initial state. Node colors match the timeline bars.</p>` +
      `<div class="chart-wrap">${renderStatechart(run.agentStates)}</div><details><summary>all transitions</summary>${renderTransitionTable(run.agentStates)}</details></section>`,
  );
  out.push('</main>');
  out.push(`<script>${JS}</script>`);
  out.push('</body></html>');
  return out.join('\n') + '\n';
}
