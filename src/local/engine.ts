import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, statSync } from 'node:fs';
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
} from '../layout';
import { ConsentPolicy, JobDefinition, JobName, JobParameter, loadJobs, parametersOf } from '../pipeline';
import { glueDir } from '../project';
import { LandingTableDefinition, readLandingTables } from '../sql/ddl';
import {
  CatalogColumn,
  CatalogTable,
  Lake,
  LakeSnapshot,
  LakeDamagedError,
  LakeTransaction,
  SkippedFile,
  TableUnreadableError,
  emptyTableSql,
  explainDamage,
  parquetFiles,
  parquetFilesScanSql,
  parquetScanSql,
} from './lake';
import { sqlIdentifier, sqlString } from '../sql/quote';
import { hiveType } from '../sql/types';
import { required } from '../required';
import { Diagnostics, runDiagnostics } from './diagnostics';
import { SPARK_MACROS, installSparkDialect } from './spark-dialect';
import {
  ValidatedCopy,
  landingContentId,
  refreshValidatedCopy,
  rulesVersion,
  segmentsScanSql,
  validatedScanSql,
} from './validated';
import { removeTree, versionDir } from './versions';

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

/**
 * A landing folder the lake has read from before is gone (moved, unmounted): read as empty it would empty
 * every table built from it. An empty folder is a lake with no data of that kind; a missing one is this.
 */
export class LandingFolderMissingError extends Error {
  constructor(
    readonly dataset: Dataset,
    readonly folder: string,
  ) {
    super(
      `the landing folder ${folder} is missing (moved or unmounted?), so no job ran: put it back; ` +
        `if the lake is to hold no ${dataset} data, make it an empty folder`,
    );
    this.name = 'LandingFolderMissingError';
  }
}

/** A run opened with beginRun: its tables staged, published together by publishRun once its checks pass. */
interface OpenRun {
  runId: string;
  consentPolicy: ConsentPolicy;
  transaction: LakeTransaction;
  tables: Map<TableName, CatalogTable>;
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
  /** Bytes of landing files checked per batch (see landing.ts); tests make it small. */
  batchBytes?: number;
  /** Check every landing file again and run every job, whatever the lake records (stedi run --rebuild). */
  rebuild?: boolean;
}

/**
 * Bumped when how a job turns its inputs into its table changes outside its SQL (the writer, the
 * bindings): every table's build key changes, so no job is skipped on a build made the old way.
 */
const ENGINE_REVISION = 1;

