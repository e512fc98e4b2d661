/**
 * The oracle: FAULTS.md's seven invariants, judged from flash and server records, never from the
 * agent's account of itself. Evidence comes from a DeviceRecorder (boots seen with slot0 verified
 * at each, flash ops classified, the storage snapshot) and from the bootloader model run on a
 * clone of the final flash.
 *
 *   1 never-bricked            boot() on a clone boots, and slot0 verifies with a trusted key
 *   2 only-verified-images-run every boot's slot0 verified when it ran
 *   3 converges                final version/confirmed as OracleExpectation says
 *   4 no-revert-of-confirmed   no revert after the running image was confirmed on flash; no test
 *                              image later booted confirmed without a confirm written while it ran
 *   5 storage-untouched        storage bytes equal the snapshot taken at start
 *   6 honest-reports           the server's last accepted report names the running version, and
 *                              a success report only for a confirmed image of that version
 *   7 bounded-effort           reboots, downloads, bytes within limits; no boot loop
 */
import { sameVersionText } from '../image/header.js';
import type { ReportRecord } from '../server/types.js';
import { INVARIANTS } from './result.js';
import type { InvariantId, InvariantResult, Violation } from './result.js';
import type { DeviceRecorder, FinalState } from './recorder.js';

export interface OracleExpectation {
  /** The version a good update should end confirmed on; null when no update is expected (the device should stay on previousVersion). */
  targetVersion: string | null;
  previousVersion: string;
  /** The target is expected to fail (self-test fail/crash/hang, or refused: bad signature, wrong key, downgrade, oversize, wrong board...) so the device should end confirmed on previousVersion (overwrite-only: see FAULTS.md invariant 3). */
  targetFails: boolean;
  /** False when the run ended before the device could converge (e.g. unbounded faults until the wall limit): invariant 3 is then reported as not applicable. */
  mustConverge: boolean;
  limits: { maxReboots: number; maxDownloads: number; maxBytes: number };
}

export interface OracleInput {
  recorder: DeviceRecorder;
  reports: ReportRecord[]; // server.model.reports(identity).history
  expect: OracleExpectation;
  replay: string; // the command that replays this case
  opIndex?: number | null; // the cut that produced this case, if any
}

/** Golioth report codes the oracle reads (FORMATS.md). */
const REPORT_FIRMWARE_UPDATED_SUCCESSFULLY = 1;
const REPORT_STATE_IDLE = 0;

/** Same version, whatever the spelling ("2.0.0" and "2.0.0+0"); plain equality for text that does not parse. */
export function sameVersion(a: string | null | undefined, b: string | null | undefined): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return a === b;
  return sameVersionText(a, b);
}

function swapping(strategy: string): boolean {
  return strategy !== 'overwrite-only';
}

