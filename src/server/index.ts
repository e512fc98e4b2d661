/** The embedded update server (src/server): public surface. */
export { UpdateServer } from './update-server.js';
export type { ServerAddresses, UpdateServerOptions } from './update-server.js';
export { UpdateModel, DEFAULT_LIMITS, artifactId } from './model.js';
export type { Desired, ModelLimits, NewArtifact, NewRelease } from './model.js';
export type { ServerMetrics } from './metrics.js';
export type { ArtifactInfo, DeviceInfo, ReleaseInfo, ReleaseState, ReportRecord, StateReport } from './types.js';
export { REPORT_REASONS, REPORT_STATES } from './types.js';
export { parsePskText, readPskFile } from './psk-file.js';
export { rolloutBucket, inRollout } from './rollout.js';
export { encodeCbor, decodeCbor } from './cbor.js';
export { RequestError } from './errors.js';
