/**
 * The update server's state: artifacts, releases, devices and their reports, and the rule that
 * says which release a device should run (its *desired* manifest). Every change is journaled
 * (state-dir.ts) and only then reported as done and announced ('changed'), so what a caller was
 * told happened survives a crash. Replaying the journal rebuilds the same state.
 *
 * Desired release for a device: among active releases, the one with the highest activationSeq
 * whose targeting matches the device (board, tags: any of, devices: one of; empty = no
 * condition) and whose rollout bucket includes it. Activating stamps a new activationSeq;
 * rollback marks a release rolled-back and re-stamps the previous active one, so it becomes
 * desired again with a higher manifest sequence number than before.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ScaledClock } from '../clock.js';
import type { Clock } from '../clock.js';
import { ImageError, compareVersions, parseImage, parseVersion } from '../image/index.js';
import { encodeCbor } from './cbor.js';
import { RequestError, badRequest, conflict, notFound } from './errors.js';
import { NAME_PATTERN } from './psk-file.js';
import { inRollout } from './rollout.js';
import type { JournalEntry, StateDir } from './state-dir.js';
import type { ArtifactInfo, DeviceInfo, ReleaseInfo, ReleaseState, ReportRecord } from './types.js';

export interface ModelLimits {
  /** Devices at most (default 100 000). */
  maxDevices: number;
  /** Artifacts at most (default 1 000). */
  maxArtifacts: number;
  /** Largest artifact (default 16 MiB). */
  maxArtifact_bytes: number;
  /** Releases at most (default 1 000). */
  maxReleases: number;
  /** Report history kept per device, newest last (default 50). */
  maxReportsPerDevice: number;
  /** Largest encoded manifest: it must fit one CoAP message, no Block2 (default 1024). */
  maxManifest_bytes: number;
}

export const DEFAULT_LIMITS: ModelLimits = {
  maxDevices: 100_000,
  maxArtifacts: 1_000,
  maxArtifact_bytes: 16 * 1024 * 1024,
  maxReleases: 1_000,
  maxReportsPerDevice: 50,
  maxManifest_bytes: 1024,
};

interface DeviceState {
  info: DeviceInfo;
  history: ReportRecord[];
  reportsTotal: number;
  lastSeen_ms: number | null;
}

export interface NewArtifact {
  package: string;
  /** Default: the MCUboot header's version. */
  version?: string | null;
  /** Default: the image's board TLV (0xa1), else none. */
  board?: string | null;
  bytes: Uint8Array;
}

export interface NewRelease {
  id?: string;
  /** Artifact ids (`main@1.2.0`, `main@1.2.0/nrf52840`). */
  artifacts: string[];
  boards?: string[];
  tags?: string[];
  devices?: string[];
  rolloutPercent?: number;
  /** Default true: the release is active at once. */
  activate?: boolean;
}

/** What a device should run: the release and one artifact per package. */
export interface Desired {
  release: ReleaseInfo | null;
  components: ArtifactInfo[];
}

export interface ModelEvents {
  /** Something that can change a device's desired manifest happened. */
  changed: [];
}

const VERSION = /^[0-9A-Za-z.+~-]{1,64}$/;

function checkName(what: string, v: unknown): string {
  if (typeof v !== 'string' || !NAME_PATTERN.test(v)) throw badRequest('BAD_FIELD', `${what} must be 1..128 of A-Z a-z 0-9 . _ : @ + -, got ${JSON.stringify(v)}`);
  return v;
}

function checkNames(what: string, v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badRequest('BAD_FIELD', `${what} must be an array of names`);
  return v.map((x, i) => checkName(`${what}[${i}]`, x));
}

function checkPercent(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100) throw badRequest('BAD_FIELD', `rolloutPercent must be a number 0..100, got ${JSON.stringify(v)}`);
  return Math.round(v * 100) / 100;
}

export function artifactId(pkg: string, version: string, board: string | null): string {
  return board === null ? `${pkg}@${version}` : `${pkg}@${version}/${board}`;
}

