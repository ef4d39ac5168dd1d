import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DerivedTableName, TABLE_PREFIX, TableName, isTableName } from './layout';
import { glueDir } from '../project';
import { tokenize } from '../sql/text';

/** The pipeline's five jobs in dependency order; each runs glue/jobs/<name>.sql. */
export const JOB_NAMES = [
  'customer_landing_to_trusted',
  'accelerometer_landing_to_trusted',
  'customer_trusted_to_curated',
  'step_trainer_landing_to_trusted',
  'machine_learning_curated',
] as const;
export type JobName = (typeof JOB_NAMES)[number];

/** The one-row table of run parameters every job may read (salt, consent policy, run id). */
export const JOB_PARAMETERS_TABLE = 'job_parameters';

export const CONSENT_POLICIES = ['any', 'since-consent'] as const;
export type ConsentPolicy = (typeof CONSENT_POLICIES)[number];

export interface JobDefinition {
  name: JobName;
  /** The table the job replaces. */
  target: DerivedTableName;
  /** Key prefix of the target in the bucket and the local lake. */
  location: string;
  /** Hive-style partition columns (the last columns of the SQL's select list). */
  partitionKeys: string[];
  sql: string;
  /** Catalog tables the SQL reads (job_parameters excluded), as its `-- Reads:` header declares them. */
  reads: TableName[];
  /** The job_parameters columns the SQL uses: its output depends on their values. */
  parameters: JobParameter[];
  /**
   * Inputs the output depends on row by row, as its `-- Row-wise in:` header declares them: each row of
   * such an input makes its output rows alone (no aggregate, window, DISTINCT or self-join over it), so
   * rows added to it, every other input unchanged, only add the rows the job makes of them.
   */
  rowWise: TableName[];
  /** Counts run after the job, as its `-- Diagnostics:` header names them (glue/queries/<name>.sql). */
  diagnostics: JobDiagnostic[];
}

/**
 * A saved query (glue/queries/) a job declares as its diagnostic: it reads only the job's inputs and returns
 * one row with one count, which both engines record beside the table (the DuckDB engine in the catalog, the
 * Glue runner in its log, its metrics and the build log). A count of input rows, so an append adds its own.
 */
export interface JobDiagnostic {
  name: string;
  file: string;
  sql: string;
}

/** The columns of job_parameters that change what a job writes. */
export const JOB_PARAMETERS = ['pii_salt', 'consent_policy'] as const;
export type JobParameter = (typeof JOB_PARAMETERS)[number];

const TARGETS: Record<JobName, { target: DerivedTableName; partitionKeys: string[] }> = {
  customer_landing_to_trusted: { target: 'customer_trusted', partitionKeys: [] },
  accelerometer_landing_to_trusted: { target: 'accelerometer_trusted', partitionKeys: ['reading_date'] },
  customer_trusted_to_curated: { target: 'customer_curated', partitionKeys: [] },
  step_trainer_landing_to_trusted: { target: 'step_trainer_trusted', partitionKeys: ['reading_date'] },
  machine_learning_curated: { target: 'machine_learning_curated', partitionKeys: ['reading_date'] },
};

export class PipelineDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PipelineDefinitionError';
  }
}

export function jobSqlPath(name: JobName): string {
  return path.join(glueDir(), 'jobs', `${name}.sql`);
}

/**
 * The tables a job file declares it reads, in its header comment, as dbt's ref() declares a model's inputs:
 * `-- Reads: a, b, job_parameters.` (the list may go on over further `--` lines and ends with a period).
 * The declaration, not a reading of the SQL, binds the inputs and orders the jobs; a test checks it against
 * what a Spark SQL parser finds in the SQL. Returned without job_parameters, the runner's own table.
 */
