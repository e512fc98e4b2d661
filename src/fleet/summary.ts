/** The human summary of a fleet result (the CLI prints it; `report merge` too). */
import type { FleetResult, MixCount } from './types.js';

/** "a 14/14 (20 devices), b 6/6 (6)": updated/targeted and devices per key. */
function mixLine(m: Record<string, MixCount>): string {
  return Object.entries(m)
    .sort((a, b) => a[0].localeCompare(b[0]))
    .map(([k, c]) => `${k} ${c.updated}/${c.targeted} (${c.devices} devices)`)
    .join(', ');
}

function fmtMs(ms: number | null): string {
  if (ms === null) return 'not reached';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`;
}

export function renderFleetSummary(r: FleetResult): string {
  const lines: string[] = [];
  const shard = r.shard.count > 1 ? (r.shard.index === 0 ? ` (${r.shard.count} shards merged)` : ` (shard ${r.shard.index}/${r.shard.count} of ${r.fleetDevices})`) : '';
  lines.push(`fleet: ${r.devices} devices${shard} on ${r.board}, release ${r.targetVersion} at ${r.rolloutPercent}% rollout, seed ${r.seed}`);
  lines.push(`  updated ${r.updated}/${r.expected} targeted${r.targetReached ? '' : ' — TARGET NOT REACHED'}, bricked ${r.bricked}${r.bricked > 0 ? ' — BRICKED DEVICES' : ''}, in ${(r.durationMs / 1000).toFixed(1)} s wall`);
  for (const m of r.milestones) lines.push(`  ${String(m.percent).padStart(3)}% updated (${m.devices} devices): ${fmtMs(m.simulated_ms)} simulated, ${fmtMs(m.wall_ms)} wall`);
  // only when the fleet is a mix (one board and one initial version: the header line says it all)
  if (r.byBoard && Object.keys(r.byBoard).length > 1) lines.push(`  by board (updated/targeted): ${mixLine(r.byBoard)}`);
  if (r.byInitialVersion && Object.keys(r.byInitialVersion).length > 1) lines.push(`  by initial version (updated/targeted): ${mixLine(r.byInitialVersion)}`);
  if (r.byGroup && Object.keys(r.byGroup).length > 0) lines.push(`  by group of scenario ${r.scenario ?? '?'} (updated/targeted): ${mixLine(r.byGroup)}`);
  if (r.chaosDevices !== undefined) {
    const faults = Object.entries(r.chaosFaults ?? {}).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    lines.push(`  network chaos: ${r.chaosDevices} devices behind a chaos proxy${r.chaosRate ? ` (rate ${r.chaosRate})` : ''}, ${r.chaosDatagrams ?? 0} datagrams, faults injected: ${faults}`);
  }
  lines.push(`  retries ${r.retries}, reboots ${r.reboots}, power cuts ${r.powerCuts}, bytes served ${r.bytesServed ?? 'n/a (external server)'}`);
  const reasons = Object.entries(r.failuresByReason).sort((a, b) => b[1] - a[1]);
  lines.push(`  failures by reason: ${reasons.length === 0 ? 'none' : reasons.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const d of r.failingDevices.slice(0, 10)) lines.push(`    ${d.identity}: ${d.reasons.join('; ')}`);
  if (r.failingDevices.length > 10) lines.push(`    … ${r.failingDevices.length - 10} more (see --json)`);
  lines.push(`  memory: ${(r.rssBytesPerDevice / 1024).toFixed(0)} KiB RSS per device (peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB), ${r.workers} worker thread(s), flash sectors stored ${r.sectorsStored}, shared ${r.sectorsShared}`);
  return lines.join('\n');
}

/** The fields CLI.md guarantees for `fleet --json`, then everything else. */
export function fleetJson(r: FleetResult): Record<string, unknown> {
  const { devices, updated, bricked, durationMs, rssBytesPerDevice, failuresByReason, ...rest } = r;
  return { devices, updated, bricked, durationMs, rssBytesPerDevice, failuresByReason, ...rest };
}
