import { Command, Option } from 'commander';
import { DATASETS, Dataset } from '../../definition/layout';
import { lakeOption, onStageOption, wholeNumber, whereOf } from '../common/options';

/** `stedi quarantine`: the landing lines the last run rejected. */
export function registerQuarantine(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('quarantine')
    .description(
      "show the landing lines the last run rejected, with file, line number and reason: a local lake's, or with --stage through Athena",
    )
    .addOption(lakeOption())
    .addOption(onStageOption())
    .addOption(new Option('--dataset <name>', 'only this dataset').choices(DATASETS))
    .option('--width <n>', 'show at most this many characters of each line', wholeNumber, 60)
    .option('--json', 'print a JSON array (lines in full)')
    .action(
      async (
        options: { lake: string; stage?: string; dataset?: Dataset; json?: boolean; width: number },
        command: Command,
      ) =>
        setExitCode(
          await (await import('../actions/quarantine-command')).quarantineCommand(whereOf(options, command), options),
        ),
    );
}
