import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  Dataset,
  LandingTableName,
  TABLE_PREFIX,
  TableName,
  datasetOfLandingTable,
  isLandingTable,
  quarantinePrefix,
} from '../layout';
import { ConsentPolicy, JobDefinition, JobName, JobParameter, loadJobs } from '../pipeline';
import { createHash } from 'node:crypto';
import { glueDir } from '../project';
import { LandingTableDefinition, readLandingTables } from '../sql/ddl';
import { CatalogColumn, CatalogTable, Lake, LakeTransaction, TableUnreadableError, parquetScanSql } from './lake';
import { sqlIdentifier, sqlString } from '../sql/quote';
import { hiveType } from '../sql/types';
import { bindLandingTable, writeRejected } from './landing';
import { installSparkDialect } from './spark-dialect';
import { removeTree } from './versions';

export interface RunParameters {
  /** Names this run in file names and the catalog (the Step Functions execution name). */
  runId: string;
  consentPolicy: ConsentPolicy;
  /** Salt of the customerId hash. Never written to the lake or to logs. */
  piiSalt: string;
}

export interface JobResult {
  job: JobName;
  target: TableName;
  /** Rows read from the job's input tables. */
  rowsIn: number;
  rowsOut: number;
  /** Landing lines rejected to quarantine, per dataset the job read from landing. */
  quarantined: Partial<Record<Dataset, number>>;
  /** accelerometer_landing_to_trusted: readings whose user matches a customer's email only ignoring case. */
  emailCaseMismatches?: number;
  durationMs: number;
}

export class MissingInputError extends Error {
  constructor(
    readonly table: TableName,
    readonly lakeRoot: string,
  ) {
    super(`table ${table} has not been built in ${lakeRoot} yet; run the pipeline from the job that writes it`);
    this.name = 'MissingInputError';
  }
}

/** An input was built with another salt or consent policy than this run's: mixing them gives wrong rows. */
export class ParameterMismatchError extends Error {
  constructor(
    readonly table: TableName,
    parameter: string,
    built: string,
    now: string,
  ) {
    super(
      `${table} was built with ${parameter === 'pii_salt' ? 'another PII salt' : `consent policy ${built}`}, ` +
        `but this run uses ${parameter === 'pii_salt' ? 'a different one' : now}: rebuild it first (run the pipeline from the job that writes it, e.g. stedi run --from customer)`,
    );
    this.name = 'ParameterMismatchError';
  }
}

/** A short one-way fingerprint of the salt: enough to notice a change, useless to recover it. */
export function saltFingerprint(salt: string): string {
  return createHash('sha256').update(`stedi-lakehouse pii salt fingerprint\u0000${salt}`).digest('hex').slice(0, 16);
}

function parameterValues(params: RunParameters): Record<JobParameter, string> {
  return { pii_salt: saltFingerprint(params.piiSalt), consent_policy: params.consentPolicy };
}

