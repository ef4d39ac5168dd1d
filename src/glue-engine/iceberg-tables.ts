import {
  CreateTableCommand,
  DeleteTableCommand,
  GetTableCommand,
  GlueClient,
  Table,
  TableInput,
  UpdateTableCommand,
} from '@aws-sdk/client-glue';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GlueWorker } from './worker';

/**
 * The derived tables are Apache Iceberg tables (deploy/glue-resources.js): their prefix holds the data files of
 * every snapshot kept and Iceberg's metadata/, and the Data Catalog entry names the current metadata file
 * (metadata_location). What the Glue engine needs of them between moto and the local results lake.
 */

/**
 * Copies the current snapshot of an Iceberg table into `dir` as Parquet files (key=value folders for the
 * partition keys), through the worker's Spark: listing the prefix would also copy older snapshots' files.
 */
export async function exportIcebergTable(
  worker: GlueWorker,
  database: string,
  table: string,
  partitionKeys: string[],
  dir: string,
  branch?: string,
): Promise<void> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), `stedi-export-${table}-`));
  try {
    const out = path.join(scratch, 'table');
    await worker.exportTable(`${database}.${table}`, out, partitionKeys, branch);
    cpSync(out, dir, {
      recursive: true,
      // Only the data: not Spark's _SUCCESS marker nor Hadoop's .crc checksum files.
      filter: (source) => !path.basename(source).startsWith('.') && !path.basename(source).startsWith('_'),
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** A Catalog table as UpdateTable takes it back (GetTable's answer carries read-only fields). */
function tableInputOf(table: Table): TableInput {
  const { Name, Description, TableType, StorageDescriptor, PartitionKeys, Parameters } = table;
  return { Name, Description, TableType, StorageDescriptor, PartitionKeys, Parameters };
}

/**
 * Keeps the Catalog entries of the Iceberg tables (their metadata_location) in `file`, beside the bucket's
 * objects the engine keeps between runs, so the next run's fresh moto server finds the tables as they were.
 */
export async function saveIcebergTables(
  glue: GlueClient,
  database: string,
  tables: readonly string[],
  file: string,
): Promise<void> {
  const saved: TableInput[] = [];
  for (const name of tables) {
    const { Table } = await glue.send(new GetTableCommand({ DatabaseName: database, Name: name }));
    if (Table?.Parameters?.metadata_location) saved.push(tableInputOf(Table));
  }
  writeFileSync(file, `${JSON.stringify(saved)}\n`);
}

/** Points the stack's Iceberg tables back at the metadata files a previous run left (saveIcebergTables). */
export async function restoreIcebergTables(glue: GlueClient, database: string, file: string): Promise<void> {
  if (!existsSync(file)) return;
  for (const input of JSON.parse(readFileSync(file, 'utf8')) as TableInput[])
    await glue.send(new UpdateTableCommand({ DatabaseName: database, TableInput: input }));
}

/**
 * Creates the stack's Iceberg tables again as the stack created them (no metadata yet: the worker writes their
 * first metadata before the next run), for an emptied bucket, whose metadata files the old entries named.
 */
export async function recreateIcebergTables(glue: GlueClient, database: string, inputs: TableInput[]): Promise<void> {
  for (const input of inputs) {
    await glue.send(new DeleteTableCommand({ DatabaseName: database, Name: input.Name }));
    await glue.send(new CreateTableCommand({ DatabaseName: database, TableInput: input }));
  }
}
