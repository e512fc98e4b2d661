/** The OTA agent (src/agent): the statechart, its runtime, and the Device firmware glue. */
export { agentMachine, agentStateNames } from './machine.js';
export type { AgentContext, AgentMachine, AgentMachineEvent } from './machine.js';
export { AgentRuntime, compareVersionText, decodeManifest } from './runtime.js';
export type { BootInfo, Offer, Verdict } from './runtime.js';
export { agentFirmware, xstateClockOf } from './firmware.js';
export { AGENT_DEFECTS, ReportReason, ReportState, resolveAgentConfig } from './types.js';
export type { AgentConfig, AgentDefect, AgentEvent, AgentProfile, AgentServer, ResolvedAgentConfig, SentReport } from './types.js';
