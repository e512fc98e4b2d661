/**
 * node-coap's message-layer timers on the server's time scale.
 *
 * node-coap 1.5 keeps its timing in one process-wide object (`coap.parameters`, changed with
 * `coap.updateTiming`) and reads it at the moment it builds something: the reply cache's and
 * block caches' lifetime when a server is created, the prune period when it listens, and the
 * ACK timeout, retransmission count, MAX_RTT and EXCHANGE_LIFETIME (247 s) each time it sends a
 * message (one RetrySend per message). Its timers are plain `setTimeout` and lru-cache's clock is
 * `performance.now()`: there is no hook to run them on an injected Clock, so a ManualClock cannot
 * drive them. What can be done, and is done here, is scaling: the server runs each of those
 * node-coap calls with the time parameters multiplied by its clock's scale and puts the
 * process-wide values back right after (all synchronous, so no other node-coap user in the
 * process ever sees the scaled values). With `ScaledClock(0.01)` a notification is retransmitted
 * after 20..30 ms instead of 2..3 s and an unacknowledged observer is dropped after 2.47 s
 * instead of 247 s, in step with the DTLS timers and everything else on that clock.
 * The piggyback delay (50 ms before an empty ACK) is processing time, not protocol time: it is
 * not scaled.
 */
import coap from 'coap';

const TIME_PARAMETERS = [
  'ackTimeout',
  'maxRTT',
  'exchangeLifetime',
  'nonLifetime',
  'maxTransmitSpan',
  'maxTransmitWait',
  'maxLatency',
  'processingDelay',
  'defaultLeisure',
  'pruneTimerPeriod',
] as const;

/**
 * `v_s * scale` as whole milliseconds whose `× 1000` is exact in floating point: node-coap turns
 * some parameters into lru-cache TTLs (`exchangeLifetime * 1000`), which must be positive integers.
 */
function scaledSeconds(v_s: number, scale: number): number {
  if (v_s === 0) return 0;
  let ms = Math.max(1, Math.round(v_s * scale * 1000));
  for (let guard = 0; guard < 16 && !Number.isInteger((ms / 1000) * 1000); guard++) ms++;
  return ms / 1000;
}

/** Run fn with node-coap's time parameters multiplied by `scale` (1: unchanged). */
export function withCoapTimeScale<T>(scale: number, fn: () => T): T {
  if (scale === 1) return fn();
  const p = coap.parameters;
  const saved = TIME_PARAMETERS.map((k) => p[k]);
  for (const k of TIME_PARAMETERS) p[k] = scaledSeconds(p[k], scale);
  try {
    return fn();
  } finally {
    TIME_PARAMETERS.forEach((k, i) => {
      p[k] = saved[i] ?? p[k];
    });
  }
}
