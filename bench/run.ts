/**
 * `npm run bench`: every benchmark, printed as figures for this machine beside a reference
 * measured in the same process. Not a test: nothing here passes or fails on speed.
 */
import { cpus } from 'node:os';
import { benchAgent } from './agent.js';
import { benchFleet } from './fleet.js';
import { benchDtls } from './dtls.js';
import { benchBoot } from './boot.js';
import { benchFlash } from './flash.js';
import { printResults } from './harness.js';
import type { BenchResult } from './harness.js';
import { benchImage } from './image.js';
import { benchNet } from './net.js';
import { benchServer } from './server.js';

const suites: [string, () => Promise<BenchResult[]>][] = [
  ['flash model', benchFlash],
  ['images (sign / verify)', benchImage],
  ['bootloader sweep (nrf52840 swap-move, 200 KiB)', benchBoot],
  ['DTLS server', benchDtls],
  ['update server', benchServer],
  ['device CoAP download (vs libcoap)', benchNet],
  ['agent: whole-device update over DTLS (vs libcoap)', benchAgent],
  ['fleet (issue 9 targets)', benchFleet],
];

const only = process.argv.slice(2);
process.stdout.write(`ota-sim benchmarks — node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}\n`);
for (const [title, run] of suites) {
  if (only.length > 0 && !only.some((o) => title.includes(o))) continue;
  printResults(title, await run());
}
