/**
 * ota-sim's public API: the one list of everything users import (`import { ... } from 'ota-sim'`).
 * Named exports only, grouped by concept; docs/api.md documents them. Anything not listed here is
 * internal and may change. The CLI imports the internal modules directly.
 */

// ---- errors: every failure through the API is an OtaSimError with a stable `code` ----
export { OtaSimError, InputError, CheckError, EnvironmentError } from './errors.js';
export type { ExitCode } from './errors.js';
export { FlashError, PowerCut } from './flash/index.js';
export type { FlashErrorCode } from './flash/index.js';
export { ImageError } from './image/index.js';
export type { ImageErrorCode, ImageParseCode } from './image/index.js';
export { RequestError } from './server/index.js';
export { NetError, DownloadError } from './net/errors.js';
export type { NetErrorCode, DownloadAbortReason } from './net/errors.js';
export { DtlsOptionsError, DtlsSocketError } from './dtls/index.js';

// ---- time and seeds ----
export { ScaledClock, ManualClock } from './clock.js';
export type { Clock, TimerHandle } from './clock.js';
export { Prng, mixSeed } from './prng.js';

// ---- the facade (src/api): boards, flash, images, server, device, oracle, scenarios, sweeps, fleets ----
export {
  loadBoard,
  createFlash,
  openFlash,
  signImage,
  keyFromSeed,
  DEFAULT_HEADER_SIZE_BYTES,
  startServer,
  createDevice,
  DeviceEventStream,
  MAX_EVENTS_KEPT,
  checkOracle,
  loadScenario,
  runScenario,
  sweep,
  runFleet,
} from './api/index.js';
export type {
  BoardRef,
  CreateFlashOptions,
  ApiSignOptions,
  AddArtifactOptions,
  CreateReleaseOptions,
  ServerDevice,
  ServerDeviceStatus,
  ServerHandle,
  StartServerOptions,
  CreateDeviceOptions,
  DeviceAgentOptions,
  DeviceHandle,
  DeviceStatus,
  PowerCutAt,
  PowerCutOptions,
  RunningImageInfo,
  WaitOptions,
  WaitTarget,
  DeviceEvent,
  DeviceEventOf,
  DeviceEventType,
  CheckOracleOptions,
  OracleVerdict,
  ScenarioSource,
  UpdateSweepArgs,
  RunFleetOptions,
} from './api/index.js';

// ---- flash model and boards ----
export { Flash, JournalCursor, SectorStore, saveFlash, sidecarPath, listBoards, parseBoard } from './flash/index.js';
export type { BoardProfile, FlashArea, FlashOptions, OpenOptions, PartitionName, PowerCutPlan, Strategy } from './flash/index.js';

// ---- MCUboot images and keys ----
export {
  IMAGE_F,
  IMAGE_MAGIC,
  IMAGE_HEADER_SIZE_BYTES,
  TLV,
  TLV_INFO_MAGIC,
  TLV_PROT_INFO_MAGIC,
  flagNames,
  tlvName,
  compareVersions,
  decodeHeader,
  encodeHeader,
  formatVersion,
  parseVersion,
  sameVersionText,
  encodeTlvArea,
  DEFAULT_BEHAVIOUR,
  behaviourTlv,
  boardTlv,
  decodeBehaviour,
  decodeBoard,
  findTlv,
  parseImage,
  parseImageLayout,
  KEY_TYPES,
  ed25519KeyPemFromSeed,
  generateKey,
  parseKeyPem,
  parseSigningKeyPem,
  privateKeyToPem,
  publicKeyOf,
  publicKeyToPem,
  signatureTlvType,
  DEFAULT_MAX_ALIGN,
  DEFAULT_MAX_SECTORS,
  bootMagic,
  padToSlot,
  trailerSize_bytes,
  trailerLayoutOf,
  VerifyMemo,
  createTrustStore,
  verifyImage,
} from './image/index.js';
export type {
  ImageHeader,
  ImageVersion,
  TlvEntry,
  TlvInput,
  FirmwareBehaviour,
  SelfTestOutcome,
  ImageLayout,
  ParsedImage,
  AnyKey,
  KeyType,
  PublicKey,
  SigningKey,
  MaxAlign,
  TrailerLayout,
  WriteAlign,
  PublicKeyFormat,
  SignOptions,
  TrustStore,
  VerifyOptions,
  VerifyReason,
  VerifyResult,
} from './image/index.js';

// ---- the bootloader model and its sweep ----
export { boot, bootIsImgConfirmed, bootSetConfirmed, bootSetPending, swapType, inspectSwap, BOOT_DEFECTS } from './boot/index.js';
export type { BootOptions, BootResult, BootDefect, SwapInspection } from './boot/index.js';
export { programSlot } from './boot/program.js';
export type { SlotMark, SlotName } from './boot/program.js';
export { replayCase, sweepMatrix } from './boot/sweep.js';
export type { SweepOptions, SweepReport, SweepViolation, SweepPhase, MatrixOptions, MatrixResult } from './boot/sweep.js';

