/** The chaos proxy: a seeded UDP fault relay between devices and a server (FAULTS.md "Network"). */
export { ChaosProxy, DEFAULT_FAULT_LOG_LIMIT, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_FLOWS, DEFAULT_MAX_HELD, DEFAULT_STALE_LINGER_MS, MAX_FLOWS_LIMIT, loopbackHost } from './proxy.js';
export { ChaosDecider, DEFAULT_REORDER_TIMEOUT_MS, MAX_CORRUPT_BYTES, MAX_DATAGRAM_BYTES, MAX_DELAY_MS, applyCorruption, decideDatagram, labelHash, validateSchedule } from './schedule.js';
export type { DatagramDecision } from './schedule.js';
export type { ChaosProxyOptions, ChaosSchedule, ProxyDirection, ProxyFault, ProxyFaultKind, ProxyStats } from './types.js';
