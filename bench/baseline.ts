/**
 * The benchmark's baseline: the five jobs' SQL run straight on DuckDB, without our layer (no
 * landing copy, no line-by-line validation, no staging/commit, no catalog). `npm run bench`
 * runs it as a child process so its wall time and peak memory compare with `stedi run`'s.
 *
 *   node dist/bench/baseline.js <landing dir> <out dir>
 *
 * Prints one JSON line: {"jobs":[{"name","target","rows","ms"}...]}.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { installSparkDialect } from '../src/build/spark-dialect';
import { loadJobs } from '../src/definition/pipeline';
import { glueDir } from '../src/project';
import { DATASETS, landingTableOf } from '../src/definition/layout';
import { readLandingTables } from '../src/definition/ddl';
import { sqlIdentifier as ident, sqlString as str } from '../src/sql/quote';
import { DUCKDB_TYPE } from '../src/sql/types';
import { required } from '../src/required';

async function main(): Promise<void> {
  const [landing, out] = process.argv.slice(2);
  if (!landing || !out) {
    process.stderr.write('usage: node dist/bench/baseline.js <landing dir> <out dir>\n');
    process.exit(2);
  }
  const landingDir = path.resolve(landing);
  const outDir = path.resolve(out);
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });

  // The same settings as the engine, bar the memory limit and temp folder it adds for safety.
  const db = await DuckDBInstance.create(':memory:', { preserve_insertion_order: 'false' });
  const c = await db.connect();
  await installSparkDialect(c);

  const tables = readLandingTables(glueDir());
  for (const dataset of DATASETS) {
    const table = tables[landingTableOf(dataset)];
    const name = table.name;
    const columns = table.columns.map((col) => `${str(col.name)}: ${str(DUCKDB_TYPE[col.type])}`).join(', ');
    const files = path.join(landingDir, dataset, '*.json');
    await c.run(
      `create view ${ident(name)} as select * from read_json(${str(files)}, format = 'newline_delimited', columns = {${columns}})`,
    );
  }
  await c.run(
    `create temp table job_parameters as select 'bench-salt-0123456789' as pii_salt, 'any' as consent_policy, 'bench' as run_id`,
  );

  const jobs: { name: string; target: string; rows: number; ms: number }[] = [];
  for (const job of loadJobs()) {
    const started = performance.now();
    const target = path.join(outDir, job.target);
    let scan: string;
    let copyTo: string;
    if (job.partitionKeys.length > 0) {
      const keys = job.partitionKeys.map(ident).join(', ');
      copyTo = `${str(target)} (format parquet, partition_by (${keys}), overwrite_or_ignore true)`;
      const hiveTypes = job.partitionKeys.map((k) => `${str(k)}: 'VARCHAR'`).join(', ');
      scan = `read_parquet(${str(path.join(target, '**', '*.parquet'))}, hive_partitioning = true, hive_types = {${hiveTypes}})`;
    } else {
      copyTo = `${str(`${target}.parquet`)} (format parquet)`;
      scan = `read_parquet(${str(`${target}.parquet`)})`;
    }
    const result = await c.runAndReadAll(`copy (${job.sql}) to ${copyTo}`);
    // The next job reads this job's output from Parquet, as the real pipeline does.
    await c.run(`create or replace view ${ident(job.target)} as select * from ${scan}`);
    jobs.push({
      name: job.name,
      target: job.target,
      rows: Number(required(result.getRows()[0]?.[0], `the row count of the copy of ${job.target}`)),
      ms: performance.now() - started,
    });
  }
  c.closeSync();
  db.closeSync();
  process.stdout.write(`${JSON.stringify({ jobs })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`baseline: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
