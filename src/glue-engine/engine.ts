import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetTableCommand, GlueClient } from '@aws-sdk/client-glue';
import { SSMClient } from '@aws-sdk/client-ssm';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import {
  DATASETS,
  Dataset,
  DERIVED_TABLES,
  LandingTableName,
  TableName,
  datasetOfLandingTable,
  isLandingTable,
  landingPrefix,
  quarantinePrefix,
  tableBuildKey,
  validatedPrefix,
} from '../definition/layout';
import { MotoServer, startMoto } from '../aws/moto-server';
import { JobResult, OpenRun, PublishRequest, RunParameters } from '../build/engine';
import { CatalogTable, Lake, LakeSnapshot, SkippedFile } from '../lake/lake';
import { ConsentPolicy, JobName, loadJobs } from '../definition/pipeline';
import { glueDir, projectRoot } from '../project';
import { readLandingTables } from '../definition/ddl';
import { GlueSetup, checkGlueSetup } from './setup';
import { LocalStack, createStackOnMoto, jobRunArgv } from './stack';
import { exportIcebergTable, recreateIcebergTables } from './iceberg-tables';
import { GlueWorker } from './worker';
import { DataBucket, inBatches } from './bucket';
import { Manifest, MANIFEST, landingFileCounts, TableBuild } from './runner-output';

/** Where a lake keeps the Glue engine's results: a lake of its own inside it (see docs/glue-engine-run.md). */
export const GLUE_LAKE_DIR = '_glue';

/** The Glue engine's results lake of a lake: `stedi query --lake <lake>/_glue` reads it. */
export function glueLakeOf(lake: Lake): Lake {
  return new Lake(lake.path(GLUE_LAKE_DIR));
}

export interface GlueEngineOptions {
  /** The lake whose landing files the run reads; the results go to its `_glue/` lake. */
  lake: Lake;
  consentPolicy: string;
  piiSalt: string;
  setup?: GlueSetup;
  /** Start from an empty bucket, not the one the previous Glue run left (stedi run --rebuild). */
  fresh?: boolean;
  /** Progress lines (starting the server, Spark...). */
  log?: (line: string) => void;
}

/**
 * The Glue engine: the jobs run by glue/run_sql_job.py on local Spark (the Glue stand-in's worker), against
 * a moto server holding what the stack deploys. Bound to the state machine's Glue tasks in place of the
 * DuckDB engine (src/statemachine/local-runner.ts).
 *
 * Each run starts a moto server, creates the stack's Glue resources on it (stack.ts), puts back the bucket
 * the previous Glue run left (the runner's validated copies, quarantines, tables and build log, kept in
 * `<lake>/_glue/_bucket-state/`) and the lake's landing files, and starts the worker. After each job it
 * copies the job's table (and, for a landing job, its quarantine and landing counts) out of moto into the
 * results lake `<lake>/_glue/`, a lake like any other: the data checks, the summary, `stedi query` and
 * `stedi tables` read it. close() keeps the bucket for the next run and stops the worker and the server.
 */
export class GlueEngine {
  private readonly s3: S3Client;
  private readonly glue: GlueClient;
  private readonly bucket: DataBucket;
  private skipped: Partial<Record<Dataset, SkippedFile[]>> = {};
  private closed = false;
  /** Started once the bucket is ready. */
  private worker!: GlueWorker;

  private constructor(
    /** The results lake: what the data checks read. */
    public lake: Lake,
    private source: Lake,
    private readonly moto: MotoServer,
    private readonly stack: LocalStack,
    clients: { s3: S3Client; glue: GlueClient },
  ) {
    this.s3 = clients.s3;
    this.glue = clients.glue;
    this.bucket = new DataBucket(clients.s3, clients.glue, stack);
  }

  /** Downloads every object under a prefix of the bucket into a folder, keeping the keys' rest as paths. */
  downloadPrefix(prefix: string, dir: string): Promise<string[]> {
    return this.bucket.downloadPrefix(prefix, dir);
  }

