import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
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
  landingPrefix,
  validatedPrefix,
} from '../definition/layout';
import { ConsentPolicy, JobDefinition, JobName, loadJobs, parametersOf } from '../definition/pipeline';
import { glueDir } from '../project';
import { LandingTableDefinition, readLandingTables } from '../definition/ddl';
import { sqlIdentifier } from '../sql/quote';
import { required } from '../required';
import { BuildKeys, buildKeys, changedSinceCommit, contentFingerprint, isReadByAJob, isReadable } from './build-keys';
import {
  JobFailedError,
  LandingFolderMissingError,
  MissingInputError,
  OpenRun,
  ParameterMismatchError,
  PublishRequest,
  RunParameters,
  checkInputs,
  parameterValues,
} from './job-run';
import {
  CatalogTable,
  Lake,
  LakeSnapshot,
  LakeDamagedError,
  SkippedFile,
  TableUnreadableError,
  explainDamage,
  parquetScanSql,
} from '../lake/lake';
import { LandingFileCounts, checkLandingFolder, landingCounts, refreshLandingTables } from './landing-tables';
import type { BuiltFrom } from '../lake/catalog';
import { AppendPlan, appendPlan, builtFromOf, filesNamed, linkTree, sameBuiltFrom } from './segments';
import { installSparkDialect } from './spark-dialect';
import { ValidatedCopy, rulesVersion } from './validated';
import { bindInputs, describe, writeParquet } from './job-io';
import { Diagnostics, runDiagnostics } from './diagnostics';
import { removeTree } from '../lake/versions';

export { JobFailedError, LandingFolderMissingError, MissingInputError, ParameterMismatchError } from './job-run';
export type { OpenRun, PublishRequest, RunParameters } from './job-run';
export type { LandingFileCounts } from './landing-tables';

export interface JobResult {
  job: JobName;
  target: TableName;
  /**
   * Rows read from each input table, in the order the job declares them (job_parameters, one row of
   * run parameters, is not a data input). A skipped job reads nothing: its inputs' catalog counts.
   */
  rowsIn: Partial<Record<TableName, number>>;
  rowsOut: number;
  /** Landing lines rejected to quarantine, per dataset the job read from landing. */
  quarantined: Partial<Record<Dataset, number>>;
  /** Landing files checked, reused and removed, per dataset the job read from landing. */
  landingFiles: Partial<Record<Dataset, LandingFileCounts>>;
  /** Landing entries named *.json the job could not read as files (a link to nothing...), by key, and why. */
  skippedLandingFiles: SkippedFile[];
  /** The job was skipped: its table was built from the same SQL, parameters and input contents. */
  skipped?: boolean;
  /** The job ran over the rows one input gained alone, and added this many rows to its table. */
  appended?: number;
  /** That input: its rowsIn are its new rows only. */
  appendedInput?: TableName;
  /** The job's diagnostics (its `-- Diagnostics:` header): e.g. email_case_mismatches. */
  diagnostics?: Diagnostics;
  durationMs: number;
}

export interface EngineOptions {
  /** DuckDB memory limit (default 2GB: a lower one made the 100x ML join spill); beyond it DuckDB spills to disk. */
  memoryLimit?: string;
  threads?: number;
  /** Bytes of landing files checked per batch (see landing.ts); tests make it small. */
  batchBytes?: number;
  /** Check every landing file again and run every job, whatever the lake records (stedi run --rebuild). */
  rebuild?: boolean;
}

/**
 * Runs the job SQL of glue/jobs/ on an embedded DuckDB over a local lake: each landing table read from
 * its validated copy (validated.ts), brought in line with landing first, Parquet out, each output swapped
 * in only when complete, and the local catalog kept current. A job whose SQL, parameters and input
 * tables' contents are those its table was built from is skipped: its table is what it would write.
 */
export class LocalEngine {
  private readonly landingTables: Record<LandingTableName, LandingTableDefinition>;
  private readonly rules = new Map<string, string>();

