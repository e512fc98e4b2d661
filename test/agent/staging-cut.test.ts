/**
 * Power cut at every flash op from "verified" to the reboot into the new image (the pending-test
 * record in ota-state, then boot_set_pending's trailer writes), before the op and inside it
 * (torn). After power returns, the device must end confirmed on the new image with a true report:
 * no FIRMWARE_UPDATE_FAILED for an update that never booted, no success that did not happen.
 * Over UDP against the embedded server (127.0.0.1, clock 1:100).
 */
import { describe, expect, it } from 'vitest';
import { programSlot } from '../../src/boot/program.js';
import { bootIsImgConfirmed } from '../../src/boot/public.js';
import type { AgentEvent } from '../../src/agent/index.js';
import { OtaStateStore } from '../../src/device/index.js';
import { Flash } from '../../src/flash/index.js';
import { accepted, board, image, offer, rigsClosedAfterEach, waitFor } from './helpers.js';

const start = rigsClosedAfterEach();
const OLD = image('1.0.0');
const NEW = image('1.1.0');

function freshFlash(): Flash {
  const f = Flash.create(board);
  programSlot(f, 'slot0', OLD, 'confirm', 'swap-move');
  return f;
}

/** Run one update; returns the flash op index when verification starts and when the reboot into the new image begins. */
async function recordOps(): Promise<{ verifying: number; reboot: number }> {
  const flash = freshFlash();
  let verifying = -1;
  let reboot = -1;
  const events: AgentEvent[] = [];
  const r = await start({
    transport: 'udp',
    flash,
    agent: {
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'state' && e.state === 'verifying' && verifying < 0) verifying = flash.opIndex;
      },
    },
  });
  r.device.on('reboot', () => {
    if (reboot < 0) reboot = flash.opIndex;
  });
  await offer(r.server, NEW);
  r.device.powerOn();
  await waitFor(() => accepted(r.server).some((x) => x?.s === 3 && x.r === 1), 'the uncut update');
  return { verifying, reboot };
}

describe('power cut between "verified" and the reboot (pending-test record, boot_set_pending)', () => {
  it('at every op, before and inside: the device ends confirmed on the new image and every report is true', async () => {
    const ops = await recordOps();
    expect(ops.verifying).toBeGreaterThan(0);
    expect(ops.reboot).toBeGreaterThan(ops.verifying); // the staging writes lie between
    const cases: { atOp: number; kind: 'before' | 'inside' }[] = [];
    for (let op = ops.verifying; op < ops.reboot; op++) for (const kind of ['before', 'inside'] as const) cases.push({ atOp: op, kind });
    const outcomes: string[] = [];
    for (const c of cases) {
      const flash = freshFlash();
      const r = await start({ transport: 'udp', flash });
      await offer(r.server, NEW);
      let cut = false;
      r.device.on('power-cut', () => (cut = true));
      flash.armPowerCut(c.kind === 'before' ? { atOp: c.atOp, kind: 'before' } : { atOp: c.atOp, kind: 'inside', seed: c.atOp });
      r.device.powerOn();
      await waitFor(() => cut, `the cut at op ${c.atOp} (${c.kind})`);
      expect(r.device.phase).toBe('off');
      r.device.powerOn();
      const label = `cut ${c.kind} op ${c.atOp}`;
      await waitFor(() => accepted(r.server).some((x) => x?.s === 3 && x.r === 1) && r.device.image?.version === '1.1.0+0', `${label}: the update after power returns`, 40_000);
      await waitFor(() => r.events.some((e) => e.type === 'state' && e.state === 'idle' && e.version === '1.1.0+0'), `${label}: idle on the new image`);
      expect(bootIsImgConfirmed(flash, 'swap-move'), label).toBe(true);
      const reports = accepted(r.server);
      expect(reports.some((x) => x?.r === 8), `${label}: no FIRMWARE_UPDATE_FAILED for an update that never failed`).toBe(false);
      // a success is reported by the new image only
      expect(reports.filter((x) => x?.r === 1).every((x) => x?.v === '1.1.0+0'), label).toBe(true);
      const state = OtaStateStore.open(flash.area('ota-state')).state;
      expect(state.lastUpdate, label).toMatchObject({ targetVersion: '1.1.0+0', fromVersion: '1.0.0+0', result: 'confirmed' });
      outcomes.push(`${label}: ${r.events.filter((e) => e.type === 'download-start').length} download(s), ${r.device.reboots} reboot(s)`);
      await r.close();
    }
    expect(outcomes.length).toBe(cases.length);
  }, 240_000);
});

describe('a brown-out loop during one download', () => {
  it('four cuts in one download (ota-sim): each power-on resumes without using up an attempt, and the update converges', async () => {
    const events: AgentEvent[] = [];
    const cutAt = [6, 12, 18, 24];
    let device: { powerCut(): void; powerOn(): void } | null = null;
    let seen = 0; // blocks delivered since the last power-on
    const r = await start({
      transport: 'udp',
      agent: {
        persistEvery_blocks: 4,
        maxAttemptsPerVersion: 3,
        onEvent: (e) => {
          events.push(e);
          if (e.type === 'download-start') seen = 0;
          if (e.type !== 'block' || cutAt.length === 0 || ++seen < 4 || e.block < cutAt[0]!) return;
          cutAt.shift();
          // cut between two blocks, outside the firmware's call stack
          setImmediate(() => {
            device?.powerCut();
            device?.powerOn();
          });
        },
      },
    });
    device = r.device;
    await offer(r.server, NEW);
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.s === 3 && x.r === 1), 'the update after four cuts', 40_000);
    expect(cutAt).toEqual([]);
    const starts = events.flatMap((e) => (e.type === 'download-start' ? [e.startBlock] : []));
    expect(starts).toHaveLength(5);
    expect(starts.slice(1).every((b) => b > 0)).toBe(true); // every power-on resumed
    expect(r.device.image?.version).toBe('1.1.0+0');
    expect(OtaStateStore.open(r.flash.area('ota-state')).state.attempts).toEqual([{ version: '1.1.0+0', attempts: 1 }]);
  });
});
