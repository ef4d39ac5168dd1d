import type { DuckDBConnection } from '@duckdb/node-api';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TableName } from '../definition/layout';
import { JobDefinition, loadJobs, parametersOf } from '../definition/pipeline';
import { sqlIdentifier } from '../sql/quote';
import type { CatalogColumn, CatalogTable } from '../lake/catalog';
import { RunParameters, parameterValues } from './job-run';
import type { LakeSnapshot } from '../lake/lake';
import { SPARK_MACROS } from './spark-dialect';
import { TableUnreadableError, parquetFiles, parquetFilesScanSql, parquetScanSql } from '../lake/table-scan';
import { versionDir } from '../lake/versions';

/*
 * Whether a job's table is up to date, as a build system decides it: its build key (the job's engine,
 * SQL and parameters, and the content of each input), the content fingerprint of the rows it wrote,
 * and whether its committed files are still those committed.
 */

/**
 * Bumped when how a job turns its inputs into its table changes outside its SQL (the writer, the
 * bindings): every table's build key changes, so no job is skipped on a build made the old way.
 */
const ENGINE_REVISION = 1;

export interface BuildKeys {
  /** The job's engine, SQL and parameters. */
  base: string;
  /** The content of each input; undefined when one is not known. */
  inputs?: Record<string, string>;
  build?: string;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * What a job's table is built from, as a build system records it: the engine, the SQL, the values of
 * the parameters the SQL reads (the base), and the content of each input (CatalogTable.content). The
 * build key is undefined when an input's content is not known.
 */
export function buildKeys(
  job: JobDefinition,
  snapshot: LakeSnapshot,
  params: RunParameters,
  duckdbVersion: string,
): BuildKeys {
  const values = parameterValues(params);
  const base = sha256(
    JSON.stringify({
      revision: ENGINE_REVISION,
      duckdb: duckdbVersion,
      dialect: SPARK_MACROS,
      sql: job.sql,
      diagnostics: job.diagnostics.map((d) => d.sql),
      target: job.target,
      partitionKeys: job.partitionKeys,
      parameters: parametersOf(job).map((p) => [p, values[p]]),
    }),
  );
  const inputs: Record<string, string> = {};
  for (const table of job.reads) {
    const content = snapshot.catalog.tables[table]?.content;
    if (!content) return { base };
    inputs[table] = content;
  }
  return { base, inputs, build: sha256(JSON.stringify({ base, inputs })) };
}

/**
 * An order-independent fingerprint of a table's rows: its columns, its row count and the sum of its
 * rows' 64-bit hashes. A rebuilt table with the same fingerprint has the same rows, so the jobs that
 * read it are skipped (their build keys hold it). After an append, the previous one plus the added
 * files' (sums add up).
 */
export async function contentFingerprint(
  connection: DuckDBConnection,
  job: JobDefinition,
  staging: string,
  columns: CatalogColumn[],
  added?: string[],
  previous?: string,
): Promise<string> {
  const schema = sha256(JSON.stringify(columns)).slice(0, 16);
  const files = added ? added.map((f) => path.join(staging, f)) : parquetFiles(staging);
  let [count, sum] = [0n, 0n];
  const scan = parquetFilesScanSql(files, job.partitionKeys);
  if (scan) {
    const names = columns.map((c) => sqlIdentifier(c.name)).join(', ');
    const result = await connection.runAndReadAll(
      `select count(*)::varchar, coalesce(sum(hash(${names})::hugeint), 0)::varchar from (${scan})`,
    );
    const [rows, hashes] = result.getRows()[0] as [string, string];
    [count, sum] = [BigInt(rows), BigInt(hashes)];
  }
  if (added && previous) {
    const [was, wasCount, wasSum] = previous.split(':');
    if (was !== schema) throw new Error(`${job.target}: its columns changed in an append`);
    [count, sum] = [count + BigInt(wasCount ?? 0), sum + BigInt(wasSum ?? 0)];
  }
  return `${schema}:${count}:${sum}`;
}

/**
 * Counts what a job's rule leaves out silently but a person would want to know. For the accelerometer
 * job: readings whose user equals a consenting customer's email only when case is ignored (emails

/** Whether a table's committed data is there as its catalog entry says (parquetScanSql would read it). */
export function isReadable(snapshot: LakeSnapshot, entry: CatalogTable): boolean {
  try {
    parquetScanSql(snapshot, entry);
    return true;
  } catch (error) {
    if (error instanceof TableUnreadableError) return false;
    throw error;
  }
}

/**
 * The first file of a key's committed version whose size is not the one recorded at its commit (or that
 * is gone), with what is wrong: a stat per file, cheap enough for every run. Undefined when all match,
 * or when the version recorded no files (staged in this run, or committed before files were recorded).
 */
export function changedSinceCommit(snapshot: LakeSnapshot, key: string): { file: string; problem: string } | undefined {
  const version = snapshot.catalog.versions?.[key.replace(/\/+$/, '')];
  if (!version?.files) return undefined;
  const dir = versionDir(snapshot.lake.root, key, version.id);
  if (!existsSync(dir)) return undefined; // a folder gone is TableUnreadableError's to name
  for (const [relative, record] of Object.entries(version.files)) {
    const file = path.join(dir, relative);
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      return { file, problem: 'missing' };
    }
    if (size !== record.size) return { file, problem: `${size} bytes, ${record.size} when committed` };
  }
  return undefined;
}

/** Whether some job reads the table (its content fingerprint decides whether that job is skipped). */
export function isReadByAJob(table: TableName): boolean {
  return loadJobs().some((job) => job.reads.includes(table));
}