  private constructor(
    readonly lake: Lake,
    private readonly db: DuckDBInstance,
    private readonly options: EngineOptions,
    private readonly duckdbVersion: string,
  ) {
    this.landingTables = readLandingTables(glueDir());
    for (const [name, definition] of Object.entries(this.landingTables))
      this.rules.set(name, rulesVersion(definition, duckdbVersion));
  }

  static async open(lake: Lake, options: EngineOptions = {}): Promise<LocalEngine> {
    const db = await DuckDBInstance.create(':memory:', {
      memory_limit: options.memoryLimit ?? '2GB',
      preserve_insertion_order: 'false',
      temp_directory: path.join(tmpdir(), `stedi-duckdb-${process.pid}`),
      ...(options.threads ? { threads: String(options.threads) } : {}),
    });
    const connection = await db.connect();
    try {
      await installSparkDialect(connection);
      const version = (await connection.runAndReadAll('select library_version from pragma_version()')).getRows();
      return new LocalEngine(lake, db, options, String(version[0]?.[0]));
    } finally {
      connection.closeSync();
    }
  }

  close(): void {
    this.abortRun();
    this.db.closeSync();
  }

  private open?: OpenRun;

  /**
   * Opens a run (write, audit, publish): each job's new table is staged, not committed; the run's jobs
   * and checks read the committed lake with the staged tables in it (view()); publishRun() commits them
   * all in one step, abortRun() drops them. Without an open run each job commits its own table. First
   * checks that no landing folder the lake has read from is missing, and makes those of a new lake.
   */
  async beginRun(runId: string, consentPolicy: ConsentPolicy): Promise<void> {
    if (this.open) throw new Error(`run ${this.open.runId} is still open`);
    const { catalog } = await this.lake.snapshot();
    for (const table of Object.keys(this.landingTables) as LandingTableName[]) {
      checkLandingFolder(this.lake, table, catalog.tables[table]);
      mkdirSync(this.lake.path(landingPrefix(datasetOfLandingTable(table))), { recursive: true });
    }
    this.open = { runId, consentPolicy, transaction: this.lake.begin(runId), tables: new Map() };
  }

  /** The committed lake, with the open run's staged tables in it: what the run's jobs and checks read. */
  view(): Promise<LakeSnapshot> {
    return this.open ? this.open.transaction.view(this.open.tables.values()) : this.lake.snapshot();
  }

  /**
   * The publish task: commits every table the open run built, with the lake's consent policy, in one atomic
   * step (the local lake's staged versions are what the run's branch holds on AWS).
   */
  publishRun(_publish?: PublishRequest): Promise<void> {
    const run = this.open;
    if (!run) return Promise.resolve();
    this.open = undefined;
    run.transaction.commit([...run.tables.values()], { consentPolicy: run.consentPolicy });
    return Promise.resolve();
  }

  /** Drops every table the open run staged: readers keep the committed ones. */
  abortRun(): void {
    const run = this.open;
    this.open = undefined;
    run?.transaction.abort();
  }

