import { literalPath, sqlIdentifier, sqlString } from '../sql/quote';
import type { IcebergColumn } from './table-metadata';

/**
 * A DuckDB SELECT over one Iceberg snapshot's live data files: the snapshot schema's columns, in its order,
 * read by name from the Parquet files (the pipeline's tables never rename a column, so names and field
 * ids agree). Iceberg writes identity partition columns into the data files, so nothing comes from paths.
 */

/** DuckDB's name for an Iceberg primitive type (spec, "Primitive Types"). */
const DUCKDB_TYPE: Record<string, string> = {
  boolean: 'BOOLEAN',
  int: 'INTEGER',
  long: 'BIGINT',
  float: 'FLOAT',
  double: 'DOUBLE',
  date: 'DATE',
  time: 'TIME',
  timestamp: 'TIMESTAMP',
  timestamptz: 'TIMESTAMPTZ',
  string: 'VARCHAR',
  uuid: 'UUID',
  binary: 'BLOB',
};

export function duckdbTypeOfIceberg(type: string): string {
  const decimal = /^decimal\((\d+),\s*(\d+)\)$/.exec(type);
  if (decimal) return `DECIMAL(${decimal[1]}, ${decimal[2]})`;
  if (/^fixed\[\d+\]$/.test(type)) return 'BLOB';
  const duckdb = DUCKDB_TYPE[type];
  if (!duckdb) throw new Error(`no DuckDB type for the Iceberg type ${type}`);
  return duckdb;
}

/** The SELECT; a snapshot with no live file is an empty table of the schema's columns, typed. */
export function icebergScanSql(files: string[], columns: IcebergColumn[]): string {
  if (files.length === 0)
    return `select ${columns.map((c) => `null::${duckdbTypeOfIceberg(c.type)} as ${sqlIdentifier(c.name)}`).join(', ')} where false`;
  const list = files.map((f) => sqlString(literalPath(f))).join(', ');
  return `select ${columns.map((c) => sqlIdentifier(c.name)).join(', ')} from read_parquet([${list}])`;
}