  static async open(options: GlueEngineOptions): Promise<GlueEngine> {
    const setup = options.setup ?? checkGlueSetup();
    const log = options.log ?? (() => undefined);
    const results = glueLakeOf(options.lake);
    results.checkAccess({ write: true });
    linkLanding(options.lake, results);
    log('glue engine: starting the moto server');
    // The stand-in's moto server: moto's own, with its CompleteMultipartUpload answer corrected for S3A
    // (tools/glue-local/glue_local/moto_server.py).
    const moto = await startMoto({
      python: setup.python,
      module: 'glue_local.moto_server',
      env: { PYTHONPATH: path.join(projectRoot(), 'tools', 'glue-local') },
    });
    log(`glue engine: moto server on ${moto.endpoint}`);
    let worker: GlueWorker | undefined;
    try {
      const config = {
        endpoint: moto.endpoint,
        region: moto.env.AWS_REGION,
        credentials: { accessKeyId: moto.env.AWS_ACCESS_KEY_ID!, secretAccessKey: moto.env.AWS_SECRET_ACCESS_KEY! },
      };
      const s3 = new S3Client({ ...config, forcePathStyle: true });
      const glue = new GlueClient(config);
      const stack = await createStackOnMoto(
        { s3, glue, ssm: new SSMClient(config) },
        { piiSalt: options.piiSalt, consentPolicy: options.consentPolicy },
      );
      const engine = new GlueEngine(results, options.lake, moto, stack, { s3, glue });
      if (!options.fresh) await engine.bucket.restoreState(engine.lake);
      await engine.uploadLanding();
      log(`glue engine: starting Spark (its log: ${path.relative(process.cwd(), results.path('spark.log'))})`);
      worker = GlueWorker.start({ python: setup.python, env: moto.env, logFile: results.path('spark.log') });
      engine.worker = worker;
      return engine;
    } catch (error) {
      await worker?.stop(0);
      await moto.stop();
      throw error;
    }
  }

  /** Runs one job as its Glue task does: the job's DefaultArguments with the task's Arguments over them. */
  async runJob(
    job: JobName,
    params: RunParameters & { taskArguments?: Record<string, string>; jobRunId?: string },
  ): Promise<JobResult> {
    const started = Date.now();
    const definition = loadJobs().find((j) => j.name === job)!;
    const { glueName, defaultArguments } = this.stack.jobs[job];
    const landing = definition.reads.filter(isLandingTable);
    const before = new Map<LandingTableName, Manifest | undefined>();
    for (const table of landing) before.set(table, await this.manifest(datasetOfLandingTable(table)));
    const taskArguments = params.taskArguments ?? {
      '--run_id': params.runId,
      '--consent_policy': params.consentPolicy,
    };
    await this.worker.run(
      jobRunArgv(glueName, params.jobRunId ?? `jr_${params.runId}_${job}`, defaultArguments, taskArguments),
    );
    const build = await this.tableBuild(definition.target);
    if (!build) throw new Error(`the Glue job ${glueName} ended without writing ${tableBuildKey(definition.target)}`);
    const rowsIn: JobResult['rowsIn'] = {};
    const quarantined: JobResult['quarantined'] = {};
    const landingFiles: JobResult['landingFiles'] = {};
    const skippedLandingFiles: SkippedFile[] = [];
    const landingEntries: CatalogTable[] = [];
    const after = new Map<LandingTableName, Manifest>();
    for (const table of definition.reads) {
      if (isLandingTable(table)) {
        const dataset = datasetOfLandingTable(table);
        const manifest = await this.manifest(dataset);
        if (!manifest) throw new Error(`the Glue job ${glueName} left no ${validatedPrefix(dataset)}${MANIFEST}`);
        after.set(table, manifest);
        const entries = Object.values(manifest.files);
        rowsIn[table] = sum(entries.map((e) => e.records));
        quarantined[dataset] = sum(entries.map((e) => e.rejected));
        landingFiles[dataset] = landingFileCounts(before.get(table), manifest);
        skippedLandingFiles.push(...(this.skipped[dataset] ?? []));
        landingEntries.push(this.landingEntry(table, manifest, build.run_id));
      } else {
        const input = await this.tableBuild(table);
        if (input) rowsIn[table] = input.rows_after;
      }
    }
    await this.importResults(definition.target, build, landingEntries, after, taskArguments['--wap_branch']);
    return {
      ...(build.diagnostics && Object.keys(build.diagnostics).length > 0 ? { diagnostics: build.diagnostics } : {}),
      job,
      target: definition.target,
      rowsIn,
      rowsOut: build.rows_after,
      quarantined,
      landingFiles,
      skippedLandingFiles,
      durationMs: Date.now() - started,
    };
  }

