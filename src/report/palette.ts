/**
 * Colors of the HTML report, shared by the timeline lanes and the statechart drawing so an
 * agent state has the same color in both.
 */

/** Fixed colors for the agent states (by leaf name); unknown states get a stable hashed color. */
const STATE_COLORS: Record<string, string> = {
  booting: '#9e9e9e',
  testing: '#66bb6a',
  selfTest: '#43a047',
  confirming: '#2e7d32',
  backoff: '#ffb74d',
  rollingBack: '#e64a19',
  connecting: '#81d4fa',
  connectBackoff: '#ffb74d',
  reporting: '#4db6ac',
  idle: '#cfd8dc',
  downloading: '#1e88e5',
  downloadBackoff: '#ffa726',
  reconnecting: '#4fc3f7',
  downloaded: '#5c6bc0',
  verifying: '#7e57c2',
  refusing: '#8d6e63',
  staging: '#3949ab',
  announcing: '#26a69a',
  rebooting: '#546e7a',
};

const FALLBACK = ['#80cbc4', '#ce93d8', '#a5d6a7', '#ffcc80', '#90caf9', '#bcaaa4', '#f48fb1', '#b0bec5'] as const;

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** The color of an agent state, given as a path ("testing.selfTest") or a leaf name ("selfTest"). */
export function stateColor(state: string): string {
  const leaf = state.split('.').pop() ?? state;
  return STATE_COLORS[leaf] ?? FALLBACK[hash(leaf) % FALLBACK.length] ?? '#b0bec5';
}

/** Colors of flash phases (download / stage / swap / confirm / revert ...). */
const PHASE_COLORS: Record<string, string> = {
  download: '#1565c0',
  stage: '#283593',
  swap: '#6a1b9a',
  confirm: '#2e7d32',
  revert: '#d84315',
  erase: '#00838f',
  verify: '#7e57c2',
};

export function phaseColor(phase: string): string {
  const key = phase.toLowerCase().split(/[^a-z]/)[0] ?? phase;
  return PHASE_COLORS[key] ?? FALLBACK[hash(key) % FALLBACK.length] ?? '#78909c';
}

export const MARK_COLORS = {
  powerCut: '#d50000',
  netFault: '#ef6c00',
  report: '#0d47a1',
  boot: '#2e7d32',
  reboot: '#37474f',
  server: '#6a1b9a',
  fault: '#c2185b',
  busy: '#90a4ae',
} as const;