/** Newest first by MCUboot version order when both parse, else by text. */
function compareArtifactVersions(a: string, b: string): number {
  try {
    return compareVersions(parseVersion(a), parseVersion(b));
  } catch {
    return a < b ? -1 : a > b ? 1 : 0;
  }
}

export class UpdateModel extends EventEmitter<ModelEvents> {
  readonly limits: ModelLimits;
  private readonly clock: Clock;
  private readonly artifacts = new Map<string, { info: ArtifactInfo; bytes: Buffer }>();
  private readonly byUri = new Map<string, string>();
  private readonly releases = new Map<string, ReleaseInfo>();
  private readonly devices = new Map<string, DeviceState>();
  private activationCounter = 0;
  private nextReleaseNumber = 1;

  constructor(
    private readonly stateDir: StateDir | null = null,
    options: { clock?: Clock; limits?: Partial<ModelLimits> } = {},
  ) {
    super();
    this.clock = options.clock ?? new ScaledClock(1);
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
  }

  /** Rebuild state from journal entries (artifact bytes are read from the state dir). */
  replay(entries: JournalEntry[]): void {
    for (const e of entries) this.apply(e, null);
  }

  private apply(e: JournalEntry, bytes: Buffer | null): void {
    switch (e.op) {
      case 'artifact': {
        const data = bytes ?? this.stateDir?.readArtifact(e.artifact.sha256) ?? Buffer.alloc(0);
        this.artifacts.set(e.artifact.id, { info: e.artifact, bytes: data });
        this.byUri.set(e.artifact.uri, e.artifact.id);
        break;
      }
      case 'release': {
        this.releases.set(e.release.id, e.release);
        this.activationCounter = Math.max(this.activationCounter, e.release.activationSeq);
        const m = /^r(\d+)$/.exec(e.release.id);
        if (m) this.nextReleaseNumber = Math.max(this.nextReleaseNumber, Number(m[1]) + 1);
        break;
      }
      case 'device': {
        const old = this.devices.get(e.device.identity);
        if (old) old.info = e.device;
        else this.devices.set(e.device.identity, { info: e.device, history: [], reportsTotal: 0, lastSeen_ms: null });
        break;
      }
      case 'report': {
        const d = this.devices.get(e.identity);
        if (!d) break;
        d.history.push(e.record);
        d.reportsTotal++;
        if (d.history.length > this.limits.maxReportsPerDevice) d.history.shift();
        break;
      }
    }
  }

  /** Journal (and wait for the disk), then apply; `announce` tells observers. */
  private async commit(e: JournalEntry, bytes: Buffer | null, announce: boolean): Promise<void> {
    if (this.stateDir) {
      if (e.op === 'artifact' && bytes) this.stateDir.writeArtifact(e.artifact.sha256, bytes);
      await this.stateDir.append(e);
    }
    this.apply(e, bytes);
    if (announce) this.emit('changed');
  }

  // ---- artifacts ----

  async addArtifact(a: NewArtifact): Promise<ArtifactInfo> {
    const pkg = checkName('package', a.package);
    const bytes = Buffer.from(a.bytes);
    if (bytes.length === 0) throw badRequest('EMPTY_ARTIFACT', 'the artifact has no bytes');
    if (bytes.length > this.limits.maxArtifact_bytes) {
      throw new RequestError(413, 'ARTIFACT_TOO_LARGE', `the artifact is ${bytes.length} bytes; the limit is ${this.limits.maxArtifact_bytes}`);
    }
    let version = a.version ?? null;
    let board = a.board === undefined ? undefined : a.board;
    if (version === null || board === undefined) {
      try {
        const img = parseImage(bytes);
        version ??= img.version;
        if (board === undefined) board = img.board;
      } catch (e) {
        if (!(e instanceof ImageError)) throw e;
        if (version === null) throw badRequest('NO_VERSION', `the artifact is not an MCUboot image (${e.message}): give its version`);
      }
    }
    board ??= null;
    if (!VERSION.test(version)) throw badRequest('BAD_FIELD', `version must be 1..64 of 0-9 A-Z a-z . + ~ -, got ${JSON.stringify(version)}`);
    if (board !== null) checkName('board', board);
    const id = artifactId(pkg, version, board);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const existing = this.artifacts.get(id);
    if (existing) {
      if (existing.info.sha256 === sha256) return existing.info;
      throw conflict('ARTIFACT_EXISTS', `artifact ${id} already exists with other bytes (sha256 ${existing.info.sha256}); artifacts are immutable, give a new version`);
    }
    if (this.artifacts.size >= this.limits.maxArtifacts) throw conflict('TOO_MANY_ARTIFACTS', `the server holds ${this.limits.maxArtifacts} artifacts at most`);
    const info: ArtifactInfo = { id, package: pkg, version, board, sha256, size_bytes: bytes.length, uri: `/.u/c/${id}`, created_ms: this.clock.now() };
    await this.commit({ op: 'artifact', artifact: info }, bytes, false);
    return info;
  }

