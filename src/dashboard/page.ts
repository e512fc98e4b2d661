/**
 * The dashboard page: one self-contained HTML string (inline CSS, JS and SVG; nothing is loaded
 * from anywhere, so it works offline). Plain DOM, no framework: an EventSource on /events feeds
 * stacked-area charts of devices per agent state and per running version over simulated time,
 * the current totals and the table of failing devices; redraws are batched per animation frame.
 */
import { agentStateNames } from '../agent/index.js';
import { escapeHtml } from '../report/format.js';
import { stateColor } from '../report/palette.js';

export interface PageConfig {
  title: string;
  /** Points the page keeps (the same bound as the server's history). */
  history_max: number;
}

const CSS = `
:root{--red:#c62828;--red-bg:#fdecea;--green:#2e7d32;--muted:#607d8b;--line:#e0e0e0}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#212121;background:#fafafa}
header.top{background:#263238;color:#fff;padding:12px 24px;display:flex;gap:18px;align-items:baseline;flex-wrap:wrap}
header.top h1{margin:0;font-size:20px}
.status{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:700;background:#78909c}
.status[data-status=live]{background:#2e7d32}
.status[data-status=finished]{background:#1565c0}
.status[data-status=reconnecting]{background:#ef6c00}
header .clock{color:#cfd8dc;font-size:13px}
main{max-width:1240px;margin:0 auto;padding:12px 24px 48px}
.totals{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0}
.tile{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 16px;min-width:150px}
.tile .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.tile .value{font-size:26px;font-weight:700;font-variant-numeric:tabular-nums}
.tile .sub{color:var(--muted);font-size:12px}
.tile.bad{border-color:var(--red);border-width:2px;background:var(--red-bg)}
.tile.bad .value{color:var(--red)}
.tile.warn .value{color:#e65100}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;margin:12px 0;padding:10px 16px}
.card h2{font-size:16px;margin:2px 0 6px}
svg.chart{width:100%;height:auto;display:block}
svg.chart .grid{stroke:#eceff1;stroke-width:1}
svg.chart .axis{fill:#78909c;font-size:11px}
svg.chart .empty{fill:#90a4ae;font-size:14px}
svg.chart path.series{stroke:#fff;stroke-width:.5}
ul.legend{list-style:none;margin:4px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12.5px}
ul.legend .sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
ul.legend .n{color:var(--muted);margin-left:4px;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600}
td.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
td.reason{color:var(--red);font-weight:600}
td.detail{word-break:break-word}
.muted{color:var(--muted)}
`;

/*
 * The page script. Plain ES2017, no template literals (it lives inside one). Data flow:
 * `hello` resets (first connect or reconnect), `point` is a replayed history entry, `snapshot`
 * a live one (full, with the failing list). Every change only marks the page dirty; one
 * requestAnimationFrame callback redraws, so a burst of events costs one redraw.
 */
