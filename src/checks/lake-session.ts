import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { DERIVED_TABLES, TABLE_BUILDS_PREFIX } from '../layout';
import { Lake, parquetScanSql } from '../local/lake';
import { sqlIdentifier, sqlString } from '../local/landing-sql';
import { TABLE_BUILDS_COLUMNS, TABLE_BUILDS_TABLE } from '../support-tables';

export type Row = Record<string, unknown>;

export interface QueryResult {
  columns: string[];
  /** DuckDB's type of each column, e.g. VARCHAR, BIGINT. */
  types: string[];
  rows: Row[];
}

const DUCKDB_TYPE = { string: 'VARCHAR', bigint: 'BIGINT' } as const;

/**
 * What the data checks read, on DuckDB over a local lake: each derived table of the catalog as a view
 * of its Parquet files, and table_builds over the lake's build log, as Athena reads them over the
 * bucket. No Spark macros: the checks are written in SQL that Trino and DuckDB both run.
 */
export class LakeCheckSession {
  private constructor(
    private readonly db: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    /** Derived tables not built in this lake yet. */
    readonly missing: string[],
  ) {}

  static async open(lake: Lake): Promise<LakeCheckSession> {
    const db = await DuckDBInstance.create(':memory:', { threads: '2' });
    const connection = await db.connect();
    try {
      const catalog = await lake.readCatalog();
      const missing: string[] = [];
      for (const table of DERIVED_TABLES) {
        const entry = catalog.tables[table];
        if (!entry) {
          missing.push(table);
          continue;
        }
        await connection.run(`create view ${sqlIdentifier(table)} as ${parquetScanSql(lake, entry)}`);
      }
      await connection.run(`create view ${sqlIdentifier(TABLE_BUILDS_TABLE)} as ${tableBuildsScanSql(lake)}`);
      return new LakeCheckSession(db, connection, missing);
    } catch (error) {
      connection.closeSync();
      db.closeSync();
      throw error;
    }
  }

  async query(sql: string): Promise<QueryResult> {
    const reader = await this.connection.runAndReadAll(sql);
    const columns = reader.columnNames();
    const types = reader.columnTypes().map((t) => t.toString());
    const rows = reader.getRowObjectsJS().map((row) => {
      const out: Row = {};
      for (const column of columns) out[column] = toPlain(row[column]);
      return out;
    });
    return { columns, types, rows };
  }

  close(): void {
    this.connection.closeSync();
    this.db.closeSync();
  }
}

/** The lake's table build log as a typed SELECT (an empty one before any job has run). */
function tableBuildsScanSql(lake: Lake): string {
  const dir = lake.path(TABLE_BUILDS_PREFIX);
  const typed = TABLE_BUILDS_COLUMNS.map((c) => `${sqlString(c.name)}: '${DUCKDB_TYPE[c.type]}'`).join(', ');
  if (!existsSync(dir) || !readdirSync(dir).some((f) => f.endsWith('.json'))) {
    const nulls = TABLE_BUILDS_COLUMNS.map((c) => `null::${DUCKDB_TYPE[c.type]} as ${sqlIdentifier(c.name)}`);
    return `select ${nulls.join(', ')} where false`;
  }
  return `select * from read_json(${sqlString(path.join(dir, '*.json'))}, format = 'newline_delimited', columns = {${typed}})`;
}

function toPlain(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Date) return value.toISOString();
  return value;
}
