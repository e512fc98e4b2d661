/**
 * The agent statechart drawn as inline SVG, read from the xstate machine object itself
 * (agentMachine.root: states, transitions, always, entry actions) so the picture cannot drift
 * from the code. Layout: rows top to bottom by longest forward path from the initial state
 * (back edges found by depth-first search), ordered by barycenter; edges to the next row are
 * curves, longer forward edges run down a channel on the left, back edges up a channel on the
 * right, so no edge crosses a node.
 * Every node is `<g data-state="path">`, its color the one the timeline uses for that state.
 */
import { agentMachine } from '../agent/machine.js';
import { assert } from '../errors.js';
import { escapeXml as x } from './format.js';
import { stateColor } from './palette.js';

/** The parts of an xstate v5 StateNode this drawing reads (structural, to stay within public shape). */
interface ChartNode {
  id: string;
  path: string[];
  states: Record<string, ChartNode>;
  initial?: { target?: ChartNode[] } | undefined;
  transitions: Map<string, { target?: ChartNode[] | undefined; guard?: unknown }[]>;
  always?: { target?: ChartNode[] | undefined; guard?: unknown }[] | undefined;
  entry: unknown[];
}

export interface ChartEdge {
  from: string;
  to: string;
  labels: string[];
  /** Not a chart transition: a compound state's initial child, or a reboot back to the start. */
  implicit: boolean;
}

export interface ChartModel {
  states: string[];
  initial: string;
  edges: ChartEdge[];
}

const MAX_STATES = 200; // a sanity bound on the walk

function pathOf(n: ChartNode): string {
  return n.path.join('.');
}

function eventLabel(type: string): string {
  if (type === '') return 'always';
  if (type.startsWith('xstate.done.actor')) return 'done';
  if (type.startsWith('xstate.error.actor')) return 'error';
  const after = /^xstate\.after\.([^.]+)\./.exec(type);
  if (after) return `after ${after[1]}`;
  return type;
}

function guardLabel(guard: unknown): string {
  if (guard === undefined || guard === null) return '';
  if (typeof guard === 'string') return ` [${guard}]`;
  if (typeof guard === 'object' && 'type' in guard && typeof (guard as { type: unknown }).type === 'string') return ` [${(guard as { type: string }).type}]`;
  return ' [cond]';
}

function hasAction(entry: unknown[], name: string): boolean {
  return entry.some((a) => a === name || (typeof a === 'object' && a !== null && 'type' in a && (a as { type: unknown }).type === name));
}

/** The chart as states + edges, from the machine object; `extraStates` (e.g. run.agentStates) are added as nodes. */
export function chartModel(extraStates: readonly string[] = []): ChartModel {
  const root = agentMachine.root as unknown as ChartNode;
  const states: string[] = [];
  const edges = new Map<string, ChartEdge>();
  const addEdge = (from: string, to: string, label: string, implicit: boolean): void => {
    const key = `${from}\u0000${to}\u0000${implicit}`;
    const e = edges.get(key);
    if (e) {
      if (!e.labels.includes(label)) e.labels.push(label);
    } else edges.set(key, { from, to, labels: [label], implicit });
  };
  const rootInitial = root.initial?.target?.[0];
  assert(rootInitial, 'agent machine has an initial state');
  const initial = pathOf(rootInitial);

  const walk = (n: ChartNode): void => {
    for (const child of Object.values(n.states)) {
      assert(states.length < MAX_STATES, 'agent machine has a bounded number of states');
      const from = pathOf(child);
      states.push(from);
      for (const [type, list] of child.transitions) {
        for (const t of list) for (const target of t.target ?? []) addEdge(from, pathOf(target), `${eventLabel(type)}${guardLabel(t.guard)}`, false);
      }
      for (const t of child.always ?? []) for (const target of t.target ?? []) addEdge(from, pathOf(target), `always${guardLabel(t.guard)}`, false);
      const init = child.initial?.target?.[0];
      if (init && Object.keys(child.states).length > 0) addEdge(from, pathOf(init), 'initial', true);
      if (hasAction(child.entry, 'rebootDevice')) addEdge(from, initial, 'reboot', true);
      walk(child);
    }
  };
  walk(root);
  for (const s of extraStates) if (!states.includes(s)) states.push(s);
  return { states, initial, edges: [...edges.values()] };
}

