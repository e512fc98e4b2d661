/** The API facade (src/api): the functions a test suite drives ota-sim with. src/index.ts re-exports them. */
export { loadBoard, createFlash, openFlash } from './flash.js';
export type { BoardRef, CreateFlashOptions } from './flash.js';
export { signImage, keyFromSeed, DEFAULT_HEADER_SIZE_BYTES } from './image.js';
export type { ApiSignOptions } from './image.js';
export { startServer } from './server.js';
export type { AddArtifactOptions, CreateReleaseOptions, ServerDevice, ServerDeviceStatus, ServerHandle, StartServerOptions } from './server.js';
export { createDevice } from './device.js';
export type { CreateDeviceOptions, DeviceAgentOptions, DeviceHandle, DeviceStatus, PowerCutAt, PowerCutOptions, RunningImageInfo, WaitOptions, WaitTarget } from './device.js';
export { DeviceEventStream, MAX_EVENTS_KEPT } from './events.js';
export type { DeviceEvent, DeviceEventOf, DeviceEventType } from './events.js';
export { checkOracle } from './oracle.js';
export type { CheckOracleOptions, OracleVerdict } from './oracle.js';
export { loadScenario, runScenario, sweep } from './scenario.js';
export type { ScenarioSource, UpdateSweepArgs } from './scenario.js';
export { runFleet } from './fleet.js';
export type { RunFleetOptions } from './fleet.js';