  listArtifacts(): ArtifactInfo[] {
    return [...this.artifacts.values()].map((a) => a.info);
  }

  getArtifact(id: string): ArtifactInfo | undefined {
    return this.artifacts.get(id)?.info;
  }

  /** The artifact served at a CoAP path. */
  artifactAt(uri: string): { info: ArtifactInfo; bytes: Buffer } | undefined {
    const id = this.byUri.get(uri);
    return id === undefined ? undefined : this.artifacts.get(id);
  }

  /** Whether any artifact has this package (reports to other packages are refused). */
  hasPackage(pkg: string): boolean {
    for (const a of this.artifacts.values()) if (a.info.package === pkg) return true;
    return false;
  }

  /** The newest artifact of a package (by version), or undefined. */
  newestArtifact(pkg: string): ArtifactInfo | undefined {
    let best: ArtifactInfo | undefined;
    for (const { info } of this.artifacts.values()) {
      if (info.package !== pkg) continue;
      if (!best || compareArtifactVersions(info.version, best.version) > 0) best = info;
    }
    return best;
  }

  // ---- releases ----

  async createRelease(spec: NewRelease): Promise<ReleaseInfo> {
    if (typeof spec !== 'object' || spec === null) throw badRequest('BAD_FIELD', 'a release must be a JSON object');
    const id = spec.id === undefined ? this.freshReleaseId() : checkName('id', spec.id);
    if (this.releases.has(id)) throw conflict('RELEASE_EXISTS', `release ${id} already exists`);
    if (this.releases.size >= this.limits.maxReleases) throw conflict('TOO_MANY_RELEASES', `the server holds ${this.limits.maxReleases} releases at most`);
    if (!Array.isArray(spec.artifacts) || spec.artifacts.length === 0) throw badRequest('BAD_FIELD', 'artifacts must be a non-empty array of artifact ids (e.g. "main@1.2.0")');
    const artifacts: string[] = [];
    for (const [i, a] of spec.artifacts.entries()) {
      if (typeof a !== 'string') throw badRequest('BAD_FIELD', `artifacts[${i}] must be an artifact id`);
      if (!this.artifacts.has(a)) throw notFound('UNKNOWN_ARTIFACT', `artifacts[${i}]: no artifact ${a} (known: ${[...this.artifacts.keys()].slice(0, 10).join(', ') || 'none'})`);
      if (!artifacts.includes(a)) artifacts.push(a);
    }
    const activate = spec.activate ?? true;
    if (typeof activate !== 'boolean') throw badRequest('BAD_FIELD', 'activate must be true or false');
    const release: ReleaseInfo = {
      id,
      artifacts,
      boards: checkNames('boards', spec.boards),
      tags: checkNames('tags', spec.tags),
      devices: checkNames('devices', spec.devices),
      rolloutPercent: spec.rolloutPercent === undefined ? 100 : checkPercent(spec.rolloutPercent),
      state: activate ? 'active' : 'draft',
      activationSeq: activate ? this.activationCounter + 1 : 0,
      created_ms: this.clock.now(),
    };
    // Every board the release can meet must get a manifest that fits one message.
    const sizes = this.manifestBytes(1, this.pickComponents(release, null)).length;
    if (sizes > this.limits.maxManifest_bytes) throw badRequest('MANIFEST_TOO_LARGE', `the release's manifest would be ${sizes} bytes; at most ${this.limits.maxManifest_bytes}`);
    await this.commit({ op: 'release', release }, null, activate);
    return release;
  }

