/** Fleet emulation: many full devices against one update server, in worker threads, sharded. */
export { runFleet, fleetKey, RELEASE_ID, RSS_NOTE } from './fleet.js';
export type { FleetOptions, FleetProgress, FleetCallbacks } from './fleet.js';
export { DeviceSlice } from './devices.js';
export { checkFileLimit, parseFileLimit, readFileLimit, parseShard, shardIndices, deviceSpec, deviceIdentity, milestones, MAX_DEVICES, parseWeighted, pickWeighted, scaleGroups, chaosSocketsPerDevice, CHAOS_MAX_FLOWS } from './plan.js';
export type { Shard, Weighted, DeviceMix } from './plan.js';
export { scenarioFleet } from './scenario.js';
export type { ScenarioFleet, FleetGroup } from './scenario.js';
export { mergeShards } from './merge.js';
export type { FleetResult, DeviceOutcome, FleetDeviceSpec, Milestone, FailingNow, MixCount, ChaosTotals, SliceTemplate } from './types.js';
export { fleetSnapshot, dashboardPublisher, MIN_INTERVAL_WALL_MS } from './live.js';
export { renderFleetSummary, fleetJson } from './summary.js';