export function declaredReads(sql: string, file: string): TableName[] {
  const header = /^--\s*Reads:([^.]*)\./im.exec(sql);
  if (!header?.[1])
    throw new PipelineDefinitionError(`${file} has no "-- Reads: table, ...." header declaring its inputs`);
  const names = header[1]
    .split(/\n\s*--/)
    .join(' ')
    .split(',')
    .map((name) => name.trim());
  const reads: TableName[] = [];
  for (const name of names) {
    if (name === JOB_PARAMETERS_TABLE) continue;
    if (!isTableName(name))
      throw new PipelineDefinitionError(`${file} declares it reads "${name}", which is not a catalog table`);
    if (!reads.includes(name)) reads.push(name);
  }
  if (reads.length === 0)
    throw new PipelineDefinitionError(`${file} declares no catalog table in its "-- Reads:" header`);
  return reads;
}

/**
 * The inputs a job file declares its output depends on row by row: `-- Row-wise in: a, b.` (optional; each
 * must be one of its declared reads). The local engine then runs the job over rows added to one of them
 * alone, and adds what it makes to the table; the property test compares that with full rebuilds.
 */
export function declaredRowWise(sql: string, file: string, reads: TableName[]): TableName[] {
  const header = /^--\s*Row-wise in:([^.]*)\./im.exec(sql);
  if (!header?.[1]) return [];
  return header[1]
    .split(/\n\s*--/)
    .join(' ')
    .split(',')
    .map((name) => name.trim())
    .map((name) => {
      if (!reads.includes(name as TableName))
        throw new PipelineDefinitionError(`${file} declares it is row-wise in "${name}", which it does not read`);
      return name as TableName;
    });
}

export function diagnosticSqlPath(name: string): string {
  return path.join(glueDir(), 'queries', `${name}.sql`);
}

/**
 * The diagnostics a job file declares: `-- Diagnostics: a, b.` (optional), each a query of glue/queries/.
 */
export function declaredDiagnostics(sql: string, file: string): JobDiagnostic[] {
  const header = /^--\s*Diagnostics:([^.]*)\./im.exec(sql);
  if (!header?.[1]) return [];
  return header[1]
    .split(',')
    .map((name) => name.trim())
    .map((name) => {
      const query = diagnosticSqlPath(name);
      if (!/^[a-z][a-z0-9_]*$/.test(name) || !existsSync(query))
        throw new PipelineDefinitionError(
          `${file} declares the diagnostic "${name}", which is no query of glue/queries/`,
        );
      return { name, file: query, sql: readFileSync(query, 'utf8') };
    });
}

let cached: JobDefinition[] | undefined;

/** The five jobs, their SQL read from glue/jobs/ once per process. */
export function loadJobs(): JobDefinition[] {
  if (cached) return cached;
  cached = JOB_NAMES.map((name) => {
    const file = jobSqlPath(name);
    const sql = readFileSync(file, 'utf8');
    const reads = declaredReads(sql, file);
    const { target, partitionKeys } = TARGETS[name];
    const words = new Set(tokenize(sql).map((t) => t.text));
    const parameters = JOB_PARAMETERS.filter((p) => words.has(p));
    const rowWise = declaredRowWise(sql, file, reads);
    const diagnostics = declaredDiagnostics(sql, file);
    return {
      name,
      target,
      location: TABLE_PREFIX[target],
      partitionKeys,
      sql,
      reads,
      parameters,
      rowWise,
      diagnostics,
    };
  });
  return cached;
}

/**
 * The job parameters a job's rows depend on: those its SQL reads, and the consent policy also when one of
 * its inputs' rows depends on it (customer_curated keeps the customers with trusted readings, and which
 * readings are trusted depends on the policy). Each table records their values, so no job mixes tables
 * built under two policies.
 */
export function parametersOf(job: JobDefinition, jobs: JobDefinition[] = loadJobs()): JobParameter[] {
  const inherited = job.reads.some((table) => {
    const writer = jobs.find((j) => j.target === table);
    return writer !== undefined && parametersOf(writer, jobs).includes('consent_policy');
  });
  return JOB_PARAMETERS.filter((p) => job.parameters.includes(p) || (p === 'consent_policy' && inherited));
}

export function isJobName(value: string): value is JobName {
  return (JOB_NAMES as readonly string[]).includes(value);
}

export function isConsentPolicy(value: string): value is ConsentPolicy {
  return (CONSENT_POLICIES as readonly string[]).includes(value);
}
