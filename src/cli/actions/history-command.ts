import { AthenaClient } from '@aws-sdk/client-athena';
import { runAthenaQuery } from '../../aws/athena';
import { awsClientConfig } from '../../aws/clients';
import {
  TableNotYetMadeError,
  UnknownRunError,
  parseSnapshots,
  rewriteAsOf,
  snapshotsAsOf,
  snapshotsSql,
} from '../../aws/iceberg-history';
import { ALL_TABLES, DERIVED_TABLES, TableName, isTableName } from '../../definition/layout';
import { RunNotKeptError, lakeAsOf, tableHistory } from '../../lake/lake-history';
import { UsageError } from '../common/errors';
import { formatTable, printable } from '../common/format';
import { BucketStateMetadataSource } from '../../glue-engine/iceberg-history';
import { icebergTablesAsOf } from '../../glue-engine/iceberg-as-of';
import { icebergTableHistory } from '../../iceberg/table-metadata';
import { athenaTarget, existingLake } from './targets';
import type { Where } from '../common/options';

/** `stedi tables --history TABLE` and `stedi query --as-of RUN`: every run a snapshot (docs/time-travel.md). */

const out = (line: string) => process.stdout.write(`${line}\n`);
const note = (line: string) => process.stderr.write(`${line}\n`);

/** The tables the Glue jobs write as Iceberg tables: the ones with snapshots on the stack. */
const ICEBERG_TABLES: readonly string[] = DERIVED_TABLES;

/** One line of --history: a snapshot of the table. */
export interface HistoryRow {
  runId: string | null;
  committedAt: string;
  rows: number | null;
  /** On the stack: the Iceberg snapshot id (text: a long). */
  snapshotId?: string;
  current: boolean;
}

export async function historyCommand(where: Where, table: string, options: { json?: boolean }): Promise<number> {
  const history = 'stage' in where ? await stageHistory(where.stage, table) : await lakeHistory(where.lake, table);
  if (options.json) out(JSON.stringify(history));
  else {
    const rows = history.map((h) => ({
      run: printable(h.runId ?? '(none recorded)'),
      committed: h.committedAt,
      rows: h.rows ?? '?',
      ...(history.some((r) => r.snapshotId !== undefined) ? { snapshot: h.snapshotId } : {}),
      '': h.current ? 'current' : '',
    }));
    out(formatTable(Object.keys(rows[0] ?? { run: 0, committed: 0, rows: 0, '': 0 }), rows));
    out(`(${history.length} snapshot${history.length === 1 ? '' : 's'} of ${table}, newest first)`);
  }
  return 0;
}

function checkTableName(table: string, among: readonly string[]): asserts table is TableName {
  if (!isTableName(table) || !among.includes(table))
    throw new UsageError(`--history ${table}: not a table with snapshots; give one of ${among.join(', ')}`);
}

async function lakeHistory(dir: string, table: string): Promise<HistoryRow[]> {
  checkTableName(table, ALL_TABLES);
  // A Glue engine's results lake (<lake>/_glue): the derived tables' history is their Iceberg snapshots.
  const iceberg = ICEBERG_TABLES.includes(table) ? BucketStateMetadataSource.of(dir) : undefined;
  if (iceberg) {
    const snapshots = await icebergTableHistory(iceberg, table);
    if (!snapshots?.length)
      throw new UsageError(`--history ${table}: the Glue engine's lake ${dir} has no snapshot of it yet`);
    return snapshots.map((s, i) => ({
      runId: s.runId,
      committedAt: s.committedAt,
      rows: s.rows,
      snapshotId: s.snapshotId,
      current: i === 0,
    }));
  }
  const history = tableHistory(existingLake(dir), table);
  if (!history)
    throw new UsageError(`--history ${table}: the lake ${dir} has no such table yet; run \`stedi run\` first`);
  return history;
}

