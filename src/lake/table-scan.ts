import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TableName } from '../definition/layout';
import { literalPath, sqlIdentifier, sqlString } from '../sql/quote';
import { duckdbType } from '../sql/types';
import type { CatalogColumn, CatalogTable } from './catalog';
import type { LakeSnapshot } from './lake';

/** The table could not be read: its data is missing or does not match the catalog. Never read as empty. */
export class TableUnreadableError extends Error {
  constructor(
    readonly table: TableName,
    readonly reason: string,
  ) {
    super(`table ${table} cannot be read: ${reason}; rebuild it by running the pipeline from the job that writes it`);
    this.name = 'TableUnreadableError';
  }
}

/**
 * A SELECT over a catalog table's committed Parquet files (listed, not globbed). A table whose version
 * folder is missing, or holds no Parquet file although the catalog counts rows, throws
 * TableUnreadableError: a missing table is never read as an empty one.
 */
export function parquetScanSql(snapshot: LakeSnapshot, entry: CatalogTable): string {
  const dir = snapshot.dirOf(entry.location);
  if (!dir || !isDirectory(dir))
    throw new TableUnreadableError(entry.name, `its data folder for ${entry.location} is missing`);
  const files = parquetFiles(dir);
  if (files.length === 0) {
    if (entry.rows !== 0)
      throw new TableUnreadableError(
        entry.name,
        `the catalog counts ${entry.rows} rows but ${dir} holds no Parquet file`,
      );
    return emptyTableSql(entry.columns);
  }
  return parquetFilesScanSql(files, entry.partitionKeys)!;
}

/** A SELECT of no rows with a table's columns, typed. */
export function emptyTableSql(columns: CatalogColumn[]): string {
  return `select ${columns.map((c) => `null::${duckdbType(c.type)} as ${sqlIdentifier(c.name)}`).join(', ')} where false`;
}

/** A SELECT over Parquet files of a table (hive-partitioned by its partition keys); undefined for none. */
export function parquetFilesScanSql(files: string[], partitionKeys: string[]): string | undefined {
  if (files.length === 0) return undefined;
  const list = `[${files.map((f) => sqlString(literalPath(f))).join(', ')}]`;
  if (partitionKeys.length === 0) return `select * from read_parquet(${list})`;
  const hiveTypes = partitionKeys.map((k) => `${sqlString(k)}: 'VARCHAR'`).join(', ');
  return `select * from read_parquet(${list}, hive_partitioning = true, hive_types = {${hiveTypes}})`;
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** Every *.parquet file under a folder, sorted. */
export function parquetFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isFile() && entry.name.endsWith('.parquet')) files.push(full);
    else if (entry.isDirectory()) files.push(...parquetFiles(full));
  }
  return files.sort();
}
