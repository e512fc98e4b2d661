/**
 * CoAP transmission parameters (RFC 7252 §4.8), per device. Defaults are the RFC's; tests and
 * scenarios shrink them. All durations are simulated milliseconds on the injected clock, so a
 * scaled clock scales CoAP timing with everything else.
 */
import type { Prng } from '../prng.js';
import { NetError } from './errors.js';

export interface CoapTiming {
  /** ACK_TIMEOUT: the initial retransmission timeout before randomisation. */
  ackTimeout_ms: number;
  /** ACK_RANDOM_FACTOR (≥ 1): the initial timeout is drawn from [ACK_TIMEOUT, ACK_TIMEOUT × factor). */
  ackRandomFactor: number;
  /** MAX_RETRANSMIT: retransmissions after the first transmission. */
  maxRetransmit: number;
  /** MAX_LATENCY: the longest a datagram is assumed to travel. */
  maxLatency_ms: number;
  /** PROCESSING_DELAY: how long the peer may take before it ACKs. */
  processingDelay_ms: number;
  /**
   * EXCHANGE_LIFETIME override; by default derived as MAX_TRANSMIT_SPAN + 2 × MAX_LATENCY +
   * PROCESSING_DELAY. Bounds how long a received message ID is remembered for deduplication.
   */
  exchangeLifetime_ms?: number;
  /** How long to wait for a separate response after an empty ACK (default EXCHANGE_LIFETIME). */
  separateResponseTimeout_ms?: number;
}

export const DEFAULT_COAP_TIMING: Readonly<CoapTiming> = Object.freeze({
  ackTimeout_ms: 2000,
  ackRandomFactor: 1.5,
  maxRetransmit: 4,
  maxLatency_ms: 100_000,
  processingDelay_ms: 2000,
});

/** Upper bound on MAX_RETRANSMIT: beyond it the backoff (2^n) is no longer meaningful. */
export const MAX_RETRANSMIT_LIMIT = 20;

export interface ResolvedCoapTiming extends Required<CoapTiming> {
  /** MAX_TRANSMIT_SPAN = ACK_TIMEOUT × (2^MAX_RETRANSMIT − 1) × ACK_RANDOM_FACTOR. */
  maxTransmitSpan_ms: number;
}

/** Fill defaults, derive EXCHANGE_LIFETIME, and check every field's range. */
export function resolveTiming(partial: Partial<CoapTiming> = {}): ResolvedCoapTiming {
  const t = { ...DEFAULT_COAP_TIMING, ...partial };
  const bad = (field: string, expected: string): never => {
    throw new NetError('BAD_REQUEST', `CoAP timing ${field} must be ${expected}`);
  };
  if (!(t.ackTimeout_ms > 0 && Number.isFinite(t.ackTimeout_ms))) bad('ackTimeout_ms', '> 0');
  if (!(t.ackRandomFactor >= 1 && t.ackRandomFactor <= 16)) bad('ackRandomFactor', 'in [1, 16]');
  if (!(Number.isInteger(t.maxRetransmit) && t.maxRetransmit >= 0 && t.maxRetransmit <= MAX_RETRANSMIT_LIMIT)) {
    bad('maxRetransmit', `an integer in [0, ${MAX_RETRANSMIT_LIMIT}]`);
  }
  if (!(t.maxLatency_ms >= 0)) bad('maxLatency_ms', '≥ 0');
  if (!(t.processingDelay_ms >= 0)) bad('processingDelay_ms', '≥ 0');
  const maxTransmitSpan_ms = t.ackTimeout_ms * (2 ** t.maxRetransmit - 1) * t.ackRandomFactor;
  const exchangeLifetime_ms = t.exchangeLifetime_ms ?? maxTransmitSpan_ms + 2 * t.maxLatency_ms + t.processingDelay_ms;
  if (!(exchangeLifetime_ms > 0)) bad('exchangeLifetime_ms', '> 0');
  const separateResponseTimeout_ms = t.separateResponseTimeout_ms ?? exchangeLifetime_ms;
  if (!(separateResponseTimeout_ms > 0)) bad('separateResponseTimeout_ms', '> 0');
  return { ...t, maxTransmitSpan_ms, exchangeLifetime_ms, separateResponseTimeout_ms };
}

/** The first retransmission timeout of one exchange, its random part drawn from the device's PRNG. */
export function initialTimeout_ms(timing: ResolvedCoapTiming, prng: Prng): number {
  return timing.ackTimeout_ms * (1 + (timing.ackRandomFactor - 1) * prng.next());
}
