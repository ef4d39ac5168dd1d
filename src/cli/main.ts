import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config';
import { LakeAccessError } from '../lake/lake';
import { ConsentPolicyError } from '../lake/consent';
import { LakeBusyError } from '../lake/lake-lock';
import { UsageError } from './common/errors';
import { registerCheck } from './commands/check';
import { registerDoctor } from './commands/doctor';
import { registerDrop } from './commands/drop';
import { registerGenerate } from './commands/generate';
import { registerQuarantine } from './commands/quarantine';
import { registerQuery } from './commands/query';
import { registerRun } from './commands/run';
import { registerStart } from './commands/start';
import { registerStatus } from './commands/status';
import { registerTables } from './commands/tables';
import { registerWatch } from './commands/watch';
import { LAKE_BUSY_EXIT_CODE } from './common/options';

// Commands load what only they need (the AWS SDK, the watcher) when they run, not at every start.
export function buildProgram(setExitCode: (code: number) => void): Command {
  const program = new Command('stedi')
    .description(
      'STEDI lakehouse: run the pipeline on a local lake, query it, generate sample data, trigger and follow runs',
    )
    // Commander's errors (unknown option, bad choice, bad number) become exit code 2 in main().
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(s) });

  registerRun(program, setExitCode);
  registerQuery(program, setExitCode);
  registerCheck(program, setExitCode);
  registerTables(program, setExitCode);
  registerDoctor(program, setExitCode);
  registerQuarantine(program, setExitCode);
  registerGenerate(program, setExitCode);
  registerWatch(program, setExitCode);
  registerDrop(program, setExitCode);
  registerStart(program, setExitCode);
  registerStatus(program, setExitCode);

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram((code) => (process.exitCode = code));
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message (and the help); --help itself exits 0.
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    const usage =
      error instanceof UsageError ||
      error instanceof ConfigError ||
      error instanceof LakeAccessError ||
      error instanceof ConsentPolicyError;
    process.stderr.write(`stedi: ${error instanceof Error ? error.message : String(error)}\n`);
    if (process.env.STEDI_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    process.exitCode = error instanceof LakeBusyError ? LAKE_BUSY_EXIT_CODE : usage ? 2 : 1;
  }
}
