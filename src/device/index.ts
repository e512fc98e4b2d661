/** The simulated device's public surface: the power model and the OTA state store. */
export { DEFAULT_MAX_REBOOTS, DEFAULT_WATCHDOG_TIMEOUT_MS, Device } from './device.js';
export type {
  DeviceEventName,
  DeviceEvents,
  DeviceOptions,
  DevicePhase,
  Firmware,
  FirmwareContext,
  FirmwareFactory,
  ResetCause,
  ResetReason,
  RunningImage,
  SelfTestVerdict,
  WatchdogCause,
} from './device.js';
export { OtaStateStore, decodeOtaState, otaStateBanks } from './ota-state.js';
export type { DecodedBank, DecodedOtaState, DecodedRecord, OtaStateBank, OtaStateStats } from './ota-state.js';
export { EMPTY_OTA_STATE, MAX_ATTEMPT_VERSIONS, attemptsOf, otaStatesEqual, stateToJson, withAttempt } from './ota-state-record.js';
export type { DownloadProgress, LastUpdate, OtaState, UpdateResult, VersionAttempts } from './ota-state-record.js';
