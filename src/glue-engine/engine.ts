import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  _Object,
} from '@aws-sdk/client-s3';
import {
  BatchCreatePartitionCommand,
  GetPartitionsCommand,
  GetTableCommand,
  GlueClient,
  Partition,
} from '@aws-sdk/client-glue';
import { SSMClient } from '@aws-sdk/client-ssm';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
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
import { JobResult, LandingFileCounts, RunParameters } from '../build/engine';
import { CatalogTable, Lake, LakeSnapshot, SkippedFile } from '../lake/lake';
import { ConsentPolicy, JobName, loadJobs } from '../definition/pipeline';
import { glueDir, projectRoot } from '../project';
import { readLandingTables } from '../definition/ddl';
import { GlueSetup, checkGlueSetup } from './setup';
import { LocalStack, createStackOnMoto, jobRunArgv } from './stack';
import { exportIcebergTable, recreateIcebergTables, restoreIcebergTables, saveIcebergTables } from './iceberg-tables';
import { GlueWorker } from './worker';

/** Where a lake keeps the Glue engine's results: a lake of its own inside it (see docs/glue-engine-run.md). */
export const GLUE_LAKE_DIR = '_glue';
/** Inside it: the Glue engine's bucket between runs (every object but landing) and its catalog partitions. */
const STATE_DIR = '_bucket-state';
const STATE_PARTITIONS = 'partitions.json';
const STATE_ICEBERG = 'iceberg-tables.json';
const MANIFEST = '_manifest.json';

/** The Glue engine's results lake of a lake: `stedi query --lake <lake>/_glue` reads it. */
export function glueLakeOf(lake: Lake): Lake {
  return new Lake(lake.path(GLUE_LAKE_DIR));
}

