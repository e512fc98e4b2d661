/**
 * The OTA agent statechart (xstate v5): the single description of the agent's life on a device
 * (ARCHITECTURE.md principle 6). Side effects live only in the named actions and actors below,
 * which call the per-boot AgentRuntime; the chart's context is RAM and dies with the firmware.
 * What survives a power cut is only what the runtime wrote to flash (ota-state records and the
 * MCUboot trailers), which `booting` reads again at every start.
 *
 *   booting ─┬─ test boot ──> testing{connecting ⇄ backoff → selfTest → confirming} ─> reporting
 *            │                  └─ self-test fail / rollback timer ──> rollingBack (record self-test-failed, reboot unconfirmed)
 *            └─ normal ──> connecting ⇄ connectBackoff ─> reporting ─> idle (observe + poll)
 *   idle ─ offer too large for slot1 ─> refusing (r=2, nothing downloaded)
 *   idle ─ acceptable offer ─> downloading ⇄ downloadBackoff ─> downloaded ─> verifying
 *     (a flash driver error while downloading or staging: report r=10, back off, download again)
 *   verifying ─ ok ─> staging ─> announcing (s=3 r=0) ─> rebooting
 *             └ refused ─> refusing (record + report) ─> idle
 *
 * Timers (`after`) run on the clock given to createActor (the device clock), so they die at
 * power-off together with the actor.
 */
import { assign, fromCallback, fromPromise, setup } from 'xstate';
import { DownloadError } from '../net/errors.js';
import { inFlight, isFlashIoError } from './runtime.js';
import type { AgentRuntime, BootInfo, Offer, Verdict } from './runtime.js';
import { ReportReason, ReportState } from './types.js';

export interface AgentContext {
  rt: AgentRuntime;
  boot: BootInfo | null;
  offer: Offer | null;
  /** Consecutive failed connects / downloads (RAM: a reboot starts over). */
  connectFailures: number;
  downloadFailures: number;
  verdict: Verdict | null;
  lastError: string | null;
  /** The test boot is giving up because the image failed (self-test verdict, rollback timer), not because of flash trouble. */
  imageFailed: boolean;
}

export type AgentMachineEvent = { type: 'MANIFEST'; seq: number; offer: Offer | null } | { type: 'CONNECTION_LOST'; why: string };

