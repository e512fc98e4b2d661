/**
 * One scenario's timeline as inline SVG: one lane per device (`<g data-lane="device id">`) with
 * agent states as colored bars, flash phases as a thinner bar, power cuts / boots / reboots as
 * vertical marks, network faults and other faults as marks (or shaded windows), reports as dots;
 * server events as dashed lines across all lanes; a time axis in simulated seconds. Every shape
 * has a <title> for hover.
 *
 * Size is bounded: points of one kind closer than POINT_BUCKET_PX are drawn as one mark ("N ×"),
 * runs of spans narrower than MIN_SPAN_PX are drawn as one gray "busy" bar, and a lane draws at
 * most MAX_SHAPES_PER_LANE shapes (less when a page has so many lanes that PAGE_SHAPE_BUDGET must
 * be shared, see laneCapFor). A lane over its cap is redrawn coarser (×2, up to MAX_COARSEN
 * times) before anything is dropped, most important kinds kept first; the lane says so.
 */
import type { DeviceResult, ScenarioResult, TimelineEvent, TimelineKind } from '../scenario/result.js';
import { escapeXml as x, finalLabel } from './format.js';
import { MARK_COLORS, phaseColor, stateColor } from './palette.js';

export const TIMELINE_LIMITS = {
  /** Points of one kind within this many pixels are one mark. */
  POINT_BUCKET_PX: 4,
  /** Spans narrower than this are merged with their narrow neighbours into a "busy" bar. */
  MIN_SPAN_PX: 2,
  /** A merged "busy" bar stops growing at this width so the picture keeps some detail. */
  MAX_BUSY_PX: 12,
  /** Hard cap of shapes drawn per lane. */
  MAX_SHAPES_PER_LANE: 160,
  /** Shapes per page; with many lanes each lane's cap shrinks to share it (never below MIN_SHAPES_PER_LANE). */
  PAGE_SHAPE_BUDGET: 20_000,
  MIN_SHAPES_PER_LANE: 40,
  /** A lane over its cap is redrawn up to this many times, each at half the resolution. */
  MAX_COARSEN: 5,
  /** Labels listed in one coalesced mark's title. */
  MAX_LABELS_IN_TITLE: 6,
} as const;

const WIDTH = 1000;
const LABEL_W = 180;
const RIGHT_PAD = 14;
const PLOT_W = WIDTH - LABEL_W - RIGHT_PAD;
const TOP = 26;
const LANE_H = 36;
const AXIS_H = 20;

/** Lower number = kept first when a lane must be capped. */
const PRIORITY: Record<TimelineKind, number> = {
  'power-cut': 0,
  boot: 1,
  reboot: 2,
  fault: 3,
  'net-fault': 4,
  'flash-phase': 5,
  'agent-state': 6,
  report: 7,
  server: 8,
};

interface Shape {
  priority: number;
  at_ms: number;
  /** Built only for the shapes that are drawn: a lane may be laid out several times before it fits. */
  svg: () => string;
}

/** Simulated seconds to the millisecond: "12s", "1.234s" (hot path: no toFixed). */
function fmtSeconds(ms: number): string {
  return `${Math.round(ms) / 1000}s`;
}

function describe(e: TimelineEvent): string {
  const when = e.end_ms !== undefined ? `${fmtSeconds(e.at_ms)}–${fmtSeconds(e.end_ms)}` : fmtSeconds(e.at_ms);
  const detail = e.detail
    ? Object.entries(e.detail)
        .sort((a, b) => a[0].localeCompare(b[0]))
        .map(([k, v]) => `${k}=${v === null ? 'null' : String(v)}`)
        .join(' ')
    : '';
  return `${when} ${e.kind}: ${e.label}${detail ? ` (${detail})` : ''}`;
}

