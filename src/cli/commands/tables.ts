import { Command } from 'commander';
import { lakeOption, onStageOption, whereOf } from '../common/options';

/** `stedi tables`: the catalog tables, or one table's history. */
export function registerTables(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('tables')
    .description(
      'list the catalog tables with location, columns, partition keys, row count and last update: the local catalog, or with --stage the Glue Data Catalog',
    )
    .addOption(lakeOption())
    .addOption(onStageOption())
    .option('--no-rows', 'with --stage: do not count the rows (which runs one Athena query)')
    .option('--history <table>', "list the table's snapshots, newest first: run id, time, row count")
    .option('--json', 'print a JSON array')
    .action(
      async (
        options: { lake: string; stage?: string; json?: boolean; rows: boolean; history?: string },
        command: Command,
      ) =>
        setExitCode(
          options.history !== undefined
            ? await (
                await import('../actions/history-command')
              ).historyCommand(whereOf(options, command), options.history, options)
            : await (await import('../actions/tables-command')).tablesCommand(whereOf(options, command), options),
        ),
    );
}