async function stageHistory(stage: string, table: string): Promise<HistoryRow[]> {
  checkTableName(table, ICEBERG_TABLES);
  const target = await athenaTarget(stage);
  const result = await runAthenaQuery(
    new AthenaClient(awsClientConfig()),
    target,
    snapshotsSql(target.database, [table]),
  );
  return parseSnapshots(result.rows).map((s, i) => ({
    runId: s.runId,
    committedAt: s.committedAt,
    rows: s.rows,
    snapshotId: s.snapshotId,
    current: i === 0,
  }));
}

/** `stedi query --as-of RUN`: the SQL over every table as that run left it. */
export async function queryAsOfCommand(
  sql: string,
  where: Where,
  options: { asOf: string; json?: boolean },
): Promise<number> {
  const { columns, rows } =
    'stage' in where
      ? await queryStageAsOf(sql, where.stage, options.asOf)
      : await queryLakeAsOf(sql, where.lake, options.asOf);
  out(
    options.json
      ? JSON.stringify(rows)
      : `${formatTable(columns, rows)}\n(${rows.length} row${rows.length === 1 ? '' : 's'})`,
  );
  return 0;
}

async function queryLakeAsOf(sql: string, dir: string, runId: string) {
  const lake = existingLake(dir);
  // A Glue engine's results lake: its Iceberg tables are read from their snapshots (glue-engine/iceberg-as-of.ts).
  const iceberg = BucketStateMetadataSource.of(dir);
  const views = iceberg ? await icebergViewsAsOf(iceberg, dir, sql, runId) : undefined;
  let snapshot;
  try {
    snapshot = lakeAsOf(lake, runId);
  } catch (error) {
    throw error instanceof RunNotKeptError ? new UsageError(`--as-of ${error.message}`) : error;
  }
  const { QuerySession, QueryTextError } = await import('../../stand-ins/athena/query');
  const session = await QuerySession.open(lake, sql, snapshot, views);
  for (const problem of session.unreadable) note(`warning: table not available: ${problem}`);
  try {
    return await session.query(sql).catch((error: unknown) => {
      throw error instanceof QueryTextError ? new UsageError(error.message) : error;
    });
  } finally {
    session.close();
  }
}

async function icebergViewsAsOf(source: BucketStateMetadataSource, dir: string, sql: string, runId: string) {
  let views;
  try {
    views = await icebergTablesAsOf(source, ICEBERG_TABLES, runId);
    // Only to refuse, as on AWS, a query naming a table that had no snapshot yet at that run.
    rewriteAsOf(sql, new Map([...views].map(([t, v]) => [t, v?.snapshotId ?? null])), runId);
  } catch (error) {
    if (error instanceof UnknownRunError)
      throw new UsageError(
        `--as-of no snapshot of the Iceberg tables in the Glue engine's lake ${dir} records run ${runId}: ` +
          `list the runs with \`stedi tables --history TABLE --lake ${dir}\``,
      );
    throw error instanceof TableNotYetMadeError ? new UsageError(`--as-of ${error.message}`) : error;
  }
  const read = [...views].map(([t, v]) => `${t} ${v ? `snapshot ${v.snapshotId}, ${v.files} files` : 'none yet'}`);
  note(`reading the Iceberg tables as run ${runId} left them: ${read.join('; ')}`);
  note(`(landing tables and quarantine views from the results lake's snapshot of that run)`);
  return new Map([...views].map(([t, v]) => [t as TableName, v]));
}

async function queryStageAsOf(sql: string, stage: string, runId: string) {
  const athena = new AthenaClient(awsClientConfig());
  const target = await athenaTarget(stage);
  const snapshots = parseSnapshots(
    (await runAthenaQuery(athena, target, snapshotsSql(target.database, [...ICEBERG_TABLES]))).rows,
  );
  let rewritten: string;
  try {
    const versions = snapshotsAsOf(snapshots, [...ICEBERG_TABLES], runId);
    rewritten = rewriteAsOf(sql, versions, runId);
  } catch (error) {
    const usage = error instanceof UnknownRunError || error instanceof TableNotYetMadeError;
    throw usage ? new UsageError(`--as-of ${error.message}`) : error;
  }
  note(`reading the Iceberg tables as run ${runId} left them (landing and quarantine tables as they are now)`);
  return runAthenaQuery(athena, target, rewritten);
}
