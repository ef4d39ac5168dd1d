import { rewriteAsOf } from './iceberg-history';
import { sqlIdentifier, sqlString } from '../sql/quote';

/**
 * The data checks on a run's Iceberg branches (write, audit, publish; docs/iceberg.md): each derived table is
 * read at the head of the run's branch when the run wrote it, else at main's head (a table the run did not
 * write is as published).
 *
 * Athena takes a snapshot id in `FOR VERSION AS OF` ("the bigint snapshot ID associated with an Iceberg table
 * version": Athena guide, "Perform time travel and version travel queries"); a branch name is not documented
 * there. So the heads come from each table's `$refs` metadata table (Iceberg's refs table: name, type,
 * snapshot_id), and each check's references get `FOR VERSION AS OF <id>` as `--as-of` does (rewriteAsOf).
 */

/** One query giving, per table, the snapshot ids of its main and of the run's branch (rows of those present). */
export function branchHeadsSql(database: string, tables: readonly string[], branch: string): string {
  if (tables.length === 0) throw new Error('no table to read the branch heads of');
  return tables
    .map(
      (table) => `select ${sqlString(table)} as table_name, name, cast(snapshot_id as varchar) as snapshot_id
from ${sqlIdentifier(database)}.${sqlIdentifier(`${table}$refs`)}
where type = 'BRANCH' and name in ('main', ${sqlString(branch)})`,
    )
    .join('\nunion all\n');
}

/** Each table's snapshot to audit: the branch's head, else main's; a table with neither is left out. */
export function auditedSnapshots(rows: Record<string, unknown>[], branch: string): Map<string, string> {
  const heads = new Map<string, { main?: string; branch?: string }>();
  for (const row of rows) {
    const table = String(row.table_name);
    const head = heads.get(table) ?? {};
    if (row.name === branch) head.branch = String(row.snapshot_id);
    else if (row.name === 'main') head.main = String(row.snapshot_id);
    heads.set(table, head);
  }
  const audited = new Map<string, string>();
  for (const [table, head] of heads) {
    const id = head.branch ?? head.main;
    if (id !== undefined) audited.set(table, id);
  }
  return audited;
}

/** A check's SQL reading each table at its audited snapshot (tables without one read as they are: empty). */
export function checkOnBranch(sql: string, audited: Map<string, string>, runId: string): string {
  return rewriteAsOf(sql, audited, runId);
}