interface ManifestEntry {
  etag: string;
  size: number;
  records: number;
  rejected: number;
  batch: string;
}
interface Manifest {
  rules: string;
  files: Record<string, ManifestEntry>;
}
interface TableBuild {
  table_name: string;
  run_id: string;
  rows_before: number | null;
  rows_after: number;
  consent_policy: string;
  built_at: string;
  /** The inputs that held no rows, comma-separated (glue/checks/tables_not_emptied.sql). */
  empty_inputs?: string;
  /** The counts of the job's diagnostics (glue/run_sql_job.py run_diagnostics), by name. */
  diagnostics?: Record<string, number>;
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
      if (!options.fresh) await engine.restoreState();
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
    await this.importResults(definition.target, build, landingEntries, after);
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
  ): Promise<void> {
    const definition = loadJobs().find((j) => j.target === target)!;
    const tx = this.lake.begin(build.run_id);
    try {
      const dir = tx.stage(definition.location);
      await exportIcebergTable(this.worker, this.stack.databaseName, target, definition.partitionKeys, dir);
      for (const [table, manifest] of manifests) {
        const dataset = datasetOfLandingTable(table);
        const quarantine = tx.stage(quarantinePrefix(dataset));
        const live = new Set(Object.values(manifest.files).map((e) => e.batch));
        for (const object of await this.list(quarantinePrefix(dataset))) {
          const [batch, ...rest] = object.Key!.slice(quarantinePrefix(dataset).length).split('/');
          if (!batch || !live.has(batch) || !object.Key!.endsWith('.json') || rest.length !== 1) continue;
          // One folder of JSON-lines parts, as the local quarantine: the batch's name keeps them apart.
          await this.download(object.Key!, path.join(quarantine, `${batch}-${rest[0]}`));
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
      tx.commit([
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
      ]);
    } catch (error) {
      tx.abort();
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
    return this.readJson<Manifest>(`${validatedPrefix(dataset)}${MANIFEST}`);
  }

  private async tableBuild(table: TableName): Promise<TableBuild | undefined> {
    return isLandingTable(table) ? undefined : this.readJson<TableBuild>(tableBuildKey(table));
  }

  private async readJson<T>(key: string): Promise<T | undefined> {
    try {
      const { Body } = await this.s3.send(new GetObjectCommand({ Bucket: this.stack.dataBucket, Key: key }));
      return JSON.parse(await Body!.transformToString('utf8')) as T;
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  private async list(prefix: string): Promise<_Object[]> {
    const objects: _Object[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.stack.dataBucket, Prefix: prefix, ContinuationToken }),
      );
      objects.push(...(page.Contents ?? []));
      ContinuationToken = page.NextContinuationToken;
    } while (ContinuationToken);
    return objects;
  }

  private async download(key: string, file: string): Promise<void> {
    const { Body } = await this.s3.send(new GetObjectCommand({ Bucket: this.stack.dataBucket, Key: key }));
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, await Body!.transformToByteArray());
  }

  private async upload(key: string, body: Buffer): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.stack.dataBucket, Key: key, Body: body }));
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
        this.upload(`${landingPrefix(dataset)}${path.basename(file)}`, readFileSync(file)),
      );
      const gone = (await this.list(landingPrefix(dataset))).map((o) => o.Key!).filter((key) => !keys.has(key));
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
      (await this.list('')).map((o) => o.Key!),
      (key) => this.s3.send(new DeleteObjectCommand({ Bucket: this.stack.dataBucket, Key: key })).then(() => undefined),
    );
    await recreateIcebergTables(this.glue, this.stack.databaseName, this.stack.icebergTables);
    await this.uploadLanding();
  }

  /** Downloads every object under a prefix of the bucket into a folder, keeping the keys' rest as paths. */
  async downloadPrefix(prefix: string, dir: string): Promise<string[]> {
    const files: string[] = [];
    for (const object of await this.list(prefix)) {
      const file = path.join(dir, ...object.Key!.slice(prefix.length).split('/'));
      await this.download(object.Key!, file);
      files.push(file);
    }
    return files;
  }

  private async partitions(table: string): Promise<Partition[]> {
    const list: Partition[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.glue.send(
        new GetPartitionsCommand({ DatabaseName: this.stack.databaseName, TableName: table, NextToken }),
      );
      list.push(...(page.Partitions ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return list;
  }

  /** Puts back the bucket and catalog partitions the previous Glue run on this lake left. */
  private async restoreState(): Promise<void> {
    const state = this.lake.path(STATE_DIR);
    const bucket = path.join(state, 'bucket');
    if (!existsSync(bucket)) return;
    await restoreIcebergTables(this.glue, this.stack.databaseName, path.join(state, STATE_ICEBERG));
    await inBatches(filesUnder(bucket), (file) =>
      this.upload(path.relative(bucket, file).split(path.sep).join('/'), readFileSync(file)),
    );
    const partitions = JSON.parse(readFileSync(path.join(state, STATE_PARTITIONS), 'utf8')) as Record<
      string,
      Partition[]
    >;
    for (const [table, list] of Object.entries(partitions))
      for (let i = 0; i < list.length; i += 100)
        await this.glue.send(
          new BatchCreatePartitionCommand({
            DatabaseName: this.stack.databaseName,
            TableName: table,
            PartitionInputList: list.slice(i, i + 100).map((p) => ({
              Values: p.Values,
              StorageDescriptor: p.StorageDescriptor,
              Parameters: p.Parameters,
            })),
          }),
        );
  }

  /** Keeps every object of the bucket but landing (the lake has those) and the catalog partitions for the next run. */
  private async saveState(): Promise<void> {
    const next = this.lake.path(`${STATE_DIR}.new-${process.pid}`);
    rmSync(next, { recursive: true, force: true });
    const landing = DATASETS.map(landingPrefix);
    for (const object of await this.list(''))
      if (!landing.some((p) => object.Key!.startsWith(p)))
        await this.download(object.Key!, path.join(next, 'bucket', ...object.Key!.split('/')));
    const partitions: Record<string, Partition[]> = {};
    for (const table of DERIVED_TABLES) {
      const list = await this.partitions(table);
      if (list.length > 0) partitions[table] = list;
    }
    mkdirSync(next, { recursive: true });
    writeFileSync(path.join(next, STATE_PARTITIONS), `${JSON.stringify(partitions)}\n`);
    await saveIcebergTables(this.glue, this.stack.databaseName, DERIVED_TABLES, path.join(next, STATE_ICEBERG));
    const current = this.lake.path(STATE_DIR);
    const old = `${current}.old-${process.pid}`;
    if (existsSync(current)) renameSync(current, old);
    renameSync(next, current);
    rmSync(old, { recursive: true, force: true });
  }

  private run?: { runId: string; consentPolicy: ConsentPolicy };

  /**
   * The execution's run. The Glue jobs write their tables in place, as they do on AWS (where publishing
   * only audited tables waits for Iceberg's branches): each job's table is in the results lake when the job
   * ends, and a failed check leaves it there, as the alert says.
   */
  beginRun(runId: string, consentPolicy: ConsentPolicy): Promise<void> {
    this.run = { runId, consentPolicy };
    return Promise.resolve();
  }

  /** What the checks read: the results lake as the jobs left it. */
  view(): Promise<LakeSnapshot> {
    return this.lake.snapshot();
  }

  /** Records the run's consent policy as the results lake's, as the DuckDB engine records it on its lake. */
  publishRun(): void {
    const run = this.run;
    this.run = undefined;
    if (run) this.lake.begin(run.runId).commit([], { consentPolicy: run.consentPolicy });
  }

  /** Nothing to take back: on AWS the jobs' tables are written by the time a check fails. */
  abortRun(): void {
    this.run = undefined;
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
      if (keepState) await this.saveState();
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

/** Files checked, reused and removed, from the manifests before and after a run (glue/run_sql_job.py plan_sync). */
export function landingFileCounts(before: Manifest | undefined, after: Manifest): LandingFileCounts {
  const old = before && before.rules === after.rules ? before.files : {};
  let checked = 0;
  let reused = 0;
  for (const [key, entry] of Object.entries(after.files)) {
    const was = old[key];
    if (was && was.etag === entry.etag && was.size === entry.size && was.records === entry.records) reused++;
    else checked++;
  }
  const removed = Object.keys(before?.files ?? {}).filter((key) => !(key in after.files)).length;
  return { checked, reused, removed };
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}

async function inBatches<T>(items: T[], action: (item: T) => Promise<void>, size = 8): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(action));
}