export function checkOracle(input: OracleInput): { invariants: InvariantResult[]; violations: Violation[] } {
  const rec = input.recorder;
  const o = rec.options;
  const ex = input.expect;
  const results = new Map<InvariantId, InvariantResult>();
  const violations: Violation[] = [];
  const at_ms = o.clock.now() - o.startedAt_ms;
  const fail = (id: InvariantId, message: string, when: number | null = at_ms): void => {
    violations.push({ invariant: id, device: o.id, opIndex: input.opIndex ?? null, at_ms: when, message, replay: input.replay });
    const prev = results.get(id);
    if (!prev || prev.passed) results.set(id, { id, passed: false, detail: message });
  };
  const pass = (id: InvariantId, detail = 'checked'): void => {
    if (!results.has(id)) results.set(id, { id, passed: true, detail });
  };
  const final: FinalState = rec.finalState();

  // 1. never bricked: the bootloader on a clone of the final flash boots a valid, trusted image.
  if (!final.booted) fail('never-bricked', `device ${o.id} is bricked: the bootloader finds no bootable image (${final.reason ?? 'unknown'})`);
  else if (!final.verified) fail('never-bricked', `device ${o.id}: the bootloader boots slot0 ${final.version ?? '?'} but it does not verify with a trusted key (${final.verifyMessage})`);
  else if (rec.bootLoop) fail('never-bricked', `device ${o.id} ended in a boot loop after ${rec.reboots} reboots`);
  pass('never-bricked');

  // 2. every image that ran verified (checked by the recorder on slot0's bytes at each boot).
  for (const b of rec.boots) {
    if (!b.verified) fail('only-verified-images-run', `device ${o.id} ran slot0 ${b.version} (boot action ${b.action}) although it does not verify: ${b.verifyMessage}`, b.at_ms);
  }
  pass('only-verified-images-run', rec.boots.length === 0 ? 'not applicable: the device never booted' : 'checked');

  // 3. converges.
  if (!ex.mustConverge) {
    pass('converges', 'not applicable: the run ended before the device could converge');
  } else {
    const ranTarget = ex.targetVersion !== null && rec.boots.some((b) => sameVersion(b.version, ex.targetVersion));
    let wantVersion: string;
    let wantConfirmed = true;
    let note = '';
    if (ex.targetVersion === null) wantVersion = ex.previousVersion;
    else if (!ex.targetFails) wantVersion = ex.targetVersion;
    else if (!swapping(o.strategy) && ranTarget) {
      // overwrite-only cannot revert: once the failing target ran, it stays
      wantVersion = ex.targetVersion;
      wantConfirmed = false;
      note = ' (overwrite-only: no rollback was possible)';
    } else wantVersion = ex.previousVersion;
    // overwrite-only has no test state: an image copied into slot0 stays whatever image_ok says
    if (!swapping(o.strategy)) wantConfirmed = false;
    const what = `${wantVersion}${wantConfirmed ? ' confirmed' : ''}`;
    if (!final.booted) fail('converges', `device ${o.id} should end on ${what}${note} but nothing boots`);
    else if (!sameVersion(final.version, wantVersion) || (wantConfirmed && !final.confirmed)) {
      fail('converges', `device ${o.id} should end on ${what}${note} but the bootloader boots ${final.version ?? '?'}${final.confirmed ? ' confirmed' : ' unconfirmed'}`);
    }
    pass('converges', note ? `checked${note}` : 'checked');
  }

  // 4. a confirmed image is never reverted; a test image is never made permanent without a confirm.
  if (!swapping(o.strategy)) {
    pass('no-revert-of-confirmed', 'not applicable: overwrite-only has no test images and cannot revert');
  } else {
    const boots = rec.boots;
    for (let i = 1; i < boots.length; i++) {
      const prev = boots[i - 1]!;
      const b = boots[i]!;
      const prevConfirmed = prev.confirmed || prev.confirmedWhileRunning;
      if (b.action === 'revert' && prevConfirmed) {
        fail('no-revert-of-confirmed', `device ${o.id}: ${prev.version} was confirmed on flash, yet the bootloader reverted it to ${b.version}`, b.at_ms);
      }
      // the same test image booted again as confirmed, with no confirm written by the firmware that ran it
      if (!prev.confirmed && !prev.confirmedWhileRunning && sameVersion(b.version, prev.version) && b.confirmed && b.action !== 'perm') {
        fail('no-revert-of-confirmed', `device ${o.id}: test image ${b.version} became permanent (image_ok set) though its firmware never wrote a confirm`, b.at_ms);
      }
    }
    // the end: the running image is confirmed on flash, but was it ever confirmed by its firmware?
    const last = boots[boots.length - 1];
    if (last && final.booted && sameVersion(final.version, last.version) && final.confirmed && !last.confirmed && !last.confirmedWhileRunning && last.action === 'test') {
      fail('no-revert-of-confirmed', `device ${o.id}: test image ${last.version} reads confirmed though its firmware never wrote a confirm`);
    }
    pass('no-revert-of-confirmed');
  }

  // 5. storage partition byte for byte.
  const storage = rec.storageChange();
  if (storage === null) pass('storage-untouched', `not applicable: board ${o.board} has no storage partition`);
  else if (!storage.unchanged) fail('storage-untouched', `device ${o.id}: the storage partition changed (first difference at offset 0x${storage.firstDiff.toString(16)})`);
  else pass('storage-untouched');

  // 6. the last report the server accepted matches what the device runs.
  const accepted = input.reports.filter((r) => r.report !== null);
  const lastRec = accepted[accepted.length - 1];
  if (!lastRec || !lastRec.report) {
    pass('honest-reports', 'not applicable: the server recorded no report from this device');
  } else {
    const rep = lastRec.report;
    // what it runs: the image on the device now, else the one it ran when the run ended (the
    // device may be off), else what the bootloader would boot
    const running = o.device.image?.version ?? rec.lastRunning;
    const runsVersion = running ?? final.version;
    // overwrite-only cannot revert: what runs is permanent whatever image_ok says
    const runsConfirmed = !swapping(o.strategy) || (running !== null ? rec.confirmedNow : final.booted && final.confirmed);
    const when = lastRec.at_ms - o.startedAt_ms;
    if (runsVersion === null) fail('honest-reports', `device ${o.id} last reported v=${rep.v ?? 'null'} but runs nothing`, when);
    else if (!sameVersion(rep.v, runsVersion)) fail('honest-reports', `device ${o.id} last reported v=${rep.v ?? 'null'} (s=${rep.s} r=${rep.r}) but runs ${runsVersion}`, when);
    else if (rep.r === REPORT_FIRMWARE_UPDATED_SUCCESSFULLY && (!runsConfirmed || (rep.t !== null && !sameVersion(rep.t, runsVersion)))) {
      fail('honest-reports', `device ${o.id} last reported a successful update to ${rep.t ?? rep.v ?? '?'} but runs ${runsVersion}${runsConfirmed ? '' : ' unconfirmed'}`, when);
    } else if (rep.r !== REPORT_FIRMWARE_UPDATED_SUCCESSFULLY && rep.t !== null && sameVersion(rep.t, runsVersion) && runsConfirmed && sameVersion(ex.targetVersion, runsVersion) && rep.s === 0) {
      fail('honest-reports', `device ${o.id} last reported a failed update to ${rep.t} (r=${rep.r}) but runs it confirmed`, when);
    }
    else if (ex.mustConverge && rep.s !== REPORT_STATE_IDLE && rep.r !== REPORT_FIRMWARE_UPDATED_SUCCESSFULLY && !(running !== null && !rec.confirmedNow)) {
      // settled: no update is in flight on the device, so "downloading/updating" is not what it does
      fail('honest-reports', `device ${o.id} last reported an update in progress (s=${rep.s} r=${rep.r} t=${rep.t ?? 'null'}) but it has settled on ${runsVersion}${runsConfirmed ? ' confirmed' : ''}`, when);
    }
    pass('honest-reports');
  }

  // 7. bounded effort.
  const lim = ex.limits;
  if (rec.reboots > lim.maxReboots) fail('bounded-effort', `device ${o.id} rebooted ${rec.reboots} times (limit ${lim.maxReboots})`);
  if (rec.bootLoop) fail('bounded-effort', `device ${o.id} fell into a boot loop`);
  const downloads = rec.downloadCount;
  if (downloads > lim.maxDownloads) fail('bounded-effort', `device ${o.id} started ${downloads} downloads from the first block (limit ${lim.maxDownloads})`);
  if (rec.bytesDownloaded > lim.maxBytes) fail('bounded-effort', `device ${o.id} wrote ${rec.bytesDownloaded} download bytes to slot1 (limit ${lim.maxBytes})`);
  pass('bounded-effort');

  return { invariants: INVARIANTS.map((i) => results.get(i.id) ?? { id: i.id, passed: true, detail: 'checked' }), violations };
}

/** Combine per-device verdicts into the scenario's seven InvariantResults. */
export function mergeInvariants(perDevice: InvariantResult[][]): InvariantResult[] {
  return INVARIANTS.map((inv) => {
    const all = perDevice.map((d) => d.find((r) => r.id === inv.id)).filter((r): r is InvariantResult => r !== undefined);
    const failed = all.filter((r) => !r.passed);
    if (failed.length > 0) return { id: inv.id, passed: false, detail: failed.length > 1 ? `${failed[0]!.detail} (and ${failed.length - 1} more device${failed.length > 2 ? 's' : ''})` : failed[0]!.detail };
    if (all.length === 0) return { id: inv.id, passed: true, detail: 'not applicable: no device' };
    const checked = all.find((r) => r.detail.startsWith('checked'));
    return { id: inv.id, passed: true, detail: checked ? checked.detail : all[0]!.detail };
  });
}
