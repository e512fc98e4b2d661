/** The list of top-level commands, in the order `ota-sim --help` shows them. */
import type { CommandModule } from 'yargs';
import { bootCommand } from './boot.js';
import { demoCommand } from './demo.js';
import { deviceCommand } from './device.js';
import { flashCommand } from './flash.js';
import { fleetCommands } from './fleet.js';
import { imageCommand } from './image.js';
import { proxyCommand } from './proxy.js';
import { runCommand } from './run.js';
import { serveCommand } from './serve.js';
import { sweepCommand } from './sweep.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  imageCommand,
  flashCommand,
  bootCommand,
  runCommand,
  sweepCommand,
  serveCommand,
  proxyCommand,
  deviceCommand,
  ...fleetCommands,
  demoCommand,
];
