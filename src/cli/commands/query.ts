import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { Lake } from '../../lake/lake';
import { LakeLock, LakeLockFileError, describeHolder } from '../../lake/lake-lock';
import { isEmptySql } from '../../sql/text';
import { UsageError } from '../common/errors';
import { formatTable, printable } from '../common/format';
import { lakeOption, onStageOption, whereOf } from '../common/options';

async function queryCommand(sql: string, options: { lake: string; json?: boolean }): Promise<number> {
  const lake = new Lake(options.lake);
  if (!existsSync(lake.root)) throw new UsageError(`--lake ${options.lake}: no such folder; run \`stedi run\` first`);
  lake.checkAccess({ write: false });
  // A query never waits for the lake lock: it reads the versions the catalog has committed. So a lock file
  // it cannot make sense of only costs it the note about a running execution.
  const running = await new LakeLock(lake).holder().catch((error: unknown) => {
    if (!(error instanceof LakeLockFileError)) throw error;
    process.stderr.write(`warning: ${error.message}; the query reads the last committed version of each table\n`);
    return undefined;
  });
  if (running?.alive)
    process.stderr.write(
      `note: execution ${running.holder.execution} is running on this lake (${describeHolder(running.holder)}); ` +
        'the query reads the last committed version of each table\n',
    );
  const { QuerySession, QueryTextError } = await import('../../stand-ins/athena/query');
  const session = await QuerySession.open(lake, sql);
  for (const problem of session.unreadable) process.stderr.write(`warning: table not available: ${problem}\n`);
  for (const { file, reason } of session.skippedLandingFiles)
    process.stderr.write(`warning: landing file ${printable(file)} not read: ${printable(reason)}\n`);
  try {
    const { columns, rows } = await session.query(sql).catch((error: unknown) => {
      throw error instanceof QueryTextError ? new UsageError(error.message) : error;
    });
    process.stdout.write(
      options.json
        ? `${JSON.stringify(rows)}\n`
        : `${formatTable(columns, rows)}\n(${rows.length} row${rows.length === 1 ? '' : 's'})\n`,
    );
    return 0;
  } finally {
    session.close();
  }
}

/** `stedi query`: SQL over the catalog tables, on a local lake or with --stage on Athena. */
export function registerQuery(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('query')
    .description(
      'run SQL over the catalog tables: on a local lake (the local stand-in for Athena), or with --stage on Athena',
    )
    .argument('<sql>', 'the query, e.g. "select count(*) from customer_curated"')
    .addOption(lakeOption())
    .addOption(onStageOption())
    .option('--json', 'print a JSON array of row objects')
    .option('--as-of <run>', 'read every table as that run left it (runs: `stedi tables --history TABLE`)')
    .action(
      async (
        sql: string,
        options: { lake: string; stage?: string; json?: boolean; asOf?: string },
        command: Command,
      ) => {
        const where = whereOf(options, command);
        if (isEmptySql(sql)) throw new UsageError('the query is empty: give one SQL statement');
        const asOf = options.asOf;
        setExitCode(
          asOf !== undefined
            ? await (await import('../actions/history-command')).queryAsOfCommand(sql, where, { ...options, asOf })
            : 'stage' in where
              ? await (await import('../actions/targets')).queryOnStage(sql, { stage: where.stage, json: options.json })
              : await queryCommand(sql, options),
        );
      },
    );
}