  private freshReleaseId(): string {
    while (this.releases.has(`r${this.nextReleaseNumber}`)) this.nextReleaseNumber++;
    return `r${this.nextReleaseNumber}`;
  }

  listReleases(): ReleaseInfo[] {
    return [...this.releases.values()];
  }

  getRelease(id: string): ReleaseInfo {
    const r = this.releases.get(id);
    if (!r) throw notFound('UNKNOWN_RELEASE', `no release ${id}`);
    return r;
  }

  private async updateRelease(r: ReleaseInfo, announce = true): Promise<ReleaseInfo> {
    await this.commit({ op: 'release', release: r }, null, announce);
    return r;
  }

  /** Make a release desired (again): a new activationSeq puts it above every other active one. */
  async activate(id: string): Promise<ReleaseInfo> {
    const r = this.getRelease(id);
    if (r.state === 'active') return r;
    return this.updateRelease({ ...r, state: 'active', activationSeq: this.activationCounter + 1 });
  }

  /** Stop offering a release; devices see the next active release that targets them. */
  async pause(id: string): Promise<ReleaseInfo> {
    const r = this.getRelease(id);
    if (r.state === 'paused') return r;
    if (r.state !== 'active') throw conflict('NOT_ACTIVE', `release ${id} is ${r.state}; only an active release can be paused`);
    return this.updateRelease({ ...r, state: 'paused' });
  }

  async setRollout(id: string, percent: unknown): Promise<ReleaseInfo> {
    const r = this.getRelease(id);
    return this.updateRelease({ ...r, rolloutPercent: checkPercent(percent) });
  }

  /**
   * Roll back a release (default: the newest active one): it is marked rolled-back and the
   * previous active release is re-stamped, so it is desired again with a new sequence number.
   * Returns both; `restored` is null when there was no earlier release.
   */
  async rollback(id?: string): Promise<{ rolledBack: ReleaseInfo; restored: ReleaseInfo | null }> {
    const active = [...this.releases.values()].filter((r) => r.state === 'active').sort((a, b) => b.activationSeq - a.activationSeq);
    const target = id === undefined ? active[0] : this.getRelease(id);
    if (!target) throw conflict('NOTHING_TO_ROLL_BACK', 'no active release to roll back');
    if (target.state !== 'active' && target.state !== 'paused') throw conflict('NOT_ACTIVE', `release ${target.id} is ${target.state}; only an active or paused release can be rolled back`);
    const previous = active.find((r) => r.id !== target.id && r.activationSeq < target.activationSeq) ?? null;
    const rolledBack = await this.updateRelease({ ...target, state: 'rolled-back' }, previous === null);
    const restored = previous ? await this.updateRelease({ ...previous, activationSeq: this.activationCounter + 1 }) : null;
    return { rolledBack, restored };
  }

  // ---- devices ----

  async addDevice(d: DeviceInfo): Promise<DeviceInfo> {
    const info: DeviceInfo = {
      identity: checkName('identity', d.identity),
      key: d.key === null || d.key === undefined ? null : String(d.key),
      board: d.board === null || d.board === undefined ? null : checkName('board', d.board),
      tags: checkNames('tags', d.tags),
    };
    if (info.key !== null && !/^[\x21-\x7e]{1,64}$/.test(info.key)) throw badRequest('BAD_FIELD', 'key must be 1..64 printable ASCII characters');
    if (!this.devices.has(info.identity) && this.devices.size >= this.limits.maxDevices) {
      throw conflict('TOO_MANY_DEVICES', `the server knows ${this.limits.maxDevices} devices at most`);
    }
    const old = this.devices.get(info.identity)?.info;
    if (old && JSON.stringify(old) === JSON.stringify(info)) return old;
    await this.commit({ op: 'device', device: info }, null, true);
    return info;
  }

  /** Add devices that are not known yet, without journaling (the PSK file is re-read at start). */
  loadDevices(list: DeviceInfo[]): void {
    for (const d of list) {
      if (!this.devices.has(d.identity) && this.devices.size >= this.limits.maxDevices) throw new RequestError(409, 'TOO_MANY_DEVICES', `more than ${this.limits.maxDevices} devices`);
      this.apply({ op: 'device', device: d }, null);
    }
  }