const SCRIPT = `
(function () {
'use strict';
var CFG = JSON.parse(document.getElementById('cfg').textContent);
var SVGNS = 'http://www.w3.org/2000/svg';
var W = 960, H = 260, ML = 52, MR = 12, MT = 10, MB = 26;
var MAX_DRAWN = 480; /* points drawn per chart; more are thinned evenly */
var points = [];
var latest = null;
var dirty = false;
var statusText = 'connecting';

function $(id) { return document.getElementById(id); }
function schedule() { if (!dirty) { dirty = true; requestAnimationFrame(draw); } }
function setStatus(s) { statusText = s; schedule(); }

function fmtDuration(ms) {
  if (!(ms >= 0)) return '–';
  if (ms === 0) return '0 s';
  if (ms < 1000) return Math.round(ms) + ' ms';
  var s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
  var m = Math.floor(s / 60), rs = Math.floor(s % 60);
  if (m < 60) return m + ' min' + (rs ? ' ' + (rs < 10 ? '0' : '') + rs + ' s' : '');
  var h = Math.floor(m / 60), rm = m % 60;
  return h + ' h' + (rm ? ' ' + (rm < 10 ? '0' : '') + rm + ' min' : '');
}
function hash(t) { var h = 2166136261; for (var i = 0; i < t.length; i++) h = Math.imul(h ^ t.charCodeAt(i), 16777619) >>> 0; return h; }
function stateColor(name) {
  var leaf = name.split('.').pop();
  return CFG.stateColors[name] || CFG.stateColors[leaf] || CFG.fallback[hash(leaf) % CFG.fallback.length];
}
function versionCmp(a, b) {
  var pa = a.split(/[.+-]/), pb = b.split(/[.+-]/);
  for (var i = 0; i < Math.max(pa.length, pb.length); i++) {
    var x = pa[i], y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    var nx = Number(x), ny = Number(y);
    if (!isNaN(nx) && !isNaN(ny) && nx !== ny) return nx - ny;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function addPoint(p) {
  var last = points[points.length - 1];
  if (last && last.seq === p.seq) { points[points.length - 1] = p; return; }
  if (last && last.seq > p.seq) return;
  points.push(p);
  if (points.length > CFG.historyMax) points.splice(0, points.length - CFG.historyMax);
}
function compact(s) {
  return { seq: s.seq, at_ms: s.at_ms, wall_ms: s.wall_ms, devices: s.devices, byState: s.byState, byVersion: s.byVersion,
    updated: s.updated, bricked: s.bricked, failing: s.failingTotal != null ? s.failingTotal : s.failing.length, done: s.done };
}

function el(name, attrs, text) {
  var e = document.createElementNS(SVGNS, name);
  for (var k in attrs) e.setAttribute(k, String(attrs[k]));
  if (text != null) e.textContent = text;
  return e;
}
function niceMax(v) {
  if (v <= 4) return 4;
  var p = Math.pow(10, Math.floor(Math.log10(v)));
  var steps = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
  for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
  return 10 * p;
}
function thin(pts) {
  if (pts.length <= MAX_DRAWN) return pts;
  var out = [], step = (pts.length - 1) / (MAX_DRAWN - 1);
  for (var i = 0; i < MAX_DRAWN; i++) out.push(pts[Math.round(i * step)]);
  return out;
}

/* A stacked-area chart of pts[k] (a name → count map) over at_ms, with axes and a legend. */
function drawChart(svg, legend, key, order, color) {
  svg.textContent = '';
  legend.textContent = '';
  svg.setAttribute('data-points', String(points.length));
  var pts = thin(points);
  if (pts.length === 0) {
    svg.setAttribute('data-series-count', '0');
    svg.appendChild(el('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'waiting for the first snapshot…'));
    return;
  }
  var seen = {};
  for (var i = 0; i < pts.length; i++) for (var n in pts[i][key]) seen[n] = true;
  var names = Object.keys(seen).sort(order);
  svg.setAttribute('data-series-count', String(names.length));
  var x0 = pts[0].at_ms, x1 = pts[pts.length - 1].at_ms;
  if (x1 <= x0) x1 = x0 + 1;
  var ymax = 0;
  for (i = 0; i < pts.length; i++) {
    var sum = 0;
    for (var j = 0; j < names.length; j++) sum += pts[i][key][names[j]] || 0;
    ymax = Math.max(ymax, sum, pts[i].devices);
  }
  ymax = niceMax(ymax);
  var pw = W - ML - MR, ph = H - MT - MB;
  function X(t) { return ML + (pts.length === 1 ? 0 : (t - x0) / (x1 - x0) * pw); }
  function Y(v) { return MT + ph - v / ymax * ph; }
  for (var g = 0; g <= 4; g++) {
    var v = ymax * g / 4, y = Y(v);
    svg.appendChild(el('line', { class: 'grid', x1: ML, x2: W - MR, y1: y, y2: y }));
    svg.appendChild(el('text', { class: 'axis', x: ML - 6, y: y + 4, 'text-anchor': 'end' }, String(Math.round(v))));
  }
  for (g = 0; g <= 5; g++) {
    var t = x0 + (x1 - x0) * g / 5;
    svg.appendChild(el('text', { class: 'axis', x: ML + pw * g / 5, y: H - 8, 'text-anchor': g === 0 ? 'start' : g === 5 ? 'end' : 'middle' }, fmtDuration(t)));
  }
  /* a single point is drawn as a band across the whole width */
  var xs = pts.map(function (p) { return X(p.at_ms); });
  if (pts.length === 1) { pts = [pts[0], pts[0]]; xs = [ML, ML + pw]; }
  var base = pts.map(function () { return 0; });
  var last = pts[pts.length - 1], k;
  for (j = 0; j < names.length; j++) {
    var name = names[j];
    var top = pts.map(function (p, k) { return base[k] + (p[key][name] || 0); });
    var d = 'M';
    for (k = 0; k < pts.length; k++) d += (k ? ' L' : '') + xs[k].toFixed(1) + ',' + Y(top[k]).toFixed(1);
    for (k = pts.length - 1; k >= 0; k--) d += ' L' + xs[k].toFixed(1) + ',' + Y(base[k]).toFixed(1);
    d += ' Z';
    var path = el('path', { class: 'series', d: d, fill: color(name, j), 'data-series': name });
    path.appendChild(el('title', {}, name + ': ' + (last[key][name] || 0)));
    svg.appendChild(path);
    base = top;
    var li = document.createElement('li');
    li.setAttribute('data-series', name);
    var sw = document.createElement('span');
    sw.className = 'sw';
    sw.style.background = color(name, j);
    var cnt = document.createElement('span');
    cnt.className = 'n';
    cnt.textContent = String(last[key][name] || 0);
    li.appendChild(sw);
    li.appendChild(document.createTextNode(name));
    li.appendChild(cnt);
    legend.appendChild(li);
  }
}

function stateOrder(a, b) {
  var ia = CFG.stateOrder.indexOf(a), ib = CFG.stateOrder.indexOf(b);
  if (ia < 0 && ib < 0) return a < b ? -1 : a > b ? 1 : 0;
  if (ia < 0) return 1;
  if (ib < 0) return -1;
  return ia - ib;
}
function versionColor(name, i) { return CFG.versionColors[i % CFG.versionColors.length]; }

function drawTotals() {
  var p = points[points.length - 1];
  var st = p && p.done ? 'finished' : statusText;
  $('status').setAttribute('data-status', st);
  $('status').textContent = st;
  if (!p) return;
  $('sim-time').textContent = fmtDuration(p.at_ms);
  $('wall-time').textContent = fmtDuration(p.wall_ms);
  $('devices').textContent = String(p.devices);
  $('updated').textContent = p.updated + ' of ' + p.devices;
  $('updated-pct').textContent = (p.devices > 0 ? (100 * p.updated / p.devices).toFixed(1) : '0.0') + '%';
  $('bricked').textContent = String(p.bricked);
  $('bricked-tile').className = 'tile' + (p.bricked > 0 ? ' bad' : '');
  $('failing-count').textContent = String(p.failing);
  $('failing-tile').className = 'tile' + (p.failing > 0 ? ' warn' : '');
}

function drawFailing() {
  var body = $('failing').tBodies[0];
  body.textContent = '';
  var rows = latest ? latest.failing : [];
  for (var i = 0; i < rows.length; i++) {
    var f = rows[i], tr = document.createElement('tr');
    tr.setAttribute('data-device', f.id);
    var cells = [[f.id, 'mono'], [f.reason, 'reason'], [f.detail, 'detail'], [fmtDuration(f.since_ms), 'since']];
    for (var c = 0; c < cells.length; c++) {
      var td = document.createElement('td');
      td.className = cells[c][1];
      td.textContent = cells[c][0];
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  var total = latest ? (latest.failingTotal != null ? latest.failingTotal : rows.length) : 0;
  $('failing-note').textContent = total > rows.length ? '(first ' + rows.length + ' of ' + total + ')' : '';
  $('no-failing').style.display = rows.length ? 'none' : '';
}

function draw() {
  dirty = false;
  drawTotals();
  drawChart($('chart-state'), $('legend-state'), 'byState', stateOrder, stateColor);
  drawChart($('chart-version'), $('legend-version'), 'byVersion', versionCmp, versionColor);
  drawFailing();
}

var es = new EventSource('events');
es.addEventListener('hello', function () { points = []; latest = null; setStatus('live'); });
es.addEventListener('point', function (e) { addPoint(JSON.parse(e.data)); schedule(); });
es.addEventListener('snapshot', function (e) { var s = JSON.parse(e.data); latest = s; addPoint(compact(s)); schedule(); });
es.addEventListener('open', function () { setStatus('live'); });
es.addEventListener('error', function () { setStatus(es.readyState === 2 ? 'closed' : 'reconnecting'); });
schedule();
})();
`;

