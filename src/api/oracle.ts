/**
 * API facade, the oracle for one device built with createDevice: FAULTS.md's seven invariants
 * judged from the device's DeviceRecorder (kept since createDevice) and the server's records of
 * it, exactly as a scenario judges each of its devices (src/scenario/oracle.ts). What the device
 * should converge on defaults to what the server offers it now.
 */
import { InputError } from '../errors.js';
import { sameVersionText } from '../image/index.js';
import type { ReportRecord } from '../server/index.js';
import { checkOracle as judge } from '../scenario/oracle.js';
import type { OracleExpectation } from '../scenario/oracle.js';
import type { DeviceResult, InvariantResult, Violation } from '../scenario/result.js';
import type { DeviceHandle } from './device.js';
import type { ServerHandle } from './server.js';

/** Scenario defaults (src/scenario/runner.ts). */
const DEFAULT_MAX_DOWNLOADS = 10;

export interface CheckOracleOptions {
  /**
   * The version the device should end confirmed on (default: the version the server offers it
   * now, package main; null: it should stay on its initial version).
   */
  targetVersion?: string | null;
  /** The target is expected to fail (self-test, refused ...): the device should end on its initial version. Default false. */
  targetFails?: boolean;
  /** False when the run was cut short before the device could converge (invariant 3 then does not apply). Default true. */
  mustConverge?: boolean;
  /** Bounded effort (defaults: the device's maxReboots, 10 downloads, no byte limit). */
  maxReboots?: number;
  maxDownloads?: number;
  maxBytes?: number;
}

export interface OracleVerdict {
  /** Every invariant holds. */
  passed: boolean;
  /** One verdict per invariant, in FAULTS.md order. */
  invariants: InvariantResult[];
  violations: Violation[];
  /** The device as the JSON report shows it (final version, counts, reports, timeline). */
  device: DeviceResult;
  /** What the verdict was judged against. */
  expectation: OracleExpectation;
}

/** Judge `device` (from createDevice) against the oracle, with the reports `server` recorded from it. */
export function checkOracle(device: DeviceHandle, server?: ServerHandle | null, options: CheckOracleOptions = {}): OracleVerdict {
  if (typeof device !== 'object' || device === null || !('recorder' in device)) throw new InputError('BAD_ARGUMENT', 'checkOracle: expected a device from createDevice');
  const srv = server === undefined ? device.serverHandle : server;
  let reports: ReportRecord[] = [];
  let offered: string | null = null;
  if (srv) {
    // the model stays readable after close(): a verdict may come after the server stopped
    const model = srv.server.model;
    if (model.device(device.identity)) {
      reports = model.reports(device.identity).history;
      offered = model.desiredFor(device.identity).components.find((c) => c.package === 'main')?.version ?? null;
    }
  }
  const rec = device.recorder;
  const previous = rec.options.initialVersion;
  let target = options.targetVersion === undefined ? offered : options.targetVersion;
  if (target !== null && sameVersionText(target, previous)) target = null;
  const expectation: OracleExpectation = {
    targetVersion: target,
    previousVersion: previous,
    targetFails: options.targetFails ?? false,
    mustConverge: options.mustConverge ?? true,
    limits: {
      maxReboots: options.maxReboots ?? device.device.maxReboots,
      maxDownloads: options.maxDownloads ?? DEFAULT_MAX_DOWNLOADS,
      maxBytes: options.maxBytes ?? Number.MAX_SAFE_INTEGER,
    },
  };
  const replay = `(API) createDevice ${device.name} on ${device.board.name}, ${device.strategy}`;
  const verdict = judge({ recorder: rec, reports, expect: expectation, replay });
  return {
    passed: verdict.invariants.every((i) => i.passed),
    invariants: verdict.invariants,
    violations: verdict.violations,
    device: rec.result(reports),
    expectation,
  };
}
