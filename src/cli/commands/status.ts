import { Command } from 'commander';
import { stageOption, wholeNumber } from '../common/options';

/** `stedi status`: recent executions of the deployed state machine. */
export function registerStatus(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('status')
    .description('list recent executions of the deployed state machine with status and duration')
    .addOption(stageOption())
    .option('--limit <n>', 'how many executions', wholeNumber, 10)
    .option('--json', 'print a JSON array')
    .action(async (options: { stage: string; limit: number; json?: boolean }) =>
      setExitCode(await (await import('../actions/aws-commands')).statusCommand(options)),
    );
}
