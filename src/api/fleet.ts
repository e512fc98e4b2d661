/**
 * API facade, fleets: `runFleet(options)` with the progress and server callbacks folded into the
 * options (src/fleet keeps them as a second argument). Everything else is src/fleet's runFleet:
 * N full devices against the embedded server (or yours), in worker threads, returning FleetResult.
 */
import { EnvironmentError, OtaSimError } from '../errors.js';
import { runFleet as runFleetCore } from '../fleet/index.js';
import type { FleetCallbacks, FleetOptions, FleetResult } from '../fleet/index.js';

export type RunFleetOptions = FleetOptions & FleetCallbacks;

/** Run a fleet; `onProgress` is called about 4 times a second and once more with `done: true` (callbacks may also come second, as src/fleet takes them). */
export async function runFleet(options: RunFleetOptions, callbacks: FleetCallbacks = {}): Promise<FleetResult> {
  const { onProgress = callbacks.onProgress, onServer = callbacks.onServer, ...rest } = options;
  try {
    return await runFleetCore(rest, { ...(onProgress ? { onProgress } : {}), ...(onServer ? { onServer } : {}) });
  } catch (e) {
    // a worker thread that failed surfaces from src/fleet as a plain Error; the API promises a code
    if (e instanceof Error && !(e instanceof OtaSimError) && e.message.startsWith('fleet worker:')) {
      const typed = new EnvironmentError('FLEET_WORKER_FAILED', e.message);
      typed.cause = e;
      throw typed;
    }
    throw e;
  }
}
