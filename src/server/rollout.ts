/**
 * Deterministic rollout: a device's bucket for a release is a hash of (identity, release id), in
 * basis points 0..9999. A release at P % reaches the devices whose bucket is below P × 100: the
 * same devices whatever the fleet size, and raising P only adds devices.
 */
import { createHash } from 'node:crypto';

export const BUCKETS = 10_000;

export function rolloutBucket(identity: string, releaseId: string): number {
  const h = createHash('sha256').update(identity).update('\0').update(releaseId).digest();
  return h.readUInt32BE(0) % BUCKETS;
}

export function inRollout(identity: string, releaseId: string, percent: number): boolean {
  return rolloutBucket(identity, releaseId) < Math.round(percent * (BUCKETS / 100));
}
