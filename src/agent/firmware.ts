/**
 * The glue that makes the agent the firmware a Device runs: at each start a fresh AgentRuntime
 * (state store opened from flash, no network yet) and a fresh actor of the statechart whose
 * timers run on the device clock; at stop (power off, cut, reset) the actor stops and the network
 * is aborted without a goodbye. Nothing is carried from one start to the next but the flash.
 */
import { createActor } from 'xstate';
import type { ActorOptions, AnyActorLogic } from 'xstate';
import type { TimerHandle } from '../clock.js';

type XstateClock = NonNullable<ActorOptions<AnyActorLogic>['clock']>;
import type { Firmware, FirmwareContext, FirmwareFactory, RunningImage } from '../device/device.js';
import { agentMachine } from './machine.js';
import { AgentRuntime } from './runtime.js';
import { resolveAgentConfig } from './types.js';
import type { AgentConfig } from './types.js';

/** Upper bound of xstate timers outstanding at once for one agent (a leak guard). */
const MAX_TIMERS = 1024;

/** xstate's clock bound to the device clock: timers die with the firmware. */
export function xstateClockOf(ctx: FirmwareContext): XstateClock {
  const handles = new Map<number, TimerHandle>();
  let next = 1;
  return {
    setTimeout(fn: () => void, timeout: number): number {
      if (handles.size >= MAX_TIMERS) throw new Error(`assertion failed: more than ${MAX_TIMERS} agent timers`);
      const id = next++;
      handles.set(
        id,
        ctx.clock.setTimeout(() => {
          handles.delete(id);
          fn();
        }, timeout),
      );
      return id;
    },
    clearTimeout(id: number): void {
      handles.get(id)?.cancel();
      handles.delete(id);
    },
  };
}

/** A FirmwareFactory running the OTA agent; `config` is the same at every boot. */
export function agentFirmware(config: AgentConfig): FirmwareFactory {
  const cfg = resolveAgentConfig(config);
  let starts = 0; // only seeds the PRNG per boot (tokens differ across boots); decides nothing
  return (_image: RunningImage): Firmware => {
    let rt: AgentRuntime | null = null;
    let actor: ReturnType<typeof createActor<typeof agentMachine>> | null = null;
    return {
      start(ctx: FirmwareContext): void {
        rt = new AgentRuntime(cfg, ctx, ++starts);
        actor = createActor(agentMachine, { input: { rt }, clock: xstateClockOf(ctx) });
        actor.start();
      },
      stop(): void {
        rt?.shutdown();
        actor?.stop();
        rt = null;
        actor = null;
      },
    };
  };
}
