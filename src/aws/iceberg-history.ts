import { sqlIdentifier, sqlString } from '../sql/quote';
import { endOfTrinoPiece } from '../sql/text';

/**
 * A table's history and time travel on Athena, over the Iceberg tables the Glue jobs commit.
 *
 * History comes from Athena's Iceberg metadata tables (Athena guide, "Query Iceberg table metadata",
 * https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-table-data.html): `"db"."t$snapshots"`
 * (committed_at, snapshot_id, summary: map(varchar, varchar)) joined to `"db"."t$history"` on snapshot_id,
 * keeping only `is_current_ancestor` snapshots, the main branch's: a run's audit branch that failed its
 * checks never reached readers. (The AWS page lists `$history` but not its columns; these are Iceberg's
 * history metadata table's, https://iceberg.apache.org/docs/latest/spark-queries/#history: made_current_at,
 * snapshot_id, parent_id, is_current_ancestor. To confirm on a deployed stack.) Each commit's summary
 * holds `stedi.run-id` (the run) and `total-records` (Iceberg spec, "Snapshot Summary"). element_at
 * reads a key that may be missing as NULL, where `[]` would fail the query.
 *
 * Time travel is Athena's version travel (Athena guide, "Perform time travel and version travel
 * queries", https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-time-travel-and-version-travel-queries.html):
 * `FOR VERSION AS OF <snapshot id>` right after a table's name, before any alias.
 */

export interface IcebergSnapshot {
  table: string;
  /** A bigint beyond 2^53: kept as text. */
  snapshotId: string;
  /** ISO 8601. */
  committedAt: string;
  runId: string | null;
  rows: number | null;
}

/** One query listing the main-branch snapshots of each table, newest first. */
export function snapshotsSql(database: string, tables: string[]): string {
  if (tables.length === 0) throw new Error('no table to list the snapshots of');
  const metadata = (table: string, kind: string) => `${sqlIdentifier(database)}.${sqlIdentifier(`${table}$${kind}`)}`;
  const parts = tables.map(
    (table) => `select ${sqlString(table)} as table_name,
       cast(s.snapshot_id as varchar) as snapshot_id,
       to_iso8601(s.committed_at) as committed_at,
       element_at(s.summary, 'stedi.run-id') as run_id,
       element_at(s.summary, 'total-records') as total_records
from ${metadata(table, 'snapshots')} s
join ${metadata(table, 'history')} h on h.snapshot_id = s.snapshot_id
where h.is_current_ancestor`,
  );
  return `${parts.join('\nunion all\n')}\norder by committed_at desc, table_name`;
}

/** The rows of snapshotsSql as snapshots, newest first. */
export function parseSnapshots(rows: Record<string, unknown>[]): IcebergSnapshot[] {
  const text = (v: unknown) => (v === null || v === undefined ? null : `${v as string | number}`);
  return rows
    .map((row) => {
      const rows = text(row.total_records);
      return {
        table: String(row.table_name),
        snapshotId: String(row.snapshot_id),
        committedAt: new Date(String(row.committed_at)).toISOString(),
        runId: text(row.run_id),
        rows: rows === null || !/^\d+$/.test(rows) ? null : Number(rows),
      };
    })
    .sort((a, b) => b.committedAt.localeCompare(a.committedAt));
}

/** A run id no snapshot of the tables records (too old: expired, or never run on this stack). */
export class UnknownRunError extends Error {
  constructor(readonly runId: string) {
    super(
      `no snapshot of the Iceberg tables records run ${runId} (never run on this stack, or its snapshots expired): ` +
        'list the runs with `stedi tables --history TABLE --stage NAME`',
    );
    this.name = 'UnknownRunError';
  }
}

/**
 * Each table's snapshot as run `runId` left it: the one whose summary names the run, else the newest
 * committed at or before the run's last commit (a job the run skipped). A table with no snapshot by then
 * maps to null. Throws UnknownRunError when no snapshot names the run.
 */
export function snapshotsAsOf(
  snapshots: IcebergSnapshot[],
  tables: string[],
  runId: string,
): Map<string, string | null> {
  const ofRun = snapshots.filter((s) => s.runId === runId);
  if (ofRun.length === 0) throw new UnknownRunError(runId);
  const end = Math.max(...ofRun.map((s) => Date.parse(s.committedAt)));
  const chosen = new Map<string, string | null>();
  for (const table of tables) {
    const own = snapshots.filter((s) => s.table === table);
    const pick = own.find((s) => s.runId === runId) ?? own.find((s) => Date.parse(s.committedAt) <= end);
    chosen.set(table, pick?.snapshotId ?? null);
  }
  return chosen;
}

/** A table the query names had no snapshot yet when the run ended. */
export class TableNotYetMadeError extends Error {
  constructor(table: string, runId: string) {
    super(`table ${table} had no snapshot yet when run ${runId} ended: leave it out of the --as-of query`);
    this.name = 'TableNotYetMadeError';
  }
}

const IDENTIFIER = /[A-Za-z_][A-Za-z0-9_]*/y;

/**
 * The query with `FOR VERSION AS OF <id>` after every reference to a table of `versions`, as Athena
 * reads time travel. A reference is the table's name (bare or "quoted", any case, maybe after `db.`)
 * not followed by `.` (a column qualified by the table) or `(` (a function); strings and comments are
 * left alone. A name mapped to null throws TableNotYetMadeError.
 */
export function rewriteAsOf(sql: string, versions: Map<string, string | null>, runId: string): string {
  const lower = new Map([...versions].map(([t, v]) => [t.toLowerCase(), { table: t, version: v }]));
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    const piece = endOfTrinoPiece(sql, i); // a string, a quoted name or a comment
    let end = piece ?? i + 1;
    let name: string | undefined;
    if (ch === '"') name = sql.slice(i + 1, end - 1).replace(/""/g, '"');
    else if (piece === undefined && /[A-Za-z_]/.test(ch) && !/[A-Za-z0-9_$]/.test(sql[i - 1] ?? ' ')) {
      IDENTIFIER.lastIndex = i;
      end = i + (IDENTIFIER.exec(sql)?.[0].length ?? 1);
      name = sql.slice(i, end);
    }
    out += sql.slice(i, end);
    const found = name === undefined ? undefined : lower.get(name.toLowerCase());
    const next = /^\s*(.?)/.exec(sql.slice(end))?.[1] ?? '';
    if (found && next !== '.' && next !== '(' && !/[A-Za-z0-9_$]/.test(sql[end] ?? ' ')) {
      if (found.version === null) throw new TableNotYetMadeError(found.table, runId);
      out += ` FOR VERSION AS OF ${found.version}`;
    }
    i = end;
  }
  return out;
}
