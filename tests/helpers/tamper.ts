import { DuckDBInstance } from '@duckdb/node-api';
import { mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DerivedTableName } from '../../src/definition/layout';
import { Catalog, Lake, parquetScanSql, sha256Of } from '../../src/lake/lake';
import { sqlString } from '../../src/sql/quote';

/**
 * Replaces a built table's data with what `select` (DuckDB SQL over the view `t`, the table as it
 * is) returns: a lake broken on purpose, as a faulty job or a hand edit would leave it. The files of the
 * committed version are replaced in place; the catalog stays as it was, as after a change made outside
 * the pipeline.
 */
export async function rewriteTable(lake: Lake, table: DerivedTableName, select: string): Promise<void> {
  const snapshot = await lake.snapshot();
  const entry = snapshot.catalog.tables[table];
  if (!entry) throw new Error(`${table} is not built in ${lake.root}`);
  const target = snapshot.dirOf(entry.location);
  if (!target) throw new Error(`${table} has no data folder in ${lake.root}`);
  const staging = `${target.replace(/\/$/, '')}.tampered`;
  mkdirSync(staging, { recursive: true });
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  try {
    await connection.run(`create view t as ${parquetScanSql(snapshot, entry)}`);
    const to =
      entry.partitionKeys.length > 0
        ? `${sqlString(staging)} (format parquet, partition_by (${entry.partitionKeys.join(', ')}), overwrite_or_ignore true)`
        : `${sqlString(path.join(staging, 'part-0.parquet'))} (format parquet)`;
    await connection.run(`copy (${select}) to ${to}`);
  } finally {
    connection.closeSync();
    db.closeSync();
  }
  rmSync(target, { recursive: true, force: true });
  renameSync(staging, target);
}

/**
 * Records a committed file's new size and SHA-256 in the committed catalog, as if it had been committed
 * so: for a test that models a state by editing a committed file (a manifest...) rather than damaging it.
 */
export function acceptEdit(lake: Lake, file: string): void {
  const catalogFile = realpathSync(lake.path('_catalog.json'));
  const catalog = JSON.parse(readFileSync(catalogFile, 'utf8')) as Catalog;
  const versions = path.relative(lake.path('_versions'), file);
  for (const [key, version] of Object.entries(catalog.versions ?? {})) {
    const prefix = path.join(key, version.id) + path.sep;
    if (!versions.startsWith(prefix) || !version.files) continue;
    version.files[versions.slice(prefix.length)] = { size: statSync(file).size, sha256: sha256Of(file) };
    writeFileSync(catalogFile, `${JSON.stringify(catalog, null, 2)}\n`);
    return;
  }
  throw new Error(`${file} is not a file of a committed version of ${lake.root}`);
}