  device(identity: string): DeviceInfo | undefined {
    return this.devices.get(identity)?.info;
  }

  deviceCount(): number {
    return this.devices.size;
  }

  /** The PSK of an identity, for the DTLS server. */
  pskFor(identity: string): Buffer | undefined {
    const key = this.devices.get(identity)?.info.key;
    return key === null || key === undefined ? undefined : Buffer.from(key, 'utf8');
  }

  /** Time on the server's clock (report timestamps). */
  now(): number {
    return this.clock.now();
  }

  touch(identity: string): void {
    const d = this.devices.get(identity);
    if (d) d.lastSeen_ms = this.clock.now();
  }

  async recordReport(identity: string, record: ReportRecord): Promise<void> {
    if (!this.devices.has(identity)) throw notFound('UNKNOWN_DEVICE', `no device ${identity}`);
    await this.commit({ op: 'report', identity, record }, null, false);
  }

  reports(identity: string): { history: ReportRecord[]; total: number; lastSeen_ms: number | null } {
    const d = this.devices.get(identity);
    if (!d) throw notFound('UNKNOWN_DEVICE', `no device ${identity}`);
    return { history: [...d.history], total: d.reportsTotal, lastSeen_ms: d.lastSeen_ms };
  }

  listDevices(): DeviceInfo[] {
    return [...this.devices.values()].map((d) => d.info);
  }

  // ---- desired state ----

  private matches(r: ReleaseInfo, d: DeviceInfo): boolean {
    if (r.boards.length > 0 && (d.board === null || !r.boards.includes(d.board))) return false;
    if (r.tags.length > 0 && !r.tags.some((t) => d.tags.includes(t))) return false;
    if (r.devices.length > 0 && !r.devices.includes(d.identity)) return false;
    return inRollout(d.identity, r.id, r.rolloutPercent);
  }

  /** One artifact per package: the one for the device's board, else a board-less one, else the first. */
  private pickComponents(r: ReleaseInfo, board: string | null): ArtifactInfo[] {
    const byPackage = new Map<string, ArtifactInfo[]>();
    for (const id of r.artifacts) {
      const a = this.artifacts.get(id)?.info;
      if (!a) continue;
      const list = byPackage.get(a.package) ?? [];
      list.push(a);
      byPackage.set(a.package, list);
    }
    const out: ArtifactInfo[] = [];
    for (const list of byPackage.values()) {
      const pick = list.find((a) => board !== null && a.board === board) ?? list.find((a) => a.board === null) ?? list[0];
      if (pick) out.push(pick);
    }
    return out;
  }

  desiredFor(identity: string): Desired {
    const d = this.devices.get(identity)?.info ?? { identity, key: null, board: null, tags: [] };
    let best: ReleaseInfo | null = null;
    for (const r of this.releases.values()) {
      if (r.state !== 'active' || (best && r.activationSeq <= best.activationSeq)) continue;
      if (this.matches(r, d)) best = r;
    }
    return { release: best, components: best ? this.pickComponents(best, d.board) : [] };
  }

  private manifestBytes(seq: number, components: ArtifactInfo[]): Buffer {
    const list = components.map(
      (a) =>
        new Map<number, string | number>([
          [1, a.package],
          [2, a.version],
          [3, a.sha256],
          [4, a.size_bytes],
          [5, a.uri],
        ]),
    );
    const hash = createHash('sha256').update(encodeCbor(list)).digest('hex');
    return encodeCbor(
      new Map<number, unknown>([
        [1, seq],
        [2, hash],
        [3, list],
      ]),
    );
  }

  /** The CBOR manifest (FORMATS.md) a device sees: {1 seq, 2 hash, 3 [{1 pkg, 2 version, 3 hash, 4 size, 5 uri}]}. */
  manifestFor(identity: string): Buffer {
    const desired = this.desiredFor(identity);
    return this.manifestBytes(desired.release?.activationSeq ?? 0, desired.components);
  }
}

export type { ReleaseState };