// ---- the device model and the OTA agent (building blocks under createDevice) ----
export { Device, DEFAULT_MAX_REBOOTS, DEFAULT_WATCHDOG_TIMEOUT_MS, OtaStateStore, decodeOtaState, otaStateBanks, EMPTY_OTA_STATE, MAX_ATTEMPT_VERSIONS, attemptsOf, otaStatesEqual, stateToJson, withAttempt } from './device/index.js';
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
  DecodedBank,
  DecodedOtaState,
  DecodedRecord,
  OtaStateBank,
  OtaStateStats,
  DownloadProgress,
  LastUpdate,
  OtaState,
  UpdateResult,
  VersionAttempts,
} from './device/index.js';
export { agentFirmware, agentMachine, agentStateNames, compareVersionText, decodeManifest, resolveAgentConfig, AGENT_DEFECTS, ReportReason, ReportState } from './agent/index.js';
export type { AgentConfig, AgentDefect, AgentEvent, AgentProfile, AgentServer, ResolvedAgentConfig, SentReport, AgentContext, AgentMachine, AgentMachineEvent, BootInfo, Offer, Verdict } from './agent/index.js';

// ---- the update server ----
export { UpdateServer, UpdateModel, DEFAULT_LIMITS, artifactId, REPORT_REASONS, REPORT_STATES, parsePskText, readPskFile, rolloutBucket, inRollout, encodeCbor, decodeCbor } from './server/index.js';
export type { ServerAddresses, UpdateServerOptions, Desired, ModelLimits, NewArtifact, NewRelease, ServerMetrics, ArtifactInfo, DeviceInfo, ReleaseInfo, ReleaseState, ReportRecord, StateReport } from './server/index.js';

// ---- DTLS 1.2 PSK (server, CoAP socket adapter, client) ----
export { DtlsServer, DtlsSession, DtlsCoapSocket, DtlsPskClient, CIPHER_SUITES } from './dtls/index.js';
export type {
  DtlsServerEvents,
  DtlsServerOptions,
  DtlsServerStats,
  HandshakeFailure,
  PskLookup,
  SessionCloseReason,
  CipherSuiteName,
  DtlsCoapSocketOptions,
  DtlsClientOptions,
  DtlsClientEvents,
} from './dtls/index.js';

// ---- the chaos proxy (network faults) ----
export { ChaosProxy, DEFAULT_FAULT_LOG_LIMIT, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_FLOWS, DEFAULT_MAX_HELD, DEFAULT_STALE_LINGER_MS, MAX_FLOWS_LIMIT, loopbackHost, validateSchedule } from './net/proxy/index.js';
export type { ChaosProxyOptions, ChaosSchedule, ProxyDirection, ProxyFault, ProxyFaultKind, ProxyStats } from './net/proxy/index.js';

// ---- scenarios, the oracle's vocabulary, whole-update sweeps ----
export { RUN_RESULT_SCHEMA, INVARIANTS, parseScenarioSpec, formatIssues, STRATEGIES, scenarioFiles, replayCommand, runScenarios, loadScenarios, DeviceRecorder, sweepUpdate, updateReplayCommand, UPDATE_PHASES, buildUpdateSpec, updateSpecFromScenario } from './scenario/index.js';
export type {
  InvariantId,
  InvariantResult,
  Violation,
  TimelineKind,
  TimelineEvent,
  DeviceResult,
  ExpectationResult,
  ScenarioResult,
  RunResult,
  ScenarioSpec,
  FaultSpec,
  ImageSpec,
  TimelineStepSpec,
  GroupSpec,
  AgentSettings,
  BuiltImage,
  LoadedScenario,
  RunScenarioOptions,
  FaultDecision,
  ScenarioRun,
  RunScenariosOptions,
  OracleExpectation,
  DeviceRecorderOptions,
  FinalState,
  OpPhase,
  OpFact,
  BootFact,
  UpdatePhase,
  UpdateSweepOptions,
  UpdateSweepReport,
  UpdateSweepViolation,
  AnyDefect,
  ImageRecipe,
  UpdateSpecRecipe,
  UpdateCaseSpec,
} from './scenario/index.js';

// ---- reports ----
export { renderConsole, createProgress, renderJUnit, renderJson, renderHtml, renderStatechart, renderTransitionTable, chartModel, renderTimeline, TIMELINE_LIMITS, writeReports, REPORT_FILES } from './report/index.js';
export type { ConsoleOptions, Progress, ProgressOptions, ChartModel, ChartEdge, ReportPaths } from './report/index.js';

// ---- fleets and the live dashboard ----
export { fleetKey, RELEASE_ID, RSS_NOTE, MAX_DEVICES, parseShard, mergeShards, fleetSnapshot, dashboardPublisher, renderFleetSummary, fleetJson } from './fleet/index.js';
export type { FleetOptions, FleetProgress, FleetCallbacks, Shard, FleetResult, DeviceOutcome, FleetDeviceSpec, Milestone, FailingNow } from './fleet/index.js';
export { startDashboard, DASHBOARD_DEFAULTS, OTHER_SERIES, renderDashboardPage, MAX_FAILING_ROWS } from './dashboard/index.js';
export type { Dashboard, DashboardOptions, DashboardStats, PageConfig, FailingDevice, FleetSnapshot } from './dashboard/index.js';
