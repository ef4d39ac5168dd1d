import { DuckDBInstance, DuckDBConnection } from '@duckdb/node-api';
import { existsSync } from 'node:fs';
import { DATASETS, TableName, isLandingTable, quarantinePrefix } from '../layout';
import { glueDir } from '../project';
import { readLandingTables } from '../sql/ddl';
import { Lake, parquetScanSql } from './lake';
import { sqlIdentifier, sqlString } from './landing-sql';
import { bindLandingTable } from './landing';
import { tokenize } from '../sql/text';
import { installSparkDialect } from './spark-dialect';

export type Row = Record<string, unknown>;

/**
 * The local stand-in for Athena: a DuckDB connection with one view per catalog table (landing
 * tables read the landing JSON and keep the valid records, as a run counts them) and one
 * <dataset>_quarantine view per dataset.
 */
export class QuerySession {
  private constructor(
    private readonly db: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    readonly tables: TableName[],
    /** Tables of the catalog that could not be bound, with the reason. */
    readonly unreadable: string[],
  ) {}

  /**
   * Opens a session over the lake's catalog. Binding a landing table checks every landing file,
   * so with `forSql` only the landing tables that SQL names are bound.
   */
  static async open(lake: Lake, forSql?: string): Promise<QuerySession> {
    const named = forSql === undefined ? undefined : new Set(tokenize(forSql).map((t) => t.text));
    const db = await DuckDBInstance.create(':memory:');
    const connection = await db.connect();
    await installSparkDialect(connection);
    const catalog = await lake.readCatalog();
    const landing = readLandingTables(glueDir());
    const tables: TableName[] = [];
    const unreadable: string[] = [];
    for (const entry of Object.values(catalog.tables)) {
      if (named && isLandingTable(entry.name) && !named.has(entry.name)) continue;
      try {
        if (isLandingTable(entry.name)) await bindLandingTable(connection, lake, entry.name, landing.get(entry.name)!);
        else await connection.run(`create view ${sqlIdentifier(entry.name)} as ${parquetScanSql(lake, entry)}`);
        tables.push(entry.name);
      } catch (error) {
        // One unreadable table must not hide the others.
        unreadable.push(`${entry.name}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
      }
    }
    for (const dataset of DATASETS) {
      const file = lake.path(`${quarantinePrefix(dataset)}rejected.json`);
      const select = existsSync(file)
        ? `select * from read_json(${sqlString(file)}, format = 'newline_delimited', columns = {source_file: 'VARCHAR', line_number: 'BIGINT', reason: 'VARCHAR', line: 'VARCHAR'})`
        : `select null::varchar as source_file, null::bigint as line_number, null::varchar as reason, null::varchar as line where false`;
      await connection.run(`create view ${sqlIdentifier(`${dataset}_quarantine`)} as ${select}`);
    }
    return new QuerySession(db, connection, tables, unreadable);
  }

  /** Runs a query; BIGINT values within 2^53 come back as numbers, dates as ISO strings. */
  async query(sql: string): Promise<{ columns: string[]; rows: Row[] }> {
    const reader = await this.connection.runAndReadAll(sql);
    const columns = reader.columnNames();
    const rows = reader.getRowObjectsJS().map((row) => {
      const out: Row = {};
      for (const column of columns) out[column] = toPlain(row[column]);
      return out;
    });
    return { columns, rows };
  }

  close(): void {
    this.connection.closeSync();
    this.db.closeSync();
  }
}

function toPlain(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toPlain);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}
