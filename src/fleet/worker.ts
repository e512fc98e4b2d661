/**
 * Worker-thread entry of a fleet: runs the devices it is given (DeviceSlice) and talks to the main
 * thread with the messages of types.ts (progress every PROGRESS_MS of wall time, each update as it
 * happens, the outcomes when told to stop).
 */
import { parentPort } from 'node:worker_threads';
import { DeviceSlice } from './devices.js';
import { emptyChaosTotals, emptyProgress } from './types.js';
import type { FromWorker, ToWorker } from './types.js';

const PROGRESS_MS = 250;
const port = parentPort;
if (!port) throw new Error('assertion failed: fleet worker started outside a worker thread');
let slice: DeviceSlice | null = null;
let timer: NodeJS.Timeout | null = null;
const post = (m: FromWorker): void => port.postMessage(m);

const fail = (e: unknown): void => post({ type: 'error', message: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) });
let stopRequested = false;

port.on('message', (m: ToWorker) => {
  try {
    if (m.type === 'start') {
      // async: the chaos devices' proxies bind their sockets first
      void DeviceSlice.create(m.config, m.devices, (index, at_wallMs) => post({ type: 'updated', index, at_wallMs }))
        .then((s) => {
          if (stopRequested) {
            s.stop(); // told to stop while its proxies were starting: close them
            return;
          }
          slice = s;
          s.start();
          timer = setInterval(() => post({ type: 'progress', progress: s.progress() }), PROGRESS_MS);
        })
        .catch(fail);
    } else if (m.type === 'pace') {
      slice?.setServerLag(m.serverLag_wallMs);
    } else if (m.type === 'stop') {
      stopRequested = true;
      if (timer) clearInterval(timer);
      const live = slice?.progress() ?? emptyProgress();
      const chaos = slice?.chaosTotals() ?? emptyChaosTotals();
      const outcomes = slice?.stop() ?? [];
      post({ type: 'done', outcomes, progress: slice?.progress() ?? emptyProgress(), live, chaos });
      // let the closed sockets drain, then end the thread
      setTimeout(() => port.close(), 50);
    }
  } catch (e) {
    fail(e);
  }
});
