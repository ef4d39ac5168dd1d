import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadJobs } from '../../src/definition/pipeline';
import { projectRoot } from '../../src/project';
import { sparkSqlParser } from '../helpers/sql-parsers';

// Every SQL file under glue/ runs on Spark (jobs) or is Glue DDL in Spark's dialect (tables); locally DuckDB
// runs the jobs too and accepts constructs Spark does not. A real Spark SQL grammar (dt-sql-parser's
// SparkSQL) checks each file, so a DuckDB-only construct fails here instead of on the first AWS run.

const GLUE_DIR = path.join(projectRoot(), 'glue');

function sqlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sqlFiles(full);
    return entry.name.endsWith('.sql') ? [full] : [];
  });
}

function describeErrors(sql: string): string[] {
  return sparkSqlParser()
    .validate(sql)
    .map((e) => `line ${e.startLine}:${e.startColumn} ${e.message}`);
}

// The data checks (glue/checks/) and saved queries (glue/queries/) run on Athena, not Spark: their
// grammar is Trino's (tests/unit/checks-sql.test.ts). A saved query a job declares as its diagnostic runs
// on Spark too (glue/run_sql_job.py run_diagnostics), so it must parse as both.
const NOT_SPARK = [path.join('glue', 'checks'), path.join('glue', 'queries')];
const DIAGNOSTICS = loadJobs().flatMap((job) => job.diagnostics.map((d) => path.relative(projectRoot(), d.file)));
const FILES = sqlFiles(GLUE_DIR)
  .map((f) => path.relative(projectRoot(), f))
  .filter((f) => DIAGNOSTICS.includes(f) || !NOT_SPARK.some((dir) => f.startsWith(dir + path.sep)));

describe('Spark SQL grammar', () => {
  it('finds the jobs and the landing tables under glue/', () => {
    expect(FILES.filter((f) => f.startsWith(path.join('glue', 'jobs'))).length).toBeGreaterThanOrEqual(5);
    expect(FILES.filter((f) => f.startsWith(path.join('glue', 'tables'))).length).toBeGreaterThanOrEqual(3);
    expect(FILES).toContain(path.join('glue', 'queries', 'email_case_mismatches.sql'));
  });

  it.each(FILES)('%s parses as Spark SQL', (file) => {
    expect(describeErrors(readFileSync(path.join(projectRoot(), file), 'utf8'))).toEqual([]);
  });

  // The grammar must tell the dialects apart, or the test above proves nothing.
  const job = readFileSync(path.join(GLUE_DIR, 'jobs', 'customer_trusted_to_curated.sql'), 'utf8');
  const withDuckDbCast = job.replace('c.serialNumber,\n    try_cast', 'c.serialNumber::string,\n    try_cast');
  it('has a job file to put DuckDB syntax into', () => expect(withDuckDbCast).not.toBe(job));
  it.each([
    ['a :: cast in a real job file', withDuckDbCast],
    ['select * exclude', 'select * exclude (email) from customer_trusted'],
    ['qualify', 'select email from customer_trusted qualify row_number() over (order by email) = 1'],
    ['a list literal', 'select [1, 2, 3] as xs from customer_trusted'],
  ])('refuses DuckDB-only syntax: %s', (_name, sql) => {
    expect(describeErrors(sql)).not.toEqual([]);
  });
});