/** A "nice" tick step (1, 2, 5 × 10^k ms) giving about `target` ticks over `span_ms`. */
function tickStep(span_ms: number, target: number): number {
  const raw = Math.max(1, span_ms / Math.max(1, target));
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

export function timelineEnd(s: ScenarioResult): number {
  let end = Number.isFinite(s.simulated_ms) ? s.simulated_ms : 0;
  for (const d of s.devices)
    for (const e of d.timeline) {
      if (Number.isFinite(e.at_ms)) end = Math.max(end, e.at_ms);
      if (e.end_ms !== undefined && Number.isFinite(e.end_ms)) end = Math.max(end, e.end_ms);
    }
  return Math.max(1, end);
}

class Scale {
  constructor(readonly end_ms: number) {}
  x(ms: number): number {
    const clamped = Math.min(this.end_ms, Math.max(0, Number.isFinite(ms) ? ms : 0));
    return LABEL_W + (clamped / this.end_ms) * PLOT_W;
  }
}

function r(n: number): string {
  return (Math.round(n * 10) / 10).toString();
}

/** How finely a lane is drawn; a lane over its cap is redrawn with a coarser one (×2 each time). */
interface Resolution {
  bucket_px: number;
  minSpan_px: number;
  maxBusy_px: number;
}

function resolution(factor: number): Resolution {
  return { bucket_px: TIMELINE_LIMITS.POINT_BUCKET_PX * factor, minSpan_px: TIMELINE_LIMITS.MIN_SPAN_PX * factor, maxBusy_px: TIMELINE_LIMITS.MAX_BUSY_PX * factor };
}

interface SpanIn {
  start_ms: number;
  end_ms: number;
  label: string;
  /** Hover text, built only when drawn. */
  title: () => string;
}

/** Spans as bars; narrow neighbours merged into one gray "busy" bar. */
function spanShapes(spans: SpanIn[], scale: Scale, res: Resolution, y: number, h: number, kind: TimelineKind, color: (label: string) => string, cls: string): Shape[] {
  const out: Shape[] = [];
  let busy: SpanIn[] = [];
  const flushBusy = (): void => {
    if (busy.length === 0) return;
    const first = busy[0] as SpanIn;
    const last = busy[busy.length - 1] as SpanIn;
    const x1 = scale.x(first.start_ms);
    const w = Math.max(res.minSpan_px, scale.x(last.end_ms) - x1);
    if (busy.length === 1) {
      out.push({ priority: PRIORITY[kind], at_ms: first.start_ms, svg: () => `<rect class="${cls}" x="${r(x1)}" y="${y}" width="${r(w)}" height="${h}" fill="${color(first.label)}"><title>${x(first.title())}</title></rect>` });
    } else {
      const labels = [...new Set(busy.map((b) => b.label))];
      const shown = labels.slice(0, TIMELINE_LIMITS.MAX_LABELS_IN_TITLE).join(', ') + (labels.length > TIMELINE_LIMITS.MAX_LABELS_IN_TITLE ? ', …' : '');
      const n = busy.length;
      const title = (): string => `${fmtSeconds(first.start_ms)}–${fmtSeconds(last.end_ms)}: ${n} ${kind} spans too short to draw (${shown})`;
      out.push({ priority: PRIORITY[kind], at_ms: first.start_ms, svg: () => `<rect class="${cls} busy" x="${r(x1)}" y="${y}" width="${r(w)}" height="${h}" fill="${MARK_COLORS.busy}"><title>${x(title())}</title></rect>` });
    }
    busy = [];
  };
  for (const s of spans) {
    const w = scale.x(s.end_ms) - scale.x(s.start_ms);
    if (w >= res.minSpan_px) {
      flushBusy();
      busy = [s];
      flushBusy();
      continue;
    }
    const first = busy[0];
    if (first && scale.x(s.end_ms) - scale.x(first.start_ms) > res.maxBusy_px) flushBusy();
    busy.push(s);
  }
  flushBusy();
  return out;
}

/** Points of one kind bucketed by pixel; `mark` draws one mark at x with a title. */
function pointShapes(events: TimelineEvent[], scale: Scale, res: Resolution, kind: TimelineKind, mark: (px: number, title: string, count: number) => string): Shape[] {
  const buckets = new Map<number, TimelineEvent[]>();
  for (const e of events) {
    const key = Math.floor((scale.x(e.at_ms) - LABEL_W) / res.bucket_px);
    const list = buckets.get(key);
    if (list) list.push(e);
    else buckets.set(key, [e]);
  }
  const out: Shape[] = [];
  for (const list of buckets.values()) {
    const first = list[0] as TimelineEvent;
    const title = (): string =>
      list.length === 1
        ? describe(first)
        : `${list.length} × ${kind}\n${list.slice(0, TIMELINE_LIMITS.MAX_LABELS_IN_TITLE).map(describe).join('\n')}${list.length > TIMELINE_LIMITS.MAX_LABELS_IN_TITLE ? '\n…' : ''}`;
    out.push({ priority: PRIORITY[kind], at_ms: first.at_ms, svg: () => mark(scale.x(first.at_ms), title(), list.length) });
  }
  return out;
}

/** Agent-state events become spans ending at the next state (or the scenario's end). */
function agentSpans(events: TimelineEvent[], end_ms: number): SpanIn[] {
  const sorted = events.filter((e) => e.kind === 'agent-state').sort((a, b) => a.at_ms - b.at_ms);
  return sorted.map((e, i) => {
    const next = sorted[i + 1];
    const stop = e.end_ms ?? (next ? next.at_ms : end_ms);
    return { start_ms: e.at_ms, end_ms: Math.max(e.at_ms, stop), label: e.label, title: () => describe({ ...e, end_ms: Math.max(e.at_ms, stop) }) };
  });
}

/** Mark glyphs drawn once per page (<use href="#mk-…">), each relative to its lane's top-left. */
export function renderMarkDefs(): string {
  const full = (id: string, color: string, w: number): string => `<line id="${id}" x1="0" x2="0" y1="1" y2="${LANE_H - 3}" stroke="${color}" stroke-width="${w}"/>`;
  return (
    `<svg class="mark-defs" width="0" height="0" aria-hidden="true" style="position:absolute"><defs>` +
    `<g id="mk-cut">${full('mk-cut-l', MARK_COLORS.powerCut, 2)}<path d="M-4 -1h8l-4 6z" fill="${MARK_COLORS.powerCut}"/></g>` +
    `<g id="mk-cut2">${full('mk-cut2-l', MARK_COLORS.powerCut, 3)}<path d="M-5 -2h10l-5 7z" fill="${MARK_COLORS.powerCut}" stroke="#000" stroke-width="0.6"/></g>` +
    full('mk-boot', MARK_COLORS.boot, 1.5) +
    full('mk-boot2', MARK_COLORS.boot, 2.5) +
    full('mk-reboot', MARK_COLORS.reboot, 1) +
    full('mk-reboot2', MARK_COLORS.reboot, 2) +
    `<path id="mk-net" d="M-3.5 24h7l-3.5 7z" fill="${MARK_COLORS.netFault}"/>` +
    `<path id="mk-net2" d="M-3.5 24h7l-3.5 7z" fill="${MARK_COLORS.netFault}" stroke="#000" stroke-width="0.6"/>` +
    `<path id="mk-fault" d="M-3 24l6 6m0 -6l-6 6" stroke="${MARK_COLORS.fault}" stroke-width="1.6"/>` +
    `<path id="mk-fault2" d="M-3 24l6 6m0 -6l-6 6" stroke="${MARK_COLORS.fault}" stroke-width="2.4"/>` +
    `<circle id="mk-report" cx="0" cy="30" r="2.5" fill="${MARK_COLORS.report}"/>` +
    `<circle id="mk-report2" cx="0" cy="30" r="3.5" fill="${MARK_COLORS.report}"/>` +
    `</defs></svg>`
  );
}

/** One mark: a <use> of a glyph at x in lane coordinates; the "2" glyph when it stands for several events. */
function use(glyph: string, cls: string, px: number, title: string, count: number): string {
  return `<use class="${cls}" href="#mk-${glyph}${count > 1 ? '2' : ''}" x="${r(px)}"><title>${x(title)}</title></use>`;
}

/** The shapes of one lane, in lane coordinates (the lane's <g> is translated to its row). */
function drawLane(d: DeviceResult, scale: Scale, res: Resolution): Shape[] {
  const byKind = (k: TimelineKind): TimelineEvent[] => d.timeline.filter((e) => e.kind === k && Number.isFinite(e.at_ms)).sort((a, b) => a.at_ms - b.at_ms);
  const shapes: Shape[] = [];

  // Agent states (top bar) and flash phases (thin bar under it).
  shapes.push(...spanShapes(agentSpans(d.timeline, scale.end_ms), scale, res, 3, 12, 'agent-state', stateColor, 'agent-state'));
  const phases = byKind('flash-phase').map((e) => ({ start_ms: e.at_ms, end_ms: Math.max(e.at_ms, e.end_ms ?? e.at_ms), label: e.label, title: () => describe(e) }));
  shapes.push(...spanShapes(phases, scale, res, 17, 6, 'flash-phase', phaseColor, 'flash-phase'));

  // Windows (a blackhole, a fault that lasts) are shaded in the marks row; points are marks.
  for (const kind of ['net-fault', 'fault'] as const) {
    const events = byKind(kind);
    const color = kind === 'net-fault' ? MARK_COLORS.netFault : MARK_COLORS.fault;
    const isWindow = (e: TimelineEvent): boolean => e.end_ms !== undefined && e.end_ms > e.at_ms;
    shapes.push(
      ...spanShapes(
        events.filter(isWindow).map((e) => ({ start_ms: e.at_ms, end_ms: e.end_ms ?? e.at_ms, label: e.label, title: () => describe(e) })),
        scale,
        res,
        24,
        9,
        kind,
        () => color,
        `${kind} window`,
      ).map((s) => ({ ...s, svg: () => s.svg().replace('<rect ', '<rect fill-opacity="0.35" ') })),
    );
    const glyph = kind === 'net-fault' ? 'net' : 'fault';
    shapes.push(...pointShapes(events.filter((e) => !isWindow(e)), scale, res, kind, (px, title, count) => use(glyph, kind, px, title, count)));
  }
  shapes.push(...pointShapes(byKind('report'), scale, res, 'report', (px, title, count) => use('report', 'report', px, title, count)));
  shapes.push(...pointShapes(byKind('boot'), scale, res, 'boot', (px, title, count) => use('boot', 'boot', px, title, count)));
  shapes.push(...pointShapes(byKind('reboot'), scale, res, 'reboot', (px, title, count) => use('reboot', 'reboot', px, title, count)));
  shapes.push(...pointShapes(byKind('power-cut'), scale, res, 'power-cut', (px, title, count) => use('cut', 'power-cut', px, title, count)));

  return shapes;
}

/**
 * A lane within `cap` shapes: drawn at the finest resolution that fits (coarsening ×2 up to
 * MAX_COARSEN times, so every kind stays visible over the whole run), and only then truncated,
 * most important kinds first.
 */
function laneShapes(d: DeviceResult, scale: Scale, cap: number): { shapes: Shape[]; dropped: number; factor: number } {
  let factor = 1;
  let shapes = drawLane(d, scale, resolution(factor));
  for (let i = 0; i < TIMELINE_LIMITS.MAX_COARSEN && shapes.length > cap; i++) {
    factor *= 2;
    shapes = drawLane(d, scale, resolution(factor));
  }
  if (shapes.length <= cap) return { shapes, dropped: 0, factor };
  const kept = [...shapes].sort((a, b) => a.priority - b.priority || a.at_ms - b.at_ms).slice(0, cap);
  return { shapes: kept, dropped: shapes.length - cap, factor };
}

/** Server events (shared by all devices) deduplicated by time and label. */
function serverEvents(s: ScenarioResult): TimelineEvent[] {
  const seen = new Map<string, TimelineEvent>();
  for (const d of s.devices) for (const e of d.timeline) if (e.kind === 'server' && Number.isFinite(e.at_ms)) seen.set(`${e.at_ms}\u0000${e.label}`, e);
  return [...seen.values()].sort((a, b) => a.at_ms - b.at_ms);
}

/** The per-lane cap for a page with `lanes` lanes in all. */
export function laneCapFor(lanes: number): number {
  const share = Math.floor(TIMELINE_LIMITS.PAGE_SHAPE_BUDGET / Math.max(1, lanes));
  return Math.min(TIMELINE_LIMITS.MAX_SHAPES_PER_LANE, Math.max(TIMELINE_LIMITS.MIN_SHAPES_PER_LANE, share));
}

export interface TimelineSvg {
  svg: string;
  /** Shapes left out because a lane hit MAX_SHAPES_PER_LANE, over all lanes. */
  droppedShapes: number;
  /** Lanes drawn at a coarser resolution to stay within their cap. */
  coarsenedLanes: number;
}

export function renderTimeline(s: ScenarioResult, laneCap: number = TIMELINE_LIMITS.MAX_SHAPES_PER_LANE): TimelineSvg {
  const end_ms = timelineEnd(s);
  const scale = new Scale(end_ms);
  const lanes = s.devices.length;
  const height = TOP + lanes * LANE_H + AXIS_H;
  const parts: string[] = [];
  parts.push(`<svg class="timeline" viewBox="0 0 ${WIDTH} ${height}" width="100%" role="img" aria-label="${x(`timeline of ${s.name}: ${lanes} devices over ${fmtSeconds(end_ms)} simulated`)}">`);

  // Time axis: grid lines and labels in simulated seconds, top and bottom.
  const step = tickStep(end_ms, 8);
  const axis: string[] = [];
  for (let t = 0, n = 0; t <= end_ms + 1e-9 && n < 100; t += step, n++) {
    const px = r(scale.x(t));
    axis.push(`<line x1="${px}" x2="${px}" y1="${TOP - 4}" y2="${TOP + lanes * LANE_H}" class="grid"/>`);
    axis.push(`<text x="${px}" y="${TOP + lanes * LANE_H + 14}" class="tick">${fmtSeconds(t)}</text>`);
  }
  parts.push(`<g class="axis">${axis.join('')}<text x="${LABEL_W - 8}" y="${TOP + lanes * LANE_H + 14}" class="axis-title">simulated time</text></g>`);

  let dropped = 0;
  let coarsened = 0;
  s.devices.forEach((d, i) => {
    const y = TOP + i * LANE_H;
    const lane = laneShapes(d, scale, laneCap);
    dropped += lane.dropped;
    if (lane.factor > 1) coarsened++;
    const label = d.id.length > 24 ? `${d.id.slice(0, 23)}…` : d.id;
    const final = finalLabel(d);
    const sub = `${d.group} · ${d.initialVersion}→${final}`;
    const laneTitle = `${d.id} (group ${d.group}): ${d.initialVersion} → ${final}; ${d.reboots} reboots, ${d.powerCuts} power cuts, ${d.netFaults} network faults, ${d.reports.length} reports, ${d.timeline.length} events${lane.factor > 1 ? `; drawn ${lane.factor}× coarser to stay within ${laneCap} marks` : ''}${lane.dropped > 0 ? `; ${lane.dropped} marks not drawn (lane cap ${laneCap})` : ''}`;
    parts.push(
      `<g class="lane${d.bricked ? ' bricked' : ''}" data-lane="${x(d.id)}" transform="translate(0 ${y})">` +
        `<rect class="lane-bg" x="0" y="0" width="${WIDTH}" height="${LANE_H}"/>` +
        `<text class="lane-label" x="6" y="14">${x(label)}<title>${x(laneTitle)}</title></text>` +
        `<text class="lane-sub" x="6" y="28">${x(sub.length > 34 ? `${sub.slice(0, 33)}…` : sub)}</text>` +
        lane.shapes.map((sh) => sh.svg()).join('') +
        (lane.dropped > 0 ? `<text class="lane-cap" x="${WIDTH - RIGHT_PAD}" y="12">+${lane.dropped} not drawn</text>` : '') +
        `</g>`,
    );
  });

  // Server events: one dashed line across every lane, a diamond on top.
  const server = serverEvents(s);
  const serverMarks = pointShapes(server, scale, resolution(1), 'server', (px, title) =>
    `<g class="server"><line x1="${r(px)}" x2="${r(px)}" y1="${TOP - 8}" y2="${TOP + lanes * LANE_H}" stroke="${MARK_COLORS.server}" stroke-dasharray="3 3"/><path d="M${r(px)} ${TOP - 14}l4 4l-4 4l-4 -4z" fill="${MARK_COLORS.server}"/><title>${x(title)}</title></g>`,
  );
  parts.push(serverMarks.map((m) => m.svg()).join(''));
  parts.push('</svg>');
  return { svg: parts.join(''), droppedShapes: dropped, coarsenedLanes: coarsened };
}

/** The legend drawn once at the top of the page. */
export function renderLegend(): string {
  const items: [string, string][] = [
    [`<rect x="0" y="3" width="18" height="10" fill="${stateColor('downloading')}"/>`, 'agent state (color per state, as in the statechart)'],
    [`<rect x="0" y="5" width="18" height="6" fill="${phaseColor('swap')}"/>`, 'flash phase'],
    [`<rect x="0" y="3" width="18" height="10" fill="${MARK_COLORS.busy}"/>`, 'many short spans merged'],
    [`<line x1="9" x2="9" y1="0" y2="16" stroke="${MARK_COLORS.powerCut}" stroke-width="2"/><path d="M5 0h8l-4 6z" fill="${MARK_COLORS.powerCut}"/>`, 'power cut'],
    [`<line x1="9" x2="9" y1="0" y2="16" stroke="${MARK_COLORS.boot}" stroke-width="1.5"/>`, 'boot'],
    [`<line x1="9" x2="9" y1="0" y2="16" stroke="${MARK_COLORS.reboot}"/>`, 'reboot'],
    [`<path d="M5.5 4h7l-3.5 7z" fill="${MARK_COLORS.netFault}"/>`, 'network fault (shaded: a window)'],
    [`<path d="M6 4l6 6m0 -6l-6 6" stroke="${MARK_COLORS.fault}" stroke-width="1.6"/>`, 'other fault'],
    [`<circle cx="9" cy="8" r="2.5" fill="${MARK_COLORS.report}"/>`, 'report sent'],
    [`<line x1="9" x2="9" y1="0" y2="16" stroke="${MARK_COLORS.server}" stroke-dasharray="3 3"/>`, 'server event'],
  ];
  return `<ul class="legend">${items.map(([icon, text]) => `<li><svg viewBox="0 0 18 16" width="18" height="16" aria-hidden="true">${icon}</svg> ${x(text)}</li>`).join('')}</ul>`;
}
