import type { DuckDBConnection } from '@duckdb/node-api';
import path from 'node:path';
import { LandingTableName, TableName, isLandingTable } from '../definition/layout';
import type { JobDefinition } from '../definition/pipeline';
import { required } from '../required';
import type { LandingTableDefinition } from '../definition/ddl';
import { sqlIdentifier, sqlString } from '../sql/quote';
import { hiveType } from '../sql/types';
import type { CatalogColumn } from '../lake/catalog';
import type { LakeSnapshot } from '../lake/lake';
import { parquetScanSql } from '../lake/table-scan';
import { ValidatedCopy, validatedScanSql } from './validated';

/* How a job's SQL meets the lake: its inputs bound as views, its columns, its rows written as Parquet. */

/** Binds each input table as a view of its name; returns the rows each holds. */
export async function bindInputs(
  connection: DuckDBConnection,
  landingTables: Record<LandingTableName, LandingTableDefinition>,
  job: JobDefinition,
  snapshot: LakeSnapshot,
  landing: Map<LandingTableName, ValidatedCopy>,
): Promise<Partial<Record<TableName, number>>> {
  const rows: Partial<Record<TableName, number>> = {};
  for (const table of job.reads) {
    const copy = isLandingTable(table) ? landing.get(table) : undefined;
    const definition = isLandingTable(table) ? landingTables[table] : undefined;
    const entry = required(snapshot.catalog.tables[table], `the catalog entry of ${table}`);
    const select = copy && definition ? validatedScanSql(definition, copy) : parquetScanSql(snapshot, entry);
    await connection.run(`create or replace temp view ${sqlIdentifier(table)} as ${select}`);
    rows[table] = copy ? copy.records : entry.rows;
  }
  return rows;
}

export async function describe(connection: DuckDBConnection, sql: string): Promise<CatalogColumn[]> {
  const result = await connection.runAndReadAll(`describe ${sql}`);
  return result.getRowObjects().map((row) => ({
    name: row.column_name as string,
    type: hiveType(row.column_type as string),
  }));
}

/** Writes the job's rows into the folder as part-<token>{i}.parquet files (the token keeps an append's apart). */
export async function writeParquet(
  connection: DuckDBConnection,
  job: JobDefinition,
  staging: string,
  token: string,
): Promise<number> {
  const target =
    job.partitionKeys.length > 0
      ? `${sqlString(staging)} (format parquet, partition_by (${job.partitionKeys.map(sqlIdentifier).join(', ')}), overwrite_or_ignore true, filename_pattern 'part-${token}{i}')`
      : `${sqlString(path.join(staging, `part-${token}0.parquet`))} (format parquet)`;
  const result = await connection.runAndReadAll(`copy (${job.sql}) to ${target}`);
  return Number(required(result.getRows()[0]?.[0], `the row count of the copy of ${job.target}`));
}