const NODE_W = 150;
const NODE_H = 30;
const COL_W = 176;
const ROW_H = 76; // node + a gap where routed edges run
const CHANNEL_STEP = 6;
const PAD = 16;
const ORDER_SWEEPS = 4;

/**
 * Rows (top to bottom): back edges are the edges into a state still on the depth-first stack
 * (so the main flow reads downwards); each state's row is the longest forward path to it.
 */
function layers(model: ChartModel): Map<string, number> {
  const out = new Map<string, string[]>();
  for (const e of model.edges) if (e.from !== e.to) out.set(e.from, [...(out.get(e.from) ?? []), e.to]);
  const back = new Set<string>();
  const state = new Map<string, 'open' | 'done'>();
  const visit = (s: string, depth: number): void => {
    assert(depth <= MAX_STATES, 'statechart walk is bounded');
    state.set(s, 'open');
    for (const t of out.get(s) ?? []) {
      const st = state.get(t);
      if (st === 'open') back.add(`${s}\u0000${t}`);
      else if (st === undefined) visit(t, depth + 1);
    }
    state.set(s, 'done');
  };
  visit(model.initial, 0);
  for (const s of model.states) if (!state.has(s)) visit(s, 0);
  // Longest path over the forward edges (a DAG now): relax |states| times at most.
  const layer = new Map<string, number>(model.states.map((s) => [s, 0]));
  for (let pass = 0; pass < model.states.length; pass++) {
    let changed = false;
    for (const e of model.edges) {
      if (e.from === e.to || back.has(`${e.from}\u0000${e.to}`)) continue;
      const want = (layer.get(e.from) ?? 0) + 1;
      if ((layer.get(e.to) ?? 0) < want) {
        layer.set(e.to, want);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return layer;
}

/** Order the states of each row by the mean position of their neighbours in the row above (barycenter). */
function orderRows(model: ChartModel, layer: Map<string, number>): string[][] {
  const nRows = Math.max(0, ...layer.values()) + 1;
  const rows: string[][] = Array.from({ length: nRows }, () => []);
  for (const s of model.states) rows[layer.get(s) ?? 0]?.push(s);
  for (let sweep = 0; sweep < ORDER_SWEEPS; sweep++) {
    for (let r = 1; r < nRows; r++) {
      const above = rows[r - 1] ?? [];
      const row = rows[r] ?? [];
      const score = new Map<string, number>();
      row.forEach((s, i) => {
        const ps = model.edges.filter((e) => e.to === s && above.includes(e.from)).map((e) => above.indexOf(e.from));
        score.set(s, ps.length > 0 ? ps.reduce((a, b) => a + b, 0) / ps.length : i);
      });
      row.sort((a, b) => (score.get(a) ?? 0) - (score.get(b) ?? 0));
    }
  }
  return rows;
}

function label(e: ChartEdge): string {
  return e.labels.join(' / ');
}

export function renderStatechart(extraStates: readonly string[] = []): string {
  const model = chartModel(extraStates);
  const layer = layers(model);
  const rows = orderRows(model, layer);
  const maxCols = Math.max(1, ...rows.map((r) => r.length));
  const routed = model.edges.filter((e) => e.from !== e.to && (layer.get(e.to) ?? 0) !== (layer.get(e.from) ?? 0) + 1);
  const nLeft = routed.filter((e) => (layer.get(e.to) ?? 0) > (layer.get(e.from) ?? 0)).length;
  const nRight = routed.length - nLeft;
  const leftMargin = PAD + nLeft * CHANNEL_STEP + 10;
  const bodyW = maxCols * COL_W;
  const width = leftMargin + bodyW + nRight * CHANNEL_STEP + 10 + PAD;
  const height = PAD + rows.length * ROW_H;

  const pos = new Map<string, { x: number; y: number }>();
  rows.forEach((row, r) => {
    const offset = ((maxCols - row.length) * COL_W) / 2; // center short rows
    row.forEach((s, c) => pos.set(s, { x: leftMargin + offset + c * COL_W + (COL_W - NODE_W) / 2, y: PAD + r * ROW_H }));
  });

  const edgeSvg: string[] = [];
  let leftK = 0;
  let rightK = 0;
  for (const e of model.edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    const la = layer.get(e.from) ?? 0;
    const lb = layer.get(e.to) ?? 0;
    let d: string;
    let text = '';
    if (e.from === e.to) {
      const x0 = a.x + NODE_W;
      d = `M${x0} ${a.y + 8} C${x0 + 26} ${a.y - 4} ${x0 + 26} ${a.y + NODE_H + 4} ${x0 + 2} ${a.y + NODE_H - 6}`;
    } else if (lb === la + 1) {
      const x1 = a.x + NODE_W / 2;
      const y1 = a.y + NODE_H;
      const x2 = b.x + NODE_W / 2;
      const y2 = b.y;
      d = `M${x1} ${y1} C${x1} ${y1 + 24} ${x2} ${y2 - 24} ${x2} ${y2}`;
      const l = label(e);
      // near the target end, so labels of edges leaving one node do not sit on each other
      text = `<text x="${Math.round(0.3 * x1 + 0.7 * x2)}" y="${Math.round(y2 - 13)}">${x(l.length > 30 ? `${l.slice(0, 29)}…` : l)}</text>`;
    } else if (lb > la) {
      // long forward edge: down a channel in the left margin
      const cx = leftMargin - 10 - leftK * CHANNEL_STEP;
      const gy1 = a.y + NODE_H + 8 + (leftK % 5) * 6;
      const gy2 = b.y - 8 - (leftK % 5) * 5;
      const x1 = a.x + 18;
      const x2 = b.x + 18;
      leftK++;
      d = `M${x1} ${a.y + NODE_H} V${gy1} H${cx} V${gy2} H${x2} V${b.y}`;
    } else {
      // back or same-row edge: up a channel in the right margin
      const cx = leftMargin + bodyW + 10 + rightK * CHANNEL_STEP;
      const gy1 = a.y + NODE_H + 8 + (rightK % 5) * 6;
      const gy2 = b.y - 8 - (rightK % 5) * 5;
      const x1 = a.x + NODE_W - 18;
      const x2 = b.x + NODE_W - 18;
      rightK++;
      d = `M${x1} ${a.y + NODE_H} V${gy1} H${cx} V${gy2} H${x2} V${b.y}`;
    }
    edgeSvg.push(
      `<g class="${e.implicit ? 'edge implicit' : 'edge'}" data-from="${x(e.from)}" data-to="${x(e.to)}"><path d="${d}" marker-end="url(#arrow)"/>${text}<title>${x(`${e.from} → ${e.to}: ${label(e)}`)}</title></g>`,
    );
  }

  const nodeSvg = model.states.map((s) => {
    const p = pos.get(s);
    assert(p, `state ${s} has a position`);
    const isCompound = model.edges.some((e) => e.from === s && e.implicit && e.labels.includes('initial'));
    const title = `${s}${s === model.initial ? ' (initial)' : ''}${isCompound ? ' (compound state)' : ''}`;
    return (
      `<g class="state${isCompound ? ' compound' : ''}${s === model.initial ? ' initial' : ''}" data-state="${x(s)}">` +
      `<rect x="${p.x}" y="${p.y}" width="${NODE_W}" height="${NODE_H}" rx="8" fill="${stateColor(s)}"${isCompound ? ' stroke-dasharray="5 3"' : ''}/>` +
      `<text x="${p.x + NODE_W / 2}" y="${p.y + NODE_H / 2 + 4}">${x(s)}</text><title>${x(title)}</title></g>`
    );
  });

  return (
    `<svg class="statechart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="agent statechart: ${model.states.length} states">` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="#455a64"/></marker></defs>` +
    `<g class="edges">${edgeSvg.join('')}</g><g class="nodes">${nodeSvg.join('')}</g></svg>`
  );
}

/** Every transition of the chart as a table (what the drawing's hover titles say, all at once). */
export function renderTransitionTable(extraStates: readonly string[] = []): string {
  const model = chartModel(extraStates);
  const rows = model.edges.map((e) => `<tr><td class="mono">${x(e.from)}</td><td class="mono">${x(e.to)}</td><td>${x(label(e))}${e.implicit ? ' <span class="na">(not a chart transition)</span>' : ''}</td></tr>`);
  return `<table class="transitions"><thead><tr><th>from</th><th>to</th><th>on</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}