export class JobFailedError extends Error {
  constructor(
    readonly job: JobName,
    cause: unknown,
  ) {
    super(`job ${job} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'JobFailedError';
  }
}

export interface EngineOptions {
  /** DuckDB memory limit (default 2GB: a lower one made the 100x ML join spill); beyond it DuckDB spills to disk. */
  memoryLimit?: string;
  threads?: number;
  /** Bytes of landing files parsed line by line per query (see landing.ts); tests make it small. */
  parseBatchBytes?: number;
}

/**
 * Runs the job SQL of glue/jobs/ on an embedded DuckDB over a local lake: landing JSON in,
 * Parquet out, each output swapped in only when complete, and the local catalog kept current.
 */
/** Per job, the landing table column whose records the landing check counts by value (see diagnose). */
const COUNT_LANDING_BY: Partial<Record<JobName, Partial<Record<string, string>>>> = {
  accelerometer_landing_to_trusted: { accelerometer_landing: 'user' },
};

export class LocalEngine {
  private readonly landingTables: Record<LandingTableName, LandingTableDefinition>;

  private constructor(
    readonly lake: Lake,
    private readonly db: DuckDBInstance,
    private readonly options: EngineOptions,
  ) {
    this.landingTables = readLandingTables(glueDir());
  }

  static async open(lake: Lake, options: EngineOptions = {}): Promise<LocalEngine> {
    const db = await DuckDBInstance.create(':memory:', {
      memory_limit: options.memoryLimit ?? '2GB',
      preserve_insertion_order: 'false',
      temp_directory: path.join(tmpdir(), `stedi-duckdb-${process.pid}`),
      ...(options.threads ? { threads: String(options.threads) } : {}),
    });
    const engine = new LocalEngine(lake, db, options);
    const connection = await db.connect();
    try {
      await installSparkDialect(connection);
    } finally {
      connection.closeSync();
    }
    return engine;
  }

  close(): void {
    this.db.closeSync();
  }

  async runJob(name: JobName, params: RunParameters): Promise<JobResult> {
    const job = loadJobs().find((j) => j.name === name)!;
    const started = Date.now();
    const connection = await this.db.connect();
    const scratch = await mkdtemp(path.join(tmpdir(), 'stedi-job-'));
    let transaction: LakeTransaction | undefined;
    try {
      transaction = this.lake.begin(params.runId);
      // One committed state for the whole job: inputs and the catalog it builds on.
      const snapshot = await this.lake.snapshot();
      let rowsIn = 0;
      const quarantined: Partial<Record<Dataset, number>> = {};
      const landingEntries: CatalogTable[] = [];
      const landingCounts = new Map<string, string>();
      for (const table of job.reads) {
        if (isLandingTable(table)) {
          const dataset = datasetOfLandingTable(table);
          const staging = transaction.stage(quarantinePrefix(dataset));
          const loaded = await bindLandingTable(connection, this.lake, table, this.landingTables[table], scratch, {
            parseBatchBytes: this.options.parseBatchBytes,
            countBy: COUNT_LANDING_BY[name]?.[table],
          });
          if (loaded.counts) landingCounts.set(table, loaded.counts);
          if (loaded.rejected > 0) await writeRejected(connection, loaded, path.join(staging, 'rejected.json'));
          rowsIn += loaded.valid;
          quarantined[dataset] = loaded.rejected;
          landingEntries.push(this.landingCatalogEntry(table, loaded.valid, loaded.rejected, params.runId));
        } else {
          const entry = snapshot.catalog.tables[table];
          if (!entry) throw new MissingInputError(table, this.lake.root);
          for (const [parameter, built] of Object.entries(entry.parameters ?? {})) {
            const now = parameterValues(params)[parameter as JobParameter];
            if (built !== now) throw new ParameterMismatchError(table, parameter, built, now);
          }
          await connection.run(
            `create or replace temp view ${sqlIdentifier(table)} as ${parquetScanSql(snapshot, entry)}`,
          );
          rowsIn += entry.rows;
        }
      }
      await connection.run(
        `create or replace temp table job_parameters as
         select $pii_salt::varchar as pii_salt, $consent_policy::varchar as consent_policy, $run_id::varchar as run_id`,
        { pii_salt: params.piiSalt, consent_policy: params.consentPolicy, run_id: params.runId },
      );

      const columns = await this.describe(connection, job.sql);
      const staging = transaction.stage(job.location);
      const rowsOut = await this.writeParquet(connection, job, staging);
      const diagnostics = await this.diagnose(connection, job, landingCounts.get('accelerometer_landing'));

      transaction.commit([
        ...landingEntries,
        {
          name: job.target,
          location: job.location,
          format: 'parquet',
          columns,
          partitionKeys: job.partitionKeys,
          rows: rowsOut,
          parameters: Object.fromEntries(job.parameters.map((p) => [p, parameterValues(params)[p]])),
          ...diagnostics,
          updatedAt: new Date().toISOString(),
          runId: params.runId,
          build: { rowsBefore: snapshot.catalog.tables[job.target]?.rows ?? null, consentPolicy: params.consentPolicy },
        },
      ]);
      return {
        job: name,
        target: job.target,
        rowsIn,
        rowsOut,
        quarantined,
        ...diagnostics,
        durationMs: Date.now() - started,
      };
    } catch (error) {
      transaction?.abort();
      if (
        error instanceof MissingInputError ||
        error instanceof ParameterMismatchError ||
        error instanceof TableUnreadableError
      )
        throw error;
      throw new JobFailedError(name, error);
    } finally {
      connection.closeSync();
      removeTree(scratch);
    }
  }

  /**
   * Counts what a job's rule leaves out silently but a person would want to know. For the accelerometer
   * job: readings whose user equals a consenting customer's email only when case is ignored (emails
   * join exactly as written, so these readings are not in accelerometer_trusted). The readings per user
   * come from the landing check's pass when it could count them, else from a scan of the table.
   */
  private async diagnose(
    connection: DuckDBConnection,
    job: JobDefinition,
    countsByUser: string | undefined,
  ): Promise<Pick<CatalogTable, 'emailCaseMismatches'>> {
    if (job.name !== 'accelerometer_landing_to_trusted') return {};
    const users = countsByUser
      ? `select json_extract_string(value, '$') as "user", records as readings from ${sqlIdentifier(countsByUser)}`
      : `select "user", count(*) as readings from accelerometer_landing group by "user"`;
    const result = await connection.runAndReadAll(
      `with emails as (select distinct email, lower(email) as folded from customer_trusted),
            users as (${users})
       select coalesce(sum(u.readings), 0)::double as n
       from users as u
       where not exists (select 1 from emails as e where e.email = u."user")
         and exists (select 1 from emails as e where e.folded = lower(u."user"))`,
    );
    return { emailCaseMismatches: Number(result.getRows()[0][0]) };
  }

  private landingCatalogEntry(table: LandingTableName, valid: number, rejected: number, runId: string): CatalogTable {
    const definition = this.landingTables[table];
    return {
      name: table,
      location: TABLE_PREFIX[table],
      format: 'json',
      columns: definition.columns.map((c) => ({ name: c.name, type: c.type })),
      partitionKeys: [],
      rows: valid,
      rejected,
      updatedAt: new Date().toISOString(),
      runId,
    };
  }

  private async describe(connection: DuckDBConnection, sql: string): Promise<CatalogColumn[]> {
    const result = await connection.runAndReadAll(`describe ${sql}`);
    return result.getRowObjectsJS().map((row) => ({
      name: String(row.column_name),
      type: hiveType(String(row.column_type)),
    }));
  }

  private async writeParquet(connection: DuckDBConnection, job: JobDefinition, staging: string): Promise<number> {
    const target =
      job.partitionKeys.length > 0
        ? `${sqlString(staging)} (format parquet, partition_by (${job.partitionKeys.map(sqlIdentifier).join(', ')}), overwrite_or_ignore true, filename_pattern 'part-{i}')`
        : `${sqlString(path.join(staging, 'part-0.parquet'))} (format parquet)`;
    const result = await connection.runAndReadAll(`copy (${job.sql}) to ${target}`);
    return Number(result.getRows()[0][0]);
  }
}