  async runJob(name: JobName, params: RunParameters): Promise<JobResult> {
    const job = required(
      loadJobs().find((j) => j.name === name),
      `the job ${name}`,
    );
    const started = Date.now();
    const connection = await this.db.connect();
    const scratch = await mkdtemp(path.join(tmpdir(), 'stedi-job-'));
    try {
      // A validated segment damaged since its commit would be reused into the new copy: named first
      // (--rebuild checks every landing file again and reuses none).
      if (!this.options.rebuild) {
        const committed = await this.lake.snapshot();
        for (const table of job.reads.filter(isLandingTable)) {
          const damaged = changedSinceCommit(committed, validatedPrefix(datasetOfLandingTable(table)));
          if (damaged) throw new LakeDamagedError(damaged.file, damaged.problem);
        }
      }
      const landing = await refreshLandingTables(connection, this.lake, job, params.runId, scratch, {
        definitions: this.landingTables,
        rules: this.rules,
        batchBytes: this.options.batchBytes,
        recheck: this.options.rebuild,
      });
      // One state for the whole job: inputs and the catalog it builds on (the open run's tables in it).
      const snapshot = await this.view();
      checkInputs(job, snapshot, params);
      const keys = buildKeys(job, snapshot, params, this.duckdbVersion);
      const builtFrom = builtFromOf(job, snapshot, landing);
      const built = snapshot.catalog.tables[job.target];
      // An input file cut short or gone since its commit fails the job, naming it, before it is read.
      for (const table of job.reads.filter((t) => !isLandingTable(t))) {
        const damaged = changedSinceCommit(snapshot, TABLE_PREFIX[table]);
        if (damaged) throw new LakeDamagedError(damaged.file, damaged.problem);
      }
      // A table whose data is gone (its folder deleted) or damaged is rebuilt, whatever its build key says.
      const intact = built !== undefined && isReadable(snapshot, built) && !changedSinceCommit(snapshot, job.location);
      if (!this.options.rebuild && keys.build && built?.buildKey === keys.build && intact) {
        // Its inputs are not read, but a missing one is still an error, as for a job that runs.
        for (const table of job.reads.filter((t) => !isLandingTable(t)))
          parquetScanSql(snapshot, required(snapshot.catalog.tables[table], `the catalog entry of ${table}`));
        return this.skipped(job, snapshot, landing, params, started, builtFrom);
      }
      // An append adds to the content fingerprint of the version before, which a table read by a job needs.
      const appendable = !this.options.rebuild && intact && (built.content !== undefined || !isReadByAJob(job.target));
      const sameBase = built?.base === keys.base;
      const append = appendable
        ? appendPlan(job, snapshot, { contents: keys.inputs, segments: builtFrom }, sameBase, this.landingTables)
        : undefined;
      // What the build log records as the rows before: the committed table's, as readers saw it.
      const rowsBefore = (await this.lake.snapshot()).catalog.tables[job.target]?.rows ?? null;
      const run = { job, snapshot, landing, params, keys, builtFrom, append, started, rowsBefore };
      return await this.build(connection, run);
    } catch (error) {
      if (
        error instanceof MissingInputError ||
        error instanceof ParameterMismatchError ||
        error instanceof TableUnreadableError ||
        error instanceof LandingFolderMissingError
      )
        throw error;
      // A damaged committed file (DuckDB: "No magic bytes found...") is named, with the repair.
      throw new JobFailedError(name, explainDamage(this.lake, error));
    } finally {
      connection.closeSync();
      removeTree(scratch);
    }
  }

  private skipped(
    job: JobDefinition,
    snapshot: LakeSnapshot,
    landing: Map<LandingTableName, ValidatedCopy>,
    params: RunParameters,
    started: number,
    builtFrom: BuiltFrom | undefined,
  ): JobResult {
    const target = required(snapshot.catalog.tables[job.target], `the catalog entry of ${job.target}`);
    // The build log says what this run did to the table: it kept it, so the rows before the run are the
    // rows after (tables_not_emptied judges the run, as on AWS, where every run rebuilds the table). Its
    // inputs hold the same rows as those it was built from, perhaps in other segments: it is built from these.
    const rowsKept = !target.build || target.build.rowsBefore === target.rows;
    if (!rowsKept || (builtFrom && !sameBuiltFrom(target.builtFrom, builtFrom))) {
      const build = target.build && { ...target.build, rowsBefore: target.rows };
      const kept = { ...target, ...(build ? { build } : {}), ...(builtFrom ? { builtFrom } : {}) };
      if (this.open) this.open.tables.set(job.target, kept);
      else this.lake.begin(params.runId).commit([kept]);
    }
    const rowsIn = Object.fromEntries(job.reads.map((t) => [t, snapshot.catalog.tables[t]?.rows ?? 0]));
    return {
      job: job.name,
      target: job.target,
      rowsIn,
      rowsOut: target.rows,
      ...landingCounts(landing),
      ...(target.diagnostics ? { diagnostics: target.diagnostics } : {}),
      skipped: true,
      durationMs: Date.now() - started,
    };
  }