  /** Copies a job's table (and its landing datasets' quarantines) out of moto into the results lake, in one commit. */
  private async importResults(
    target: (typeof DERIVED_TABLES)[number],
    build: TableBuild,
    landingEntries: CatalogTable[],
    manifests: Map<LandingTableName, Manifest>,
    branch: string | undefined,
  ): Promise<void> {
    const definition = loadJobs().find((j) => j.target === target)!;
    const run = this.run;
    const tx = run?.transaction ?? this.lake.begin(build.run_id);
    const staged: string[] = []; // this job's keys, unstaged if it fails (the run's others stay)
    const stage = (key: string) => {
      staged.push(key);
      return tx.stage(key);
    };
    try {
      const dir = stage(definition.location);
      await exportIcebergTable(this.worker, this.stack.databaseName, target, definition.partitionKeys, dir, branch);
      for (const [table, manifest] of manifests) {
        const dataset = datasetOfLandingTable(table);
        const quarantine = stage(quarantinePrefix(dataset));
        const live = new Set(Object.values(manifest.files).map((e) => e.batch));
        for (const object of await this.bucket.list(quarantinePrefix(dataset))) {
          const [batch, ...rest] = object.Key!.slice(quarantinePrefix(dataset).length).split('/');
          if (!batch || !live.has(batch) || !object.Key!.endsWith('.json') || rest.length !== 1) continue;
          // One folder of JSON-lines parts, as the local quarantine: the batch's name keeps them apart.
          await this.bucket.download(object.Key!, path.join(quarantine, `${batch}-${rest[0]}`));
        }
      }
      const { Table } = await this.glue.send(
        new GetTableCommand({ DatabaseName: this.stack.databaseName, Name: target }),
      );
      // An Iceberg table's Catalog entry lists every column, partition keys included (hidden partitioning).
      const columns = (Table?.StorageDescriptor?.Columns ?? []).map((c) => ({
        name: c.Name!,
        type: c.Type!,
      }));
      const entries: CatalogTable[] = [
        ...landingEntries,
        {
          name: target,
          location: definition.location,
          format: 'parquet',
          columns,
          partitionKeys: definition.partitionKeys,
          rows: build.rows_after,
          updatedAt: build.built_at,
          runId: build.run_id,
          ...(build.diagnostics && Object.keys(build.diagnostics).length > 0 ? { diagnostics: build.diagnostics } : {}),
          build: {
            rowsBefore: build.rows_before,
            consentPolicy: build.consent_policy,
            emptyInputs: (build.empty_inputs ?? '').split(',').filter((t) => t !== ''),
          },
        },
      ];
      if (run) for (const entry of entries) run.tables.set(entry.name, entry);
      else tx.commit(entries);
    } catch (error) {
      if (run) for (const key of staged) tx.unstage(key);
      else tx.abort();
      throw error;
    }
  }

  private landingEntry(table: LandingTableName, manifest: Manifest, runId: string): CatalogTable {
    const definition = readLandingTables(glueDir())[table];
    const entries = Object.values(manifest.files);
    return {
      name: table,
      location: landingPrefix(datasetOfLandingTable(table)),
      format: 'json',
      columns: definition.columns.map((c) => ({ name: c.name, type: c.type })),
      partitionKeys: [],
      rows: sum(entries.map((e) => e.records)),
      rejected: sum(entries.map((e) => e.rejected)),
      files: entries.length,
      updatedAt: new Date().toISOString(),
      runId,
    };
  }

  private async manifest(dataset: Dataset): Promise<Manifest | undefined> {
    return this.bucket.readJson<Manifest>(`${validatedPrefix(dataset)}${MANIFEST}`);
  }

  private async tableBuild(table: TableName): Promise<TableBuild | undefined> {
    return isLandingTable(table) ? undefined : this.bucket.readJson<TableBuild>(tableBuildKey(table));
  }