function backoff(base_ms: number, cap_ms: number, failures: number): number {
  return Math.min(cap_ms, base_ms * 2 ** Math.min(30, Math.max(0, failures - 1)));
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export const agentMachine = setup({
  types: {
    context: {} as AgentContext,
    events: {} as AgentMachineEvent,
    input: {} as { rt: AgentRuntime },
  },
  actors: {
    inspectFlash: fromPromise<BootInfo, { rt: AgentRuntime }>(({ input }) => input.rt.guarded(() => input.rt.inspectBoot())),
    connect: fromPromise<void, { rt: AgentRuntime }>(({ input }) => input.rt.connect()),
    runSelfTest: fromPromise<boolean, { rt: AgentRuntime }>(async ({ input }) => {
      // defect confirm-before-self-test: the image is made permanent before it has proven anything
      if (input.rt.has('confirm-before-self-test')) await input.rt.guarded(() => input.rt.confirm());
      if (input.rt.cfg.profile === 'golioth') return true; // the SDK's test is reaching the server
      return input.rt.ctx.runSelfTest() === 'pass';
    }),
    confirmImage: fromPromise<void, { rt: AgentRuntime }>(({ input }) => input.rt.guarded(() => input.rt.confirm())),
    recordSelfTestFailure: fromPromise<void, { rt: AgentRuntime; imageFailed: boolean }>(async ({ input }) => {
      if (input.imageFailed) await input.rt.guarded(() => input.rt.recordSelfTestFailure());
    }),
    reportOutcome: fromPromise<boolean, { rt: AgentRuntime }>(({ input }) => input.rt.reportOutcome()),
    watchManifest: fromCallback<AgentMachineEvent, { rt: AgentRuntime }>(({ input, sendBack }) =>
      input.rt.watchManifest(
        (m) => sendBack({ type: 'MANIFEST', seq: m.seq, offer: m.offer }),
        (why) => sendBack({ type: 'CONNECTION_LOST', why }),
      ),
    ),
    downloadImage: fromPromise<void, { rt: AgentRuntime; offer: Offer }>(({ input }) => input.rt.downloadOffer(input.offer)),
    verifyImage: fromPromise<Verdict, { rt: AgentRuntime; offer: Offer }>(({ input }) => input.rt.guarded(() => input.rt.verify(input.offer))),
    recordRefusal: fromPromise<boolean, { rt: AgentRuntime; offer: Offer; reason: number }>(async ({ input }) => {
      await input.rt.guarded(() => input.rt.refuse(input.offer, input.reason));
      return input.rt.reportOutcome();
    }),
    stageImage: fromPromise<void, { rt: AgentRuntime; offer: Offer }>(({ input }) => input.rt.guarded(() => input.rt.stage(input.offer))),
    sendReport: fromPromise<boolean, { rt: AgentRuntime; s: number; r: number; t: string | null }>(({ input }) => input.rt.report(input.rt.reportOf(input.s, input.r, input.t))),
  },
  actions: {
    announceState: ({ context }, params: { state: string }) => context.rt.emit({ type: 'state', state: params.state, version: context.rt.version, at_ms: context.rt.now() }),
    reportProgress: ({ context }, params: { s: number; r: number }) => {
      void context.rt.report(context.rt.reportOf(params.s, params.r, context.offer?.version ?? null)); // fire and forget
    },
    rebootDevice: ({ context }) => context.rt.ctx.reboot(),
    noteFailureInRam: ({ context }) => context.rt.noteFailureInRam(),
    noteRollback: ({ context }, params: { why: string }) => context.rt.emit({ type: 'rollback', version: context.rt.version, why: params.why, at_ms: context.rt.now() }),
    noteConfirmed: ({ context }) => context.rt.emit({ type: 'confirmed', version: context.rt.version, at_ms: context.rt.now() }),
    noteRefusal: ({ context }) => {
      const v = context.verdict;
      if (v && !v.ok && context.offer) context.rt.emit({ type: 'refused', version: context.offer.version, reason: v.reason, message: v.message, at_ms: context.rt.now() });
    },
  },
  guards: {
    isTestBoot: ({ context }) => context.boot?.testBoot === true,
    selfTestPassed: (_, params: { passed: boolean }) => params.passed,
    offerAcceptable: ({ context }, params: { offer: Offer | null }) => params.offer !== null && context.rt.skipReason(params.offer) === null,
    offerTooLarge: ({ context }, params: { offer: Offer | null }) => params.offer !== null && context.rt.skipReason(params.offer) === null && !context.rt.precheck(params.offer).ok,
    verified: (_, params: { verdict: Verdict }) => params.verdict.ok,
    downloadRetryAllowed: ({ context }) => context.offer !== null && context.rt.skipReason(context.offer) === null && context.downloadFailures < context.rt.cfg.maxAttemptsPerVersion * 4,
    hasUnreportedOutcome: ({ context }) => {
      const l = context.rt.state.lastUpdate;
      return l !== null && !l.reported && !inFlight(l.result);
    },
    flashIoError: (_, params: { error: unknown }) => isFlashIoError(params.error),
    restartAtZero: (_, params: { error: unknown }) => params.error instanceof DownloadError && (params.error.reason === 'ETAG_CHANGED' || params.error.reason === 'SIZE_CHANGED'),
  },
  delays: {
    rollbackTimeout: ({ context }) => context.rt.cfg.rollbackTimer_ms,
    connectBackoff: ({ context }) => backoff(context.rt.cfg.backoffBase_ms, context.rt.cfg.backoffCap_ms, context.connectFailures),
    downloadBackoff: ({ context }) => backoff(context.rt.cfg.backoffBase_ms, context.rt.cfg.backoffCap_ms, context.downloadFailures),
    reportRetry: ({ context }) => context.rt.cfg.reportRetry_ms,
    announceTimeout: ({ context }) => Math.min(context.rt.cfg.reportRetry_ms, 30_000),
  },
}).createMachine({
  id: 'otaAgent',
  context: ({ input }) => ({ rt: input.rt, boot: null, offer: null, connectFailures: 0, downloadFailures: 0, verdict: null, lastError: null, imageFailed: false }),
  initial: 'booting',
  states: {
    booting: {
      entry: { type: 'announceState', params: { state: 'booting' } },
      invoke: {
        src: 'inspectFlash',
        input: ({ context }) => ({ rt: context.rt }),
        onDone: [
          { guard: ({ event }) => event.output.testBoot, target: 'testing', actions: assign({ boot: ({ event }) => event.output }) },
          { target: 'connecting', actions: assign({ boot: ({ event }) => event.output }) },
        ],
      },
    },

    testing: {
      entry: { type: 'announceState', params: { state: 'testing' } },
      after: { rollbackTimeout: { target: 'rollingBack', actions: [{ type: 'noteRollback', params: { why: 'rollback timer expired' } }, assign({ imageFailed: true })] } },
      initial: 'connecting',
      states: {
        connecting: {
          invoke: {
            src: 'connect',
            input: ({ context }) => ({ rt: context.rt }),
            onDone: { target: 'selfTest', actions: assign({ connectFailures: 0 }) },
            onError: { target: 'backoff', actions: assign({ connectFailures: ({ context }) => context.connectFailures + 1, lastError: ({ event }) => message(event.error) }) },
          },
        },
        backoff: { after: { connectBackoff: 'connecting' } },
        selfTest: {
          entry: { type: 'announceState', params: { state: 'selfTest' } },
          invoke: {
            src: 'runSelfTest',
            input: ({ context }) => ({ rt: context.rt }),
            onDone: [
              { guard: { type: 'selfTestPassed', params: ({ event }) => ({ passed: event.output }) }, target: 'confirming' },
              { target: '#otaAgent.rollingBack', actions: [{ type: 'noteRollback', params: { why: 'self-test failed' } }, assign({ imageFailed: true })] },
            ],
            onError: { target: '#otaAgent.rollingBack', actions: { type: 'noteRollback', params: { why: 'self-test error' } } },
          },
        },
        confirming: {
          entry: { type: 'announceState', params: { state: 'confirming' } },
          invoke: {
            src: 'confirmImage',
            input: ({ context }) => ({ rt: context.rt }),
            onDone: { target: '#otaAgent.reporting', actions: 'noteConfirmed' },
            onError: { target: '#otaAgent.rollingBack', actions: { type: 'noteRollback', params: { why: 'confirm failed' } } },
          },
        },
      },
    },

    rollingBack: {
      // reboot unconfirmed; the image's own failure goes to flash first (the old firmware gives
      // the version up only on that record or a watchdog reset: a power cut here is retried)
      entry: [{ type: 'announceState', params: { state: 'rollingBack' } }, 'noteFailureInRam'],
      invoke: {
        src: 'recordSelfTestFailure',
        input: ({ context }) => ({ rt: context.rt, imageFailed: context.imageFailed }),
        onDone: { actions: 'rebootDevice' },
        onError: { actions: 'rebootDevice' },
      },
    },

    connecting: {
      entry: { type: 'announceState', params: { state: 'connecting' } },
      invoke: {
        src: 'connect',
        input: ({ context }) => ({ rt: context.rt }),
        onDone: { target: 'reporting', actions: assign({ connectFailures: 0 }) },
        onError: { target: 'connectBackoff', actions: assign({ connectFailures: ({ context }) => context.connectFailures + 1, lastError: ({ event }) => message(event.error) }) },
      },
    },
    connectBackoff: {
      entry: { type: 'announceState', params: { state: 'connectBackoff' } },
      after: { connectBackoff: 'connecting' },
    },

    reporting: {
      entry: { type: 'announceState', params: { state: 'reporting' } },
      invoke: {
        src: 'reportOutcome',
        input: ({ context }) => ({ rt: context.rt }),
        // delivered or not, the update goes on: an unsent outcome is retried from idle
        onDone: 'idle',
        onError: 'idle',
      },
    },

    idle: {
      entry: { type: 'announceState', params: { state: 'idle' } },
      invoke: { src: 'watchManifest', input: ({ context }) => ({ rt: context.rt }) },
      on: {
        MANIFEST: [
          {
            // refused before a byte is downloaded: the announced size does not fit slot1
            guard: { type: 'offerTooLarge', params: ({ event }) => ({ offer: event.offer }) },
            target: 'refusing',
            actions: [assign({ offer: ({ event }) => event.offer, verdict: ({ context, event }) => context.rt.precheck(event.offer as Offer) }), 'noteRefusal'],
          },
          {
            guard: { type: 'offerAcceptable', params: ({ event }) => ({ offer: event.offer }) },
            target: 'downloading',
            actions: assign({ offer: ({ event }) => event.offer, downloadFailures: 0 }),
          },
        ],
        CONNECTION_LOST: { target: 'connecting', actions: assign({ lastError: ({ event }) => event.why }) },
      },
      after: { reportRetry: { guard: 'hasUnreportedOutcome', target: 'reporting' } },
    },

    downloading: {
      entry: [
        { type: 'announceState', params: { state: 'downloading' } },
        { type: 'reportProgress', params: { s: ReportState.DOWNLOADING, r: ReportReason.READY } },
      ],
      invoke: {
        src: 'downloadImage',
        input: ({ context }) => ({ rt: context.rt, offer: context.offer as Offer }),
        onDone: 'downloaded',
        onError: [
          { guard: { type: 'restartAtZero', params: ({ event }) => ({ error: event.error }) }, target: 'downloading', reenter: true },
          {
            // a flash driver error: this attempt failed (r=10 IO); back off and start again from flash
            guard: { type: 'flashIoError', params: ({ event }) => ({ error: event.error }) },
            target: 'downloadBackoff',
            actions: [
              assign({ downloadFailures: ({ context }) => context.downloadFailures + 1, lastError: ({ event }) => message(event.error) }),
              { type: 'reportProgress', params: { s: ReportState.IDLE, r: ReportReason.IO } },
            ],
          },
          { target: 'downloadBackoff', actions: assign({ downloadFailures: ({ context }) => context.downloadFailures + 1, lastError: ({ event }) => message(event.error) }) },
        ],
      },
    },
    downloadBackoff: {
      entry: { type: 'announceState', params: { state: 'downloadBackoff' } },
      after: {
        downloadBackoff: [
          { guard: 'downloadRetryAllowed', target: 'reconnecting' },
          { target: 'idle', actions: { type: 'reportProgress', params: { s: ReportState.IDLE, r: ReportReason.FIRMWARE_UPDATE_FAILED } } },
        ],
      },
    },
    reconnecting: {
      entry: { type: 'announceState', params: { state: 'reconnecting' } },
      invoke: {
        src: 'connect',
        input: ({ context }) => ({ rt: context.rt }),
        onDone: 'downloading',
        onError: { target: 'downloadBackoff', actions: assign({ downloadFailures: ({ context }) => context.downloadFailures + 1, lastError: ({ event }) => message(event.error) }) },
      },
    },

    downloaded: {
      entry: [
        { type: 'announceState', params: { state: 'downloaded' } },
        { type: 'reportProgress', params: { s: ReportState.DOWNLOADED, r: ReportReason.READY } },
      ],
      always: 'verifying',
    },

    verifying: {
      entry: { type: 'announceState', params: { state: 'verifying' } },
      invoke: {
        src: 'verifyImage',
        input: ({ context }) => ({ rt: context.rt, offer: context.offer as Offer }),
        onDone: [
          { guard: { type: 'verified', params: ({ event }) => ({ verdict: event.output }) }, target: 'staging', actions: assign({ verdict: ({ event }) => event.output }) },
          { target: 'refusing', actions: [assign({ verdict: ({ event }) => event.output }), 'noteRefusal'] },
        ],
        onError: { target: 'refusing', actions: assign({ verdict: ({ event }) => ({ ok: false as const, reason: ReportReason.IO, message: message(event.error) }) }) },
      },
    },
    refusing: {
      entry: { type: 'announceState', params: { state: 'refusing' } },
      invoke: {
        src: 'recordRefusal',
        input: ({ context }) => ({ rt: context.rt, offer: context.offer as Offer, reason: context.verdict && !context.verdict.ok ? context.verdict.reason : ReportReason.FIRMWARE_UPDATE_FAILED }),
        onDone: 'idle',
        onError: 'idle',
      },
    },

    staging: {
      entry: { type: 'announceState', params: { state: 'staging' } },
      invoke: {
        src: 'stageImage',
        input: ({ context }) => ({ rt: context.rt, offer: context.offer as Offer }),
        onDone: 'announcing',
        onError: [
          {
            // a flash driver error says nothing about the image: download it again (a new attempt)
            guard: { type: 'flashIoError', params: ({ event }) => ({ error: event.error }) },
            target: 'downloadBackoff',
            actions: [
              assign({ downloadFailures: ({ context }) => context.downloadFailures + 1, lastError: ({ event }) => message(event.error) }),
              { type: 'reportProgress', params: { s: ReportState.IDLE, r: ReportReason.IO } },
            ],
          },
          { target: 'refusing', actions: assign({ verdict: ({ event }) => ({ ok: false as const, reason: ReportReason.IO, message: message(event.error) }) }) },
        ],
      },
    },
    announcing: {
      entry: { type: 'announceState', params: { state: 'announcing' } },
      invoke: {
        src: 'sendReport',
        input: ({ context }) => ({ rt: context.rt, s: ReportState.UPDATING, r: ReportReason.READY, t: context.offer?.version ?? null }),
        onDone: 'rebooting',
        onError: 'rebooting',
      },
      // a report never blocks the update
      after: { announceTimeout: 'rebooting' },
    },
    rebooting: {
      entry: [{ type: 'announceState', params: { state: 'rebooting' } }, 'rebootDevice'],
    },
  },
});

export type AgentMachine = typeof agentMachine;

/** Every state of the chart by its path ("testing.selfTest"), for docs and reports. */
export function agentStateNames(): string[] {
  const out: string[] = [];
  const walk = (node: { key: string; states: Record<string, unknown> }, prefix: string): void => {
    for (const [key, child] of Object.entries(node.states)) {
      const path = prefix ? `${prefix}.${key}` : key;
      out.push(path);
      walk(child as { key: string; states: Record<string, unknown> }, path);
    }
  };
  walk(agentMachine.root as unknown as { key: string; states: Record<string, unknown> }, '');
  return out;
}