  private async build(connection: DuckDBConnection, run: BuildRun): Promise<JobResult> {
    const { job, snapshot, landing, params, keys, append, started } = run;
    const transaction = this.open?.transaction ?? this.lake.begin(params.runId);
    try {
      const rowsIn = await bindInputs(connection, this.landingTables, job, snapshot, landing);
      if (append) {
        // The input that gained rows is bound to those rows alone; the others are those the table was built from.
        await connection.run(`create or replace temp view ${sqlIdentifier(append.table)} as ${append.delta}`);
        const counted = await connection.runAndReadAll(`select count(*)::double from ${sqlIdentifier(append.table)}`);
        rowsIn[append.table] = Number(counted.getRows()[0]?.[0] ?? 0);
      }
      await connection.run(
        `create or replace temp table job_parameters as
         select $pii_salt::varchar as pii_salt, $consent_policy::varchar as consent_policy, $run_id::varchar as run_id`,
        { pii_salt: params.piiSalt, consent_policy: params.consentPolicy, run_id: params.runId },
      );
      const columns = await describe(connection, job.sql);
      const staging = transaction.stage(job.location);
      // Every build names its files with a token of its own: a segment's name is never used twice (segments.ts).
      const token = `${randomBytes(6).toString('hex')}-`;
      if (append) linkTree(append.previous, staging);
      const written = await writeParquet(connection, job, staging, token);
      const counted = await runDiagnostics(connection, job, append?.target.diagnostics);
      const diagnostics = counted ? { diagnostics: counted } : {};
      const added = append ? filesNamed(staging, `part-${token}`) : undefined;
      const content = isReadByAJob(job.target)
        ? await contentFingerprint(connection, job, staging, columns, added, append?.target.content)
        : undefined;
      const rowsOut = written + (append?.target.rows ?? 0);
      const entry: CatalogTable = {
        name: job.target,
        location: job.location,
        format: 'parquet',
        columns,
        partitionKeys: job.partitionKeys,
        rows: rowsOut,
        parameters: Object.fromEntries(parametersOf(job).map((p) => [p, parameterValues(params)[p]])),
        ...diagnostics,
        base: keys.base,
        ...(keys.build ? { buildKey: keys.build, inputs: keys.inputs } : {}),
        build: {
          rowsBefore: run.rowsBefore,
          consentPolicy: params.consentPolicy,
          // A table emptied because an input is empty is no lost input (tables_not_emptied).
          emptyInputs: Object.entries(rowsIn)
            .filter(([, rows]) => rows === 0)
            .map(([table]) => table)
            .sort(),
        },
        ...(content ? { content } : {}),
        ...(run.builtFrom ? { builtFrom: run.builtFrom } : {}),
        updatedAt: new Date().toISOString(),
        runId: params.runId,
      };
      if (this.open) this.open.tables.set(job.target, entry);
      else transaction.commit([entry], { consentPolicy: params.consentPolicy });
      return {
        job: job.name,
        target: job.target,
        rowsIn,
        rowsOut,
        ...landingCounts(landing),
        ...diagnostics,
        ...(append ? { appended: written, appendedInput: append.table } : {}),
        durationMs: Date.now() - started,
      };
    } catch (error) {
      if (this.open) {
        transaction.unstage(job.location);
        this.open.tables.delete(job.target);
      } else transaction.abort();
      throw error;
    }
  }
}

interface BuildRun {
  job: JobDefinition;
  snapshot: LakeSnapshot;
  landing: Map<LandingTableName, ValidatedCopy>;
  params: RunParameters;
  keys: BuildKeys;
  builtFrom: BuiltFrom | undefined;
  append?: AppendPlan;
  started: number;
  rowsBefore: number | null;
}
