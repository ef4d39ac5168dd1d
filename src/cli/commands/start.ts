import { Command, Option } from 'commander';
import { FROM_VALUES, stageOption } from '../common/options';

/** `stedi start`: start an execution of the deployed state machine. */
export function registerStart(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('start')
    .description(
      'start an execution of the deployed state machine (AWS; honours AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL)',
    )
    .addOption(new Option('--from <stage>', 'where the run starts').choices(FROM_VALUES).default('all'))
    .addOption(stageOption())
    .option('--wait', 'follow the execution to its end, printing each state')
    .action(async (options: { from: (typeof FROM_VALUES)[number]; stage: string; wait?: boolean }) =>
      setExitCode(await (await import('../actions/aws-commands')).startCommand(options)),
    );
}
