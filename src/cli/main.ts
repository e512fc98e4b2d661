/**
 * ota-sim command line: yargs with one module per command. User errors (OtaSimError) print one
 * line and exit with their documented code; anything else is a bug and keeps its stack trace.
 */
import yargs from 'yargs';
import type { Argv } from 'yargs';
import { OtaSimError } from '../errors.js';
import { commands } from './commands.js';

export async function main(args: string[]): Promise<void> {
  let parser: Argv = yargs(args)
    .scriptName('ota-sim')
    .usage('$0 <command> [options]')
    .option('json', { type: 'boolean', describe: 'print one JSON document on stdout instead of text', global: true })
    .strict()
    .demandCommand(1, 'name a command: see ota-sim --help')
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageFailure(msg);
    });
  for (const command of commands) parser = parser.command(command);
  try {
    await parser.parseAsync();
  } catch (err) {
    process.exitCode = report(err);
  }
}

class UsageFailure extends OtaSimError {
  constructor(message: string) {
    // yargs words some failures over several lines; errors are one line.
    super('USAGE', message.split('\n').map((l) => l.trim()).filter(Boolean).join(' '), 2);
  }
}

function report(err: unknown): number {
  if (err instanceof OtaSimError) {
    process.stderr.write(`ota-sim: ${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(`ota-sim: internal error (a bug, please report it):\n${err instanceof Error ? err.stack : String(err)}\n`);
  return 70;
}