const VERSION_COLORS = ['#1e88e5', '#43a047', '#8e24aa', '#fb8c00', '#00897b', '#e53935', '#3949ab', '#c0ca33', '#6d4c41', '#00acc1'];
const FALLBACK_COLORS = ['#80cbc4', '#ce93d8', '#a5d6a7', '#ffcc80', '#90caf9', '#bcaaa4', '#f48fb1', '#b0bec5'];

/** JSON safe inside a <script> element: no "</script>" or "<!--" can appear. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export function renderDashboardPage(config: PageConfig): string {
  const states = agentStateNames();
  const stateColors: Record<string, string> = {};
  for (const s of states) {
    stateColors[s] = stateColor(s);
    stateColors[s.split('.').pop() ?? s] = stateColor(s);
  }
  const cfg = { title: config.title, historyMax: config.history_max, stateOrder: states, stateColors, versionColors: VERSION_COLORS, fallback: FALLBACK_COLORS };
  const t = escapeHtml(config.title);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${t}</title>
<link rel="icon" href="data:,">
<style>${CSS}</style>
</head>
<body>
<header class="top"><h1>${t}</h1><span id="status" class="status" data-status="connecting">connecting</span>
<span class="clock">simulated <b id="sim-time">–</b> · wall <b id="wall-time">–</b></span></header>
<main>
<section class="totals">
<div class="tile"><div class="label">devices</div><div class="value" id="devices">–</div></div>
<div class="tile"><div class="label">updated</div><div class="value" id="updated-pct">–</div><div class="sub" id="updated">–</div></div>
<div class="tile" id="bricked-tile"><div class="label">bricked</div><div class="value" id="bricked">–</div></div>
<div class="tile" id="failing-tile"><div class="label">failing</div><div class="value" id="failing-count">–</div></div>
</section>
<section class="card"><h2>Devices per agent state</h2>
<svg id="chart-state" class="chart" data-chart="state" data-points="0" viewBox="0 0 960 260" role="img" aria-label="devices per agent state over simulated time"></svg>
<ul class="legend" id="legend-state"></ul></section>
<section class="card"><h2>Devices per running version</h2>
<svg id="chart-version" class="chart" data-chart="version" data-points="0" viewBox="0 0 960 260" role="img" aria-label="devices per running version over simulated time"></svg>
<ul class="legend" id="legend-version"></ul></section>
<section class="card"><h2>Failing devices <span id="failing-note" class="muted"></span></h2>
<table id="failing"><thead><tr><th>device</th><th>reason</th><th>detail</th><th>since</th></tr></thead><tbody></tbody></table>
<p id="no-failing" class="muted">none</p></section>
</main>
<script type="application/json" id="cfg">${scriptJson(cfg)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