/** Landing files of a dataset a job's run checked, reused untouched, and dropped (gone from landing). */
export interface LandingFileCounts {
  checked: number;
  reused: number;
  removed: number;
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
      this.checkLandingFolder(table, catalog.tables[table]);
      mkdirSync(this.lake.path(landingPrefix(datasetOfLandingTable(table))), { recursive: true });
    }
    this.open = { runId, consentPolicy, transaction: this.lake.begin(runId), tables: new Map() };
  }

  /** The committed lake, with the open run's staged tables in it: what the run's jobs and checks read. */
  async view(): Promise<LakeSnapshot> {
    const committed = await this.lake.snapshot();
    if (!this.open) return committed;
    const catalog = this.open.transaction.overlay(committed.catalog, this.open.tables.values());
    return new LakeSnapshot(this.lake, catalog, committed.legacy);
  }

  /** Commits every table the open run built, with the lake's consent policy, in one atomic step. */
  publishRun(): void {
    const run = this.open;
    if (!run) return;
    this.open = undefined;
    run.transaction.commit([...run.tables.values()], { consentPolicy: run.consentPolicy });
  }

  /** Drops every table the open run staged: readers keep the committed ones. */
  abortRun(): void {
    const run = this.open;
    this.open = undefined;
    run?.transaction.abort();
  }

  /** Throws LandingFolderMissingError when the landing folder of a table the lake has read is gone. */
  private checkLandingFolder(table: LandingTableName, entry: CatalogTable | undefined): void {
    const dataset = datasetOfLandingTable(table);
    const folder = this.lake.path(landingPrefix(dataset));
    if (entry && !existsSync(folder)) throw new LandingFolderMissingError(dataset, folder);
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
      const landing = await this.refreshLanding(connection, job, params, scratch);
      // One state for the whole job: inputs and the catalog it builds on (the open run's tables in it).
      const snapshot = await this.view();
      this.checkInputs(job, snapshot, params);
      const keys = this.buildKeys(job, snapshot, params);
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
        return this.skipped(job, snapshot, landing, params, started);
      }
      const append = this.options.rebuild || !intact ? undefined : this.appendPlan(job, snapshot, keys);
      // What the build log records as the rows before: the committed table's, as readers saw it.
      const rowsBefore = (await this.lake.snapshot()).catalog.tables[job.target]?.rows ?? null;
      return await this.build(connection, { job, snapshot, landing, params, keys, append, started, rowsBefore });
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

  /**
   * Brings the validated copy of each landing table the job reads in line with landing, and commits the
   * new versions (with the landing tables' catalog entries) on their own: checked files stay checked
   * whatever happens to the job.
   */
  private async refreshLanding(
    connection: DuckDBConnection,
    job: JobDefinition,
    params: RunParameters,
    scratch: string,
  ): Promise<Map<LandingTableName, ValidatedCopy>> {
    const copies = new Map<LandingTableName, ValidatedCopy>();
    const tables = job.reads.filter(isLandingTable);
    if (tables.length === 0) return copies;
    const committed = await this.lake.snapshot();
    for (const table of tables) this.checkLandingFolder(table, committed.catalog.tables[table]);
    const transaction = this.lake.begin(params.runId);
    try {
      const snapshot = await this.lake.snapshot();
      for (const table of tables) {
        const copy = await refreshValidatedCopy(connection, transaction, {
          lake: this.lake,
          snapshot,
          dataset: datasetOfLandingTable(table),
          definition: this.landingTables[table],
          rules: required(this.rules.get(table), `the rules version of ${table}`),
          scratch,
          batchBytes: this.options.batchBytes,
          recheck: this.options.rebuild,
        });
        copies.set(table, copy);
      }
      const staged = [...copies].filter(([, copy]) => copy.staged);
      const entry = (table: LandingTableName, copy: ValidatedCopy) =>
        this.landingCatalogEntry(table, copy, params.runId, snapshot.catalog.tables[table]);
      if (staged.length > 0) transaction.commit(staged.map(([table, copy]) => entry(table, copy)));
      else transaction.abort();
      return copies;
    } catch (error) {
      transaction.abort();
      throw error;
    }
  }

  /** Every input the job reads from the catalog is there, built with this run's salt and consent policy. */
  private checkInputs(job: JobDefinition, snapshot: LakeSnapshot, params: RunParameters): void {
    for (const table of job.reads) {
      if (isLandingTable(table)) continue;
      const entry = snapshot.catalog.tables[table];
      if (!entry) throw new MissingInputError(table, this.lake.root);
      for (const [parameter, built] of Object.entries(entry.parameters ?? {})) {
        const now = parameterValues(params)[parameter as JobParameter];
        if (built !== now) throw new ParameterMismatchError(table, parameter, built, now);
      }
    }
  }

  /**
   * What a job's table is built from, as a build system records it: the engine, the SQL, the values of
   * the parameters the SQL reads (the base), and the content of each input (CatalogTable.content). The
   * build key is undefined when an input's content is not known.
   */
  private buildKeys(job: JobDefinition, snapshot: LakeSnapshot, params: RunParameters): BuildKeys {
    const values = parameterValues(params);
    const base = sha256(
      JSON.stringify({
        revision: ENGINE_REVISION,
        duckdb: this.duckdbVersion,
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
   * When the table can be brought up to date by adding rows: the job's base and every input but one are
   * those it was built from, and that one is an input it is row-wise in (JobDefinition.rowWise) which has
   * only gained rows since (CatalogTable.appended). The job then runs over those rows alone.
   */
  private appendPlan(job: JobDefinition, snapshot: LakeSnapshot, keys: BuildKeys): AppendPlan | undefined {
    const target = snapshot.catalog.tables[job.target];
    const previous = snapshot.dirOf(job.location);
    if (!target?.inputs || target.base !== keys.base || !keys.inputs || !previous) return;
    if (!isReadable(snapshot, target)) return; // its data is gone: nothing to add rows to
    if (isReadByAJob(job.target) && !target.content) return;
    const changed = job.reads.filter((t) => keys.inputs?.[t] !== target.inputs?.[t]);
    const [table] = changed;
    if (changed.length !== 1 || !table || !job.rowWise.includes(table)) return;
    const input = snapshot.catalog.tables[table];
    if (!input?.appended || input.appended.from !== target.inputs[table]) return;
    if (countFiles(previous) >= MAX_APPENDED_FILES) return; // a full build gathers them again
    const dir = snapshot.dirOf(isLandingTable(table) ? validatedPrefix(datasetOfLandingTable(table)) : input.location);
    if (!dir) return;
    const added = input.appended.files.map((f) => path.join(dir, f));
    const delta = isLandingTable(table)
      ? segmentsScanSql(this.landingTables[table], dir, input.appended.files)
      : (parquetFilesScanSql(added, input.partitionKeys) ?? emptyTableSql(input.columns));
    return { table, delta, rows: input.appended.rows, previous, target };
  }

  private skipped(
    job: JobDefinition,
    snapshot: LakeSnapshot,
    landing: Map<LandingTableName, ValidatedCopy>,
    params: RunParameters,
    started: number,
  ): JobResult {
    const target = required(snapshot.catalog.tables[job.target], `the catalog entry of ${job.target}`);
    // The build log says what this run did to the table: it kept it, so the rows before the run are the
    // rows after (tables_not_emptied judges the run, as on AWS, where every run rebuilds the table).
    if (target.build && target.build.rowsBefore !== target.rows) {
      const kept = { ...target, build: { ...target.build, rowsBefore: target.rows } };
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
      const rowsIn = await this.bindInputs(connection, job, snapshot, landing);
      if (append) {
        // The input that gained rows is bound to those rows alone; the others are those the table was built from.
        await connection.run(`create or replace temp view ${sqlIdentifier(append.table)} as ${append.delta}`);
        rowsIn[append.table] = append.rows;
      }
      await connection.run(
        `create or replace temp table job_parameters as
         select $pii_salt::varchar as pii_salt, $consent_policy::varchar as consent_policy, $run_id::varchar as run_id`,
        { pii_salt: params.piiSalt, consent_policy: params.consentPolicy, run_id: params.runId },
      );
      const columns = await this.describe(connection, job.sql);
      const staging = transaction.stage(job.location);
      const token = append ? `${randomBytes(6).toString('hex')}-` : '';
      if (append) linkTree(append.previous, staging);
      const written = await this.writeParquet(connection, job, staging, token);
      const counted = await runDiagnostics(connection, job, append?.target.diagnostics);
      const diagnostics = counted ? { diagnostics: counted } : {};
      const added = append ? filesNamed(staging, `part-${token}`) : undefined;
      const content = isReadByAJob(job.target)
        ? await this.fingerprint(connection, job, staging, columns, added, append?.target.content)
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
        ...(append && added && append.target.content
          ? { appended: { from: append.target.content, files: added, rows: written } }
          : {}),
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

  /** Binds each input table as a view of its name; returns the rows each holds. */
  private async bindInputs(
    connection: DuckDBConnection,
    job: JobDefinition,
    snapshot: LakeSnapshot,
    landing: Map<LandingTableName, ValidatedCopy>,
  ): Promise<Partial<Record<TableName, number>>> {
    const rows: Partial<Record<TableName, number>> = {};
    for (const table of job.reads) {
      const copy = isLandingTable(table) ? landing.get(table) : undefined;
      const definition = isLandingTable(table) ? this.landingTables[table] : undefined;
      const entry = required(snapshot.catalog.tables[table], `the catalog entry of ${table}`);
      const select = copy && definition ? validatedScanSql(definition, copy) : parquetScanSql(snapshot, entry);
      await connection.run(`create or replace temp view ${sqlIdentifier(table)} as ${select}`);
      rows[table] = copy ? copy.records : entry.rows;
    }
    return rows;
  }

  /**
   * An order-independent fingerprint of a table's rows: its columns, its row count and the sum of its
   * rows' 64-bit hashes. A rebuilt table with the same fingerprint has the same rows, so the jobs that
   * read it are skipped (their build keys hold it). After an append, the previous one plus the added
   * files' (sums add up).
   */
  private async fingerprint(
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

  private landingCatalogEntry(
    table: LandingTableName,
    copy: ValidatedCopy,
    runId: string,
    previous: CatalogTable | undefined,
  ): CatalogTable {
    const definition = this.landingTables[table];
    const content = landingContentId(copy);
    const appended = landingAppend(copy, content, previous);
    return {
      name: table,
      location: TABLE_PREFIX[table],
      format: 'json',
      columns: definition.columns.map((c) => ({ name: c.name, type: c.type })),
      partitionKeys: [],
      rows: copy.records,
      rejected: copy.rejected,
      files: Object.keys(copy.manifest.files).length,
      content,
      ...(appended ? { appended } : {}),
      updatedAt: new Date().toISOString(),
      runId,
    };
  }

  private async describe(connection: DuckDBConnection, sql: string): Promise<CatalogColumn[]> {
    const result = await connection.runAndReadAll(`describe ${sql}`);
    return result.getRowObjects().map((row) => ({
      name: row.column_name as string,
      type: hiveType(row.column_type as string),
    }));
  }

  /** Writes the job's rows into the folder as part-<token>{i}.parquet files (the token keeps an append's apart). */
  private async writeParquet(
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
}

/**
 * What a landing table's new version added to the one before (CatalogTable.appended), when it only
 * added files. A version that adds nothing (racy entries confirmed, say) keeps the append before it,
 * whose segments it still holds under the same names, for a reader that has not taken it in yet.
 */
function landingAppend(
  copy: ValidatedCopy,
  content: string,
  previous: CatalogTable | undefined,
): CatalogTable['appended'] {
  if (!copy.appended || !previous?.content) return undefined;
  if (copy.appended.length === 0 && previous.content === content && previous.appended) return previous.appended;
  const rows = copy.appended.reduce((n, segment) => n + (copy.manifest.segments[segment] ?? 0), 0);
  return { from: previous.content, files: copy.appended, rows };
}

/** The checked/reused/removed counts, quarantined lines and skipped entries of the landing tables a job read. */
function landingCounts(
  landing: Map<LandingTableName, ValidatedCopy>,
): Pick<JobResult, 'quarantined' | 'landingFiles' | 'skippedLandingFiles'> {
  const quarantined: Partial<Record<Dataset, number>> = {};
  const landingFiles: Partial<Record<Dataset, LandingFileCounts>> = {};
  const skippedLandingFiles: SkippedFile[] = [];
  for (const [table, copy] of landing) {
    const dataset = datasetOfLandingTable(table);
    quarantined[dataset] = copy.rejected;
    landingFiles[dataset] = { checked: copy.checked, reused: copy.reused, removed: copy.removed };
    skippedLandingFiles.push(...copy.skipped);
  }
  return { quarantined, landingFiles, skippedLandingFiles };
}

/** Whether a table's committed data is there as its catalog entry says (parquetScanSql would read it). */
function isReadable(snapshot: LakeSnapshot, entry: CatalogTable): boolean {
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
function changedSinceCommit(snapshot: LakeSnapshot, key: string): { file: string; problem: string } | undefined {
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
function isReadByAJob(table: TableName): boolean {
  return loadJobs().some((job) => job.reads.includes(table));
}

/** Past this many files in a table's folder, a job builds it whole rather than add more. */
const MAX_APPENDED_FILES = 1000;

interface BuildKeys {
  /** The job's engine, SQL and parameters. */
  base: string;
  /** The content of each input; undefined when one is not known. */
  inputs?: Record<string, string>;
  build?: string;
}

interface AppendPlan {
  /** The input that gained rows, and a SELECT of those rows alone. */
  table: TableName;
  delta: string;
  rows: number;
  /** The table's committed version: its folder, and its catalog entry. */
  previous: string;
  target: CatalogTable;
}

interface BuildRun {
  job: JobDefinition;
  snapshot: LakeSnapshot;
  landing: Map<LandingTableName, ValidatedCopy>;
  params: RunParameters;
  keys: BuildKeys;
  append?: AppendPlan;
  started: number;
  rowsBefore: number | null;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Hard-links every file of a folder tree into another (the folders made anew): a version to build on. */
function linkTree(from: string, to: string): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) {
      mkdirSync(target, { recursive: true });
      linkTree(source, target);
    } else linkSync(source, target);
  }
}

function countFiles(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce(
    (n, e) => n + (e.isDirectory() ? countFiles(path.join(dir, e.name)) : 1),
    0,
  );
}

/** The files under a folder whose names start with a prefix, as paths relative to it, sorted. */
function filesNamed(dir: string, prefix: string, relative = ''): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(path.join(dir, relative), { withFileTypes: true })) {
    const child = path.join(relative, entry.name);
    if (entry.isDirectory()) found.push(...filesNamed(dir, prefix, child));
    else if (entry.name.startsWith(prefix)) found.push(child);
  }
  return found.sort();
}
