/**
 * The switchable agent defects (AgentConfig.defects, for issue 8's sweeps): each one changes what
 * a device observably does, against the embedded server over UDP (127.0.0.1, clock 1:100). The
 * defect-free behaviour of the same cases is tested in agent.test.ts and refusals.test.ts (a
 * self-test-fail image rolls back and the failure is reported once; a cut download resumes; a
 * refused image never boots); here the control runs next to the defect where it is cheap.
 */
import { describe, expect, it } from 'vitest';
import { AGENT_DEFECTS, resolveAgentConfig } from '../../src/agent/index.js';
import type { AgentConfig, AgentEvent } from '../../src/agent/index.js';
import { bootIsImgConfirmed } from '../../src/boot/public.js';
import { OtaStateStore } from '../../src/device/index.js';
import { accepted, image, offer, rigsClosedAfterEach, waitFor } from './helpers.js';

const start = rigsClosedAfterEach();

describe('agent defects', () => {
  it('AGENT_DEFECTS lists exactly the four documented defects; an unknown name is refused', () => {
    expect([...AGENT_DEFECTS].sort()).toEqual(['confirm-before-self-test', 'failure-report-from-ram', 'pending-before-verify', 'progress-never-persisted']);
    const base = { server: { kind: 'udp', host: '127.0.0.1', port: 1, identity: 'x' }, board: 'nrf52840', strategy: 'swap-move', trust: { keys: [] }, seed: 1 } as unknown as AgentConfig;
    expect(() => resolveAgentConfig({ ...base, defects: ['no-such-defect' as never] })).toThrow(/unknown defect/);
    expect(resolveAgentConfig(base).defects).toEqual([]);
  });

  it('confirm-before-self-test: a self-test-fail image stays confirmed (no rollback) and is reported as a success', async () => {
    const r = await start({ transport: 'udp', agent: { defects: ['confirm-before-self-test'] } });
    const target = await offer(r.server, image('1.2.0', { behaviour: { selfTest: 'fail' } }));
    r.device.powerOn();
    await waitFor(() => accepted(r.server).some((x) => x?.s === 3 && x.r === 1 && x.v === '1.2.0+0'), 'the (false) success report');
    expect(r.events.some((e) => e.type === 'rollback' && e.version === target && e.why === 'self-test failed')).toBe(true);
    expect(r.device.image?.version).toBe('1.2.0+0'); // the bad image kept running
    expect(bootIsImgConfirmed(r.flash, 'swap-move')).toBe(true);
    expect(accepted(r.server).some((x) => x?.r === 8)).toBe(false);
  });

  for (const defective of [false, true]) {
    it(`progress-never-persisted ${defective ? 'on' : 'off'}: after a cut at block 20 or later the ota-sim download ${defective ? 'restarts at 0' : 'resumes'}`, async () => {
      let cutDone = false;
      const holder: { cut: () => void } = { cut: () => {} };
      const events: AgentEvent[] = [];
      const r = await start({
        transport: 'udp',
        agent: {
          persistEvery_blocks: 4,
          defects: defective ? ['progress-never-persisted'] : [],
          onEvent: (e) => {
            events.push(e);
            // cut right after block 20, between two blocks and outside the firmware's stack
            if (e.type === 'block' && e.block >= 20 && !cutDone) {
              cutDone = true;
              setImmediate(() => holder.cut());
            }
          },
        },
      });
      holder.cut = () => r.device.powerCut();
      await offer(r.server, image('1.1.0'));
      r.device.powerOn();
      await waitFor(() => cutDone && r.device.phase === 'off', 'the cut after block 20');
      const mark = events.length;
      r.device.powerOn(); // the bootloader runs now; the firmware starts later on the clock
      const onFlash = OtaStateStore.open(r.flash.area('ota-state')).state;
      expect(onFlash.download === null).toBe(defective);
      expect(onFlash.attempts).toEqual([{ version: '1.1.0+0', attempts: 1 }]); // the attempt is still counted
      await waitFor(() => events.slice(mark).some((e) => e.type === 'download-start'), 'the download after power-on');
      const s = events.slice(mark).find((e) => e.type === 'download-start');
      const startBlock = s?.type === 'download-start' ? s.startBlock : -1;
      if (defective) expect(startBlock).toBe(0);
      else expect(startBlock).toBeGreaterThan(0);
      await waitFor(() => accepted(r.server).some((x) => x?.s === 3 && x.r === 1), 'the update');
    });
  }

  for (const defective of [false, true]) {
    it(`pending-before-verify ${defective ? 'on' : 'off'}: an image refused for its board ${defective ? 'is test-booted at the next reset' : 'never boots'}`, async () => {
      const r = await start({ transport: 'udp', agent: { defects: defective ? ['pending-before-verify'] : [] } });
      await offer(r.server, image('1.3.0', { board: 'stm32f4' }));
      r.device.powerOn();
      await waitFor(() => accepted(r.server).some((x) => x?.r === 6), 'the refusal (r=6)');
      expect(r.device.image?.version).toBe('1.0.0+0');
      const booted: string[] = [];
      r.device.on('booted', (e) => booted.push(e.version));
      r.device.reboot(); // any reset: a watchdog, a power cycle
      await waitFor(() => booted.length >= 1, 'the boot after the reset');
      expect(booted[0]).toBe(defective ? '1.3.0+0' : '1.0.0+0');
    });
  }

  it('failure-report-from-ram: after a rollback the reverted firmware reports nothing and downloads the failed version again', async () => {
    const r = await start({ transport: 'udp', agent: { defects: ['failure-report-from-ram'] } });
    const target = await offer(r.server, image('1.2.0', { behaviour: { selfTest: 'fail' } }));
    r.device.powerOn();
    await waitFor(() => r.events.filter((e) => e.type === 'download-start').length >= 2, 'a second download of the failed version');
    expect(r.events.some((e) => e.type === 'rollback' && e.version === target)).toBe(true);
    // the failure lived in RAM, which the reverting reset cleared: no FIRMWARE_UPDATE_FAILED reached the server
    expect(accepted(r.server).some((x) => x?.r === 8)).toBe(false);
    expect(r.device.reboots).toBeGreaterThanOrEqual(2);
  });
});
