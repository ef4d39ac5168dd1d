import { Command } from 'commander';
import { lakeOption, onStageOption, whereOf } from '../common/options';

/** `stedi check`: the data checks of glue/checks/. */
export function registerCheck(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('check')
    .description(
      'run the data checks of glue/checks/ (pass or fail each; exit code 1 when one fails): on DuckDB over a local lake, or with --stage on Athena',
    )
    .addOption(lakeOption())
    .addOption(onStageOption())
    .option('--json', 'print a JSON array of results')
    .action(async (options: { lake: string; stage?: string; json?: boolean }, command: Command) =>
      setExitCode(await (await import('../actions/check-command')).checkCommand(whereOf(options, command), options)),
    );
}
