/**
 * Observe notification ordering (RFC 7641 §3.4): a notification is fresh if its 24-bit sequence
 * number is newer than the last one modulo 2^24 wrap-around, or if more than 128 s passed since
 * the last fresh one (the sequence space may have wrapped meanwhile). Stale ones are dropped.
 */
export const OBSERVE_SEQUENCE_MODULUS = 2 ** 24;
const HALF = 2 ** 23;
/** After this long, any sequence number counts as fresh (RFC 7641 §3.4). */
export const OBSERVE_FRESHNESS_WINDOW_MS = 128_000;

export function isFresh(last: { sequence: number; at_ms: number } | null, sequence: number, now_ms: number): boolean {
  if (last === null) return true;
  const v1 = last.sequence;
  const v2 = sequence;
  return (v1 < v2 && v2 - v1 < HALF) || (v1 > v2 && v1 - v2 > HALF) || now_ms > last.at_ms + OBSERVE_FRESHNESS_WINDOW_MS;
}
