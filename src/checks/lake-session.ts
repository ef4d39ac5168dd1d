import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { DERIVED_TABLES } from '../definition/layout';
import { Lake, LakeSnapshot, explainDamage, parquetScanSql } from '../lake/lake';
import { sqlIdentifier, sqlString } from '../sql/quote';
import { DUCKDB_TYPE } from '../sql/types';
import { Row, plainRows } from '../lake/rows';
import { TABLE_BUILDS_COLUMNS, TABLE_BUILDS_TABLE } from '../definition/support-tables';
import { required } from '../required';
import { LOCAL_DATABASE } from './definitions';

export type { Row } from '../lake/rows';

export interface QueryResult {
  columns: string[];
  /** DuckDB's type of each column, e.g. VARCHAR, BIGINT. */
  types: string[];
  rows: Row[];
}

/**
 * What the data checks read, on DuckDB over a local lake: each derived table of one committed state of
 * the lake as a view of its Parquet files, and table_builds from the same state's catalog (each derived
 * table's last build), as Athena reads them over the bucket, and each derived table's (empty) `$refs`.
 * No Spark macros: the checks are written in
 * SQL that Trino and DuckDB both run.
 */
export class LakeCheckSession {
  private constructor(
    private readonly lake: Lake,
    private readonly db: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    /** Derived tables not built in this lake yet. */
    readonly missing: string[],
  ) {}

  /** Over the lake's committed state, or over `snapshot` (a run's staged tables, before it publishes them). */
  static async open(lake: Lake, snapshot?: LakeSnapshot): Promise<LakeCheckSession> {
    const db = await DuckDBInstance.create(':memory:', { threads: '2' });
    const connection = await db.connect();
    try {
      // The tables in a schema named as the checks' database, as Athena sees them in the stack's database:
      // a check that filters information_schema by that name finds them (checkSqlFor).
      await connection.run(`create schema ${sqlIdentifier(LOCAL_DATABASE)}`);
      await connection.run(`use ${sqlIdentifier(LOCAL_DATABASE)}`);
      snapshot ??= await lake.snapshot();
      const missing: string[] = [];
      for (const table of DERIVED_TABLES) {
        const entry = snapshot.catalog.tables[table];
        if (!entry) {
          missing.push(table);
          continue;
        }
        await connection.run(`create view ${sqlIdentifier(table)} as ${parquetScanSql(snapshot, entry)}`);
      }
      await connection.run(`create view ${sqlIdentifier(TABLE_BUILDS_TABLE)} as ${tableBuildsSql(snapshot)}`);
      // Iceberg's refs metadata table as Athena names it ("<table>$refs"). A local lake keeps versions, not
      // Iceberg snapshots: it lists no branch, so the audit query (src/checks/audit.ts) leaves each check's
      // SQL as it is, and the checks read the run's staged tables, which is what the run's branch holds on AWS.
      for (const table of DERIVED_TABLES)
        await connection.run(
          `create view ${sqlIdentifier(`${table}$refs`)} as select * from (values (null::varchar, null::varchar, null::bigint, null::bigint, null::integer, null::bigint)) as r(name, type, snapshot_id, max_reference_age_in_ms, min_snapshots_to_keep, max_snapshot_age_in_ms) where false`,
        );
      return new LakeCheckSession(lake, db, connection, missing);
    } catch (error) {
      connection.closeSync();
      db.closeSync();
      throw explainDamage(lake, error);
    }
  }

  async query(sql: string): Promise<QueryResult> {
    const reader = await this.connection.runAndReadAll(sql).catch((error: unknown) => {
      throw explainDamage(this.lake, error);
    });
    const types = reader.columnTypes().map((t) => t.toString());
    return { columns: reader.columnNames(), types, rows: plainRows(reader) };
  }

  close(): void {
    this.connection.closeSync();
    this.db.closeSync();
  }
}

/** The build log of a committed state of the lake, one row per built derived table, as a typed SELECT. */
export function tableBuildsSql(snapshot: LakeSnapshot): string {
  const literal = (v: string | number | null) =>
    v === null ? 'null' : typeof v === 'number' ? String(v) : sqlString(v);
  const rows = DERIVED_TABLES.flatMap((table) => {
    const entry = snapshot.catalog.tables[table];
    if (!entry?.build) return [];
    const values: Record<string, string | number | null> = {
      table_name: table,
      run_id: entry.runId,
      rows_before: entry.build.rowsBefore,
      rows_after: entry.rows,
      consent_policy: entry.build.consentPolicy,
      built_at: entry.updatedAt,
      empty_inputs: (entry.build.emptyInputs ?? []).join(','),
    };
    return [
      TABLE_BUILDS_COLUMNS.map(
        (c) => `${literal(required(values[c.name], `the table_builds value of ${c.name}`))}::${DUCKDB_TYPE[c.type]}`,
      ),
    ];
  });
  const names = TABLE_BUILDS_COLUMNS.map((c) => sqlIdentifier(c.name)).join(', ');
  if (rows.length === 0) {
    const nulls = TABLE_BUILDS_COLUMNS.map((c) => `null::${DUCKDB_TYPE[c.type]} as ${sqlIdentifier(c.name)}`);
    return `select ${nulls.join(', ')} where false`;
  }
  return `select * from (values ${rows.map((r) => `(${r.join(', ')})`).join(', ')}) as t (${names})`;
}