  /**
   * Makes the bucket's landing prefixes hold the lake's landing files, as uploads and deletions would: each
   * file put at its key (an unchanged one keeps its ETag, S3's MD5 of the content), each key of a file
   * gone deleted. The engine calls it when it opens; a test that changes the landing files between runs
   * calls it again.
   */
  async uploadLanding(): Promise<void> {
    for (const dataset of DATASETS) {
      const listing = await this.source.landingListing(dataset);
      this.skipped[dataset] = listing.skipped;
      const keys = new Set(listing.files.map((file) => `${landingPrefix(dataset)}${path.basename(file)}`));
      await inBatches(listing.files, (file) =>
        this.bucket.upload(`${landingPrefix(dataset)}${path.basename(file)}`, readFileSync(file)),
      );
      const gone = (await this.bucket.list(landingPrefix(dataset))).map((o) => o.Key!).filter((key) => !keys.has(key));
      await inBatches(gone, (key) =>
        this.s3.send(new DeleteObjectCommand({ Bucket: this.stack.dataBucket, Key: key })).then(() => undefined),
      );
    }
  }

  /**
   * Points the engine at another lake with an empty bucket (every object deleted, the derived Iceberg tables
   * created anew) holding that lake's landing files: the worker, and its SparkContext, are kept. For
   * tests that run many lakes on one Spark.
   */
  async reset(lake: Lake): Promise<void> {
    this.source = lake;
    this.lake = glueLakeOf(lake);
    this.lake.checkAccess({ write: true });
    linkLanding(lake, this.lake);
    await inBatches(
      (await this.bucket.list('')).map((o) => o.Key!),
      (key) => this.s3.send(new DeleteObjectCommand({ Bucket: this.stack.dataBucket, Key: key })).then(() => undefined),
    );
    await recreateIcebergTables(this.glue, this.stack.databaseName, this.stack.icebergTables);
    await this.uploadLanding();
  }

  private run?: OpenRun;

  /**
   * The execution's run (write, audit, publish, as on AWS): each job writes on the run's branch (--wap_branch)
   * and its export into the results lake is staged; the checks read the staged tables (view()); publishRun
   * moves main to the branch and commits the exports. A failed check leaves main and the results lake alone.
   */
  beginRun(runId: string, consentPolicy: ConsentPolicy): Promise<void> {
    if (this.run) throw new Error(`run ${this.run.runId} is still open`);
    this.run = { runId, consentPolicy, transaction: this.lake.begin(runId), tables: new Map() };
    return Promise.resolve();
  }

  /** What the checks read: the results lake with the open run's staged exports in it. */
  view(): Promise<LakeSnapshot> {
    return this.run ? this.run.transaction.view(this.run.tables.values()) : this.lake.snapshot();
  }

  /**
   * The publish task: the Glue job's run in its publish mode (glue/run_sql_job.py --publish_tables) moves each
   * table's main to the run's branch, then the staged exports are committed with the run's consent policy.
   */
  async publishRun(publish: PublishRequest): Promise<void> {
    const run = this.run;
    const { glueName, defaultArguments } = this.stack.jobs[publish.job];
    await this.worker.run(jobRunArgv(glueName, publish.jobRunId, defaultArguments, publish.taskArguments));
    this.run = undefined;
    if (run) run.transaction.commit([...run.tables.values()], { consentPolicy: run.consentPolicy });
  }

  /** Drops the staged exports: main, and the results lake, keep what they had (the branch stays in Iceberg). */
  abortRun(): void {
    const run = this.run;
    this.run = undefined;
    run?.transaction.abort();
  }

  /** Stops the worker at once (Ctrl-C): the run it is in fails, and the execution ends as a failed one does. */
  interrupt(): void {
    void this.worker.stop(0);
  }

  /** Keeps the bucket for the next run (`keepState`), then stops the worker and the moto server. */
  async close({ keepState = true } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.worker.stop();
      if (keepState) await this.bucket.saveState(this.lake);
    } finally {
      this.s3.destroy();
      this.glue.destroy();
      await this.moto.stop();
    }
  }
}

/**
 * The landing folders of the results lake lead to the lake's own (symbolic links), so `stedi query` over
 * the results lake reads its landing tables from the same files.
 */
function linkLanding(lake: Lake, results: Lake): void {
  for (const dataset of DATASETS) {
    const link = results.path(landingPrefix(dataset).replace(/\/$/, ''));
    if (existsSync(link)) continue;
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(path.relative(path.dirname(link), lake.path(landingPrefix(dataset))), link);
  }
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
