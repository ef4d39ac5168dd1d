import { AthenaClient } from '@aws-sdk/client-athena';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { GlueClient } from '@aws-sdk/client-glue';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { STSClient } from '@aws-sdk/client-sts';
import { AthenaTarget, runAthenaQuery, userResultsLocation } from '../aws/athena';
import { callerUserId } from '../aws/caller';
import { listCatalogTables } from '../aws/glue-catalog';
import { requireOutputs, stackName } from '../aws/stack';
import { awsClientConfig } from '../aws/clients';
import { checksFor } from '../checks/definitions';
import { CheckResult, runChecks, runLakeChecks } from '../checks/run';
import { ConfigError } from '../config';
import {
  ALL_TABLES,
  DATASETS,
  DERIVED_TABLES,
  Dataset,
  DerivedTableName,
  isLandingTable,
  isTableName,
  landingPrefix,
  landingTableOf,
  quarantinePrefix,
  tableBuildKey,
} from '../layout';
import { CatalogTable, Lake, LakeSnapshot, TableUnreadableError, jsonFilesIn, parquetScanSql } from '../local/lake';
import { required } from '../required';
import { TABLE_BUILDS_TABLE, quarantineTableName, supportTables } from '../support-tables';
import { followExecution } from './aws-commands';
import { checkDropFile } from './drop-file';
import { bytesAsText, formatTable, printable, seconds } from './format';
import type { Where } from './options';

type Row = Record<string, unknown>;

const out = (line: string) => process.stdout.write(`${line}\n`);
const note = (line: string) => process.stderr.write(`${line}\n`);
const POLL_MS = Number(process.env.STEDI_POLL_MS ?? 2000);

export function existingLake(dir: string): Lake {
  const lake = new Lake(dir);
  let missing = false;
  try {
    statSync(lake.root);
  } catch (error) {
    missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
  if (missing) throw new ConfigError(`--lake ${dir}: no such folder; run \`stedi run\` first`);
  lake.checkAccess({ write: false }); // a file, or below one: said as such, not as an ENOTDIR on an inner path
  return lake;
}

/** The stack's Athena workgroup and Glue database, from its outputs, and this caller's results location. */
export async function athenaTarget(stage: string): Promise<AthenaTarget> {
  const outputs = await requireOutputs(new CloudFormationClient(awsClientConfig()), stage, [
    'AthenaWorkGroupName',
    'GlueDatabaseName',
    'DataBucketName',
  ]);
  const userId = await callerUserId(new STSClient(awsClientConfig()));
  return {
    workGroup: outputs.AthenaWorkGroupName,
    database: outputs.GlueDatabaseName,
    outputLocation: userResultsLocation(outputs.DataBucketName, userId),
  };
}

function printRows(columns: string[], rows: Row[], json?: boolean): void {
  out(
    json ? JSON.stringify(rows) : `${formatTable(columns, rows)}\n(${rows.length} row${rows.length === 1 ? '' : 's'})`,
  );
}

// --- stedi query --stage ------------------------------------------------------------------------------

/** `stedi query --stage`: the SQL on Athena, in the stack's workgroup and database. */
export async function queryOnStage(sql: string, options: { stage: string; json?: boolean }): Promise<number> {
  const target = await athenaTarget(options.stage);
  const { columns, rows } = await runAthenaQuery(new AthenaClient(awsClientConfig()), target, sql);
  printRows(columns, rows, options.json);
  return 0;
}

// --- stedi check --------------------------------------------------------------------------------------

export async function checkCommand(where: Where, options: { json?: boolean }): Promise<number> {
  let results: CheckResult[];
  if ('stage' in where) {
    const target = await athenaTarget(where.stage);
    const athena = new AthenaClient(awsClientConfig());
    const checks = checksFor(target.database);
    if (!options.json) note(`running ${checks.length} checks on Athena (workgroup ${target.workGroup})`);
    results = await runChecks(checks, (sql) => runAthenaQuery(athena, target, sql), {
      concurrency: checks.length,
    });
  } else {
    results = await runLakeChecks(existingLake(where.lake));
  }
  printCheckResults(results, options.json);
  return results.every((r) => r.status === 'pass') ? 0 : 1;
}

export function printCheckResults(results: CheckResult[], json?: boolean): void {
  if (json) {
    out(JSON.stringify(results));
    return;
  }
  out(
    formatTable(
      ['check', 'result', 'violations', 'duration'],
      results.map((r) => ({
        check: r.name,
        result: r.status === 'pass' ? 'pass' : r.status === 'fail' ? 'FAIL' : 'ERROR',
        violations: r.violations,
        duration: seconds(r.durationMs),
      })),
    ),
  );
  for (const r of results.filter((x) => x.status !== 'pass')) {
    out(`\n${r.name}: ${r.summary}`);
    if (r.error) out(`error: ${r.error}`);
    else {
      out(formatTable(r.columns, r.rows));
      if (r.violations > r.rows.length) out(`(the first ${r.rows.length} of ${r.violations} rows)`);
    }
  }
  const failed = results.filter((r) => r.status !== 'pass').length;
  out(failed === 0 ? `\nall ${results.length} checks passed` : `\n${failed} of ${results.length} checks failed`);
}

// --- stedi tables -------------------------------------------------------------------------------------

export interface TableListing {
  name: string;
  location: string;
  format: string;
  columns: { name: string; type: string }[];
  partitionKeys: string[];
  /** null when it could not be counted (--no-rows, or the count failed). */
  rows: number | null;
  updatedAt: string | null;
  /** The run that last rebuilt it (derived tables). */
  runId?: string;
  /** Why its data cannot be read (its folder is missing...): then rows is null, never a count of nothing. */
  unreadable?: string;
  /**
   * Where the row count comes from: the data (counted now), or the catalog (what the build that wrote the
   * table recorded: a damaged file would not show; `stedi doctor` counts the data).
   */
  rowsFrom?: 'catalog' | 'data';
}

export async function tablesCommand(where: Where, options: { json?: boolean; rows: boolean }): Promise<number> {
  const tables = 'stage' in where ? await stageTables(where.stage, options.rows) : await lakeTables(where.lake);
  if (options.json) {
    out(JSON.stringify(tables));
    return 0;
  }
  for (const t of tables) {
    out(`${t.name}  (${t.format})`);
    out(`  location        ${t.location}`);
    const from =
      t.rowsFrom === 'catalog' && t.rows !== null
        ? ' (from the catalog, not counted: `stedi doctor` counts the data)'
        : '';
    out(`  rows            ${t.unreadable ? `unreadable: ${t.unreadable}` : (t.rows ?? '?')}${from}`);
    out(`  last update     ${t.updatedAt ?? 'never'}${t.runId ? ` (run ${t.runId})` : ''}`);
    if (t.partitionKeys.length > 0) out(`  partitioned by  ${t.partitionKeys.join(', ')}`);
    out(`  columns         ${t.columns.map((c) => `${c.name} ${c.type}`).join(', ')}`);
  }
  out(`(${tables.length} tables)`);
  return 0;
}

async function lakeTables(dir: string): Promise<TableListing[]> {
  const lake = existingLake(dir);
  const snapshot = await lake.snapshot();
  const { catalog } = snapshot;
  const listed: TableListing[] = [];
  for (const name of ALL_TABLES) {
    const entry = catalog.tables[name];
    if (!entry) continue;
    const unreadable = whyUnreadable(snapshot, entry);
    listed.push({
      name,
      location: lake.path(entry.location),
      format: entry.format,
      columns: entry.columns.map((c) => ({ name: c.name, type: c.type })),
      partitionKeys: entry.partitionKeys,
      rows: unreadable ? null : entry.rows,
      rowsFrom: 'catalog',
      updatedAt: entry.updatedAt,
      runId: entry.runId,
      ...(unreadable ? { unreadable } : {}),
    });
  }
  // The tables the stack's Catalog adds: each dataset's quarantine (the committed version's rejected lines)
  // and the build log (locally kept in the catalog, with each table it describes).
  for (const dataset of DATASETS) {
    const folder = snapshot.dirOf(quarantinePrefix(dataset));
    const name = quarantineTableName(dataset);
    const landing = catalog.tables[landingTableOf(dataset)];
    // A quarantine never committed has no rows yet; one whose committed folder is gone is not empty but lost.
    if (folder && !isFolder(folder)) {
      const listing = supportListing(name, lake.path(quarantinePrefix(dataset)), null, landing);
      listed.push({
        ...listing,
        unreadable: `its data folder for ${quarantinePrefix(dataset)} is missing`,
      });
      continue;
    }
    const files = folder ? readdirSync(folder).filter((f) => f.endsWith('.json')) : [];
    let rows = 0;
    for (const f of files)
      rows += readFileSync(path.join(folder!, f), 'utf8')
        .split('\n')
        .filter((l) => l.trim()).length;
    listed.push({ ...supportListing(name, lake.path(quarantinePrefix(dataset)), rows, landing), rowsFrom: 'data' });
  }
  const builds = DERIVED_TABLES.flatMap((t) => (catalog.tables[t]?.build ? [catalog.tables[t]] : []));
  const newest = builds.reduce<CatalogTable | undefined>(
    (a, b) => (!a || b.updatedAt > a.updatedAt ? b : a),
    undefined,
  );
  listed.push({
    ...supportListing(TABLE_BUILDS_TABLE, `${lake.path('_catalog.json')} (each table's build)`, builds.length, newest),
    rowsFrom: 'catalog',
  });
  return listed;
}

/**
 * Why a catalog table's data cannot be read now, or undefined when it can. A table whose folder is
 * missing is listed as such: never with the catalog's count as if it were there, nor as empty.
 */
function whyUnreadable(snapshot: LakeSnapshot, entry: CatalogTable): string | undefined {
  if (isLandingTable(entry.name)) {
    const folder = snapshot.lake.path(entry.location);
    // Without its folder a landing table has no files: a query reads no rows, whatever the last run counted.
    return isFolder(folder)
      ? undefined
      : `its landing folder ${folder} is missing (the last run counted ${entry.rows} rows)`;
  }
  try {
    parquetScanSql(snapshot, entry);
    return undefined;
  } catch (error) {
    if (error instanceof TableUnreadableError) return error.reason;
    throw error;
  }
}

function isFolder(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

function supportListing(name: string, location: string, rows: number | null, from?: CatalogTable): TableListing {
  const table = supportTables().find((t) => t.name === name)!;
  return {
    name,
    location,
    format: 'json',
    columns: table.columns.map((c) => ({ name: c.name, type: c.type })),
    partitionKeys: [],
    rows,
    updatedAt: from?.updatedAt ?? null,
    runId: from?.runId,
  };
}

async function stageTables(stage: string, countRows: boolean): Promise<TableListing[]> {
  const outputs = await requireOutputs(new CloudFormationClient(awsClientConfig()), stage, [
    'AthenaWorkGroupName',
    'GlueDatabaseName',
    'DataBucketName',
  ]);
  const catalog = await listCatalogTables(new GlueClient(awsClientConfig()), outputs.GlueDatabaseName);
  const counted = catalog.filter((t) => !t.isView);
  const rows = new Map<string, number>();
  if (countRows && counted.length > 0) {
    // One Athena query for all the counts: one scan each, one result to wait for.
    const sql = counted
      .map((t) => `select '${t.name}' as table_name, count(*) as row_count from "${t.name.replace(/"/g, '""')}"`)
      .join('\nunion all\n');
    try {
      const result = await runAthenaQuery(new AthenaClient(awsClientConfig()), await athenaTarget(stage), sql);
      for (const r of result.rows) rows.set(String(r.table_name), Number(r.row_count));
    } catch (error) {
      note(`warning: could not count the rows: ${(error as Error).message}`);
    }
  }
  const builds = await readBuilds(
    new S3Client(awsClientConfig()),
    outputs.DataBucketName,
    catalog.map((t) => t.name),
  );
  return catalog.map((t) => ({
    name: t.name,
    location: t.location,
    format: t.format,
    columns: t.columns,
    partitionKeys: t.partitionKeys,
    rows: rows.get(t.name) ?? null,
    ...(rows.has(t.name) ? { rowsFrom: 'data' as const } : {}),
    updatedAt: builds.get(t.name)?.built_at ?? t.updatedAt ?? null,
    runId: builds.get(t.name)?.run_id,
  }));
}

/** The build log's record of each derived table, where there is one. */
async function readBuilds(
  s3: S3Client,
  bucket: string,
  tables: string[],
): Promise<Map<string, { built_at: string; run_id: string }>> {
  const builds = new Map<string, { built_at: string; run_id: string }>();
  await Promise.all(
    tables
      .filter((t) => isTableName(t) && !t.endsWith('_landing'))
      .map(async (table) => {
        try {
          const object = await s3.send(
            new GetObjectCommand({ Bucket: bucket, Key: tableBuildKey(table as DerivedTableName) }),
          );
          builds.set(table, JSON.parse(await object.Body!.transformToString()) as { built_at: string; run_id: string });
        } catch (error) {
          if ((error as { name?: string }).name !== 'NoSuchKey') throw error;
        }
      }),
  );
  return builds;
}

// --- stedi quarantine ---------------------------------------------------------------------------------

/** One SELECT over the quarantine tables, the same text on DuckDB (the lake's views) and on Athena. */
export function quarantineSql(datasets: readonly Dataset[]): string {
  const parts = datasets.map(
    (d) =>
      `select '${d}' as dataset, q.source_file, q.line_number, q.reason, q.line, q.line_encoding from ${quarantineTableName(d)} as q`,
  );
  return `${parts.join('\nunion all\n')}\norder by dataset, source_file, line_number`;
}

export async function quarantineCommand(
  where: Where,
  options: { dataset?: Dataset; json?: boolean; width: number },
): Promise<number> {
  const sql = quarantineSql(options.dataset ? [options.dataset] : DATASETS);
  let rows: Row[];
  if ('stage' in where) {
    rows = (await runAthenaQuery(new AthenaClient(awsClientConfig()), await athenaTarget(where.stage), sql)).rows;
  } else {
    const lake = existingLake(where.lake);
    const { QuerySession } = await import('../local/query');
    const session = await QuerySession.open(lake, sql);
    try {
      rows = (await session.query(sql)).rows;
    } finally {
      session.close();
    }
  }
  if (options.json) {
    out(JSON.stringify(rows));
    return 0;
  }
  // Escaped before it is clipped: a landing line's escape sequences are shown, never sent to the terminal.
  const clip = (s: unknown) => {
    const text = printable(typeof s === 'string' ? s : s === null || s === undefined ? '' : JSON.stringify(s));
    return text.length > options.width ? `${text.slice(0, options.width - 1)}…` : text;
  };
  out(
    formatTable(
      ['dataset', 'file', 'line', 'reason', 'text'],
      rows.map((r) => ({
        dataset: r.dataset,
        file: r.source_file,
        line: r.line_number,
        reason: r.reason,
        text: clip(r.line_encoding === 'base64' ? bytesAsText(Buffer.from(String(r.line), 'base64')) : r.line),
      })),
    ),
  );
  out(`(${rows.length} rejected line${rows.length === 1 ? '' : 's'})`);
  return 0;
}

// --- stedi drop / run --landing / generate --stage: files into the bucket, then the runs they start ---------

/** A file and the dataset whose landing prefix it goes to. */
export interface LandingUpload {
  file: string;
  dataset: Dataset;
}

/**
 * Uploads each file to its dataset's landing prefix under its own name, as `aws s3 cp` would; the bucket's
 * notifications start the pipeline. Returns the keys and S3's own time of the first upload.
 */
async function uploadToLanding(s3: S3Client, bucket: string, uploads: LandingUpload[]) {
  const keys: string[] = [];
  let uploadedAt: number | undefined;
  for (const { file, dataset } of uploads) {
    const key = `${landingPrefix(dataset)}${path.basename(file)}`;
    const put = await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(file), ContentType: 'application/json' }),
    );
    out(`uploaded ${file} to s3://${bucket}/${key}${put.VersionId ? ` (version ${put.VersionId})` : ''}`);
    if (uploadedAt === undefined) {
      // S3's clock, not ours: an execution that started before the upload cannot hold this version. The HEAD
      // reads the key's current version (should the key be uploaded again meanwhile, the later one, which an
      // execution then picks up): a HEAD of a VersionId would need s3:GetObjectVersion, which the CLI user's
      // policy does not grant, so that old versions of landing files stay out of its reach.
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      uploadedAt = Math.floor((head.LastModified ?? new Date()).getTime() / 1000) * 1000;
    }
    keys.push(key);
  }
  return { keys, uploadedAt: uploadedAt ?? Date.now() };
}

/**
 * Waits for the executions that pick up `keys` (the landing queue gathers drops for up to a minute, and a
 * running execution delays a batch) and follows each to its end: 0 when every one succeeded.
 */
async function followPickups(
  stage: string,
  stateMachineArn: string,
  keys: string[],
  uploadedAt: number,
  timeoutSeconds: number,
): Promise<number> {
  const waiting = new Set(keys);
  note(
    `waiting for the execution${keys.length > 1 ? 's' : ''} that pick${keys.length > 1 ? '' : 's'} up ${keys.length > 1 ? `${keys.length} files` : keys[0]} (the landing queue gathers drops for up to a minute; a running execution delays it)`,
  );
  const sfn = new SFNClient(awsClientConfig());
  const checked = new Set<string>();
  const deadline = Date.now() + timeoutSeconds * 1000;
  let code = 0;
  while (waiting.size > 0) {
    const { executions = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: 50 }));
    // Oldest first: the executions run one after another, under the pipeline lock.
    for (const e of [...executions].reverse()) {
      if (!e.executionArn || checked.has(e.executionArn) || !e.startDate || e.startDate.getTime() < uploadedAt)
        continue;
      checked.add(e.executionArn);
      const described = await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
      const files = (JSON.parse(described.input ?? '{}') as { files?: unknown }).files;
      const picked = Array.isArray(files)
        ? files.filter((f): f is string => typeof f === 'string' && waiting.has(f))
        : [];
      if (picked.length === 0) continue;
      for (const key of picked) waiting.delete(key);
      out(`execution ${e.name} picked ${picked.length === 1 ? 'it' : `${picked.length} files`} up`);
      code = Math.max(code, await followExecution(sfn, e.executionArn, e.name ?? e.executionArn));
    }
    if (waiting.size === 0) break;
    if (Date.now() > deadline) {
      note(
        `stedi: no execution of ${stackName(stage)} picked up ${[...waiting].join(', ')} within ${timeoutSeconds} s; see \`stedi status --stage ${stage}\``,
      );
      return 1;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return code;
}

/** Uploads the files to the stack's landing prefixes and, with `wait`, follows the runs they start. */
export async function uploadOnStage(
  uploads: LandingUpload[],
  options: { stage: string; wait?: boolean; waitTimeoutSeconds: number },
): Promise<number> {
  // Both outputs are checked before anything is uploaded; StateMachineArn only when the runs are followed.
  const outputs: Partial<Record<'DataBucketName' | 'StateMachineArn', string>> = await requireOutputs(
    new CloudFormationClient(awsClientConfig()),
    options.stage,
    options.wait ? ['DataBucketName', 'StateMachineArn'] : ['DataBucketName'],
  );
  const bucket = required(outputs.DataBucketName, 'the DataBucketName output');
  const { keys, uploadedAt } = await uploadToLanding(new S3Client(awsClientConfig()), bucket, uploads);
  if (!options.wait || keys.length === 0) return 0;
  const stateMachineArn = required(outputs.StateMachineArn, 'the StateMachineArn output');
  return followPickups(options.stage, stateMachineArn, keys, uploadedAt, options.waitTimeoutSeconds);
}

/**
 * `stedi drop --stage`: uploads the file to the dataset's landing prefix, as `aws s3 cp` would; the
 * bucket's notification starts the pipeline. With `wait`, follows the execution that picks the file up.
 */
export async function dropOnStage(
  file: string,
  options: { dataset: Dataset; stage: string; wait?: boolean; waitTimeoutSeconds: number },
): Promise<number> {
  checkDropFile(file);
  return uploadOnStage([{ file, dataset: options.dataset }], options);
}

/**
 * The DIR/<dataset>/*.json files of a folder laid out as `stedi generate --out` writes it (a symbolic link
 * to a file uploads the file, as `stedi run --landing` drops it); an entry that is not read is named.
 */
export function landingUploadsIn(dir: string): LandingUpload[] {
  return DATASETS.flatMap((dataset) => {
    const { files, skipped } = jsonFilesIn(path.join(dir, dataset));
    for (const { file, reason } of skipped) note(`warning: --landing ${file} not uploaded: ${reason}`);
    return files.map((file) => ({ file, dataset }));
  });
}

// --- stedi watch --stage --------------------------------------------------------------------------------

/**
 * `stedi watch --stage`: on AWS the bucket's notifications start the runs, so watching means following
 * them: each execution of the deployed pipeline as it starts and as it ends, until `signal` aborts.
 */
export async function watchStage(options: { stage: string; signal: AbortSignal }): Promise<number> {
  const stateMachineArn = (
    await requireOutputs(new CloudFormationClient(awsClientConfig()), options.stage, ['StateMachineArn'])
  ).StateMachineArn;
  const sfn = new SFNClient(awsClientConfig());
  const seen = new Map<string, string>();
  let first = true;
  while (!options.signal.aborted) {
    const { executions = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: 20 }));
    // Said once the first listing is in: any execution that starts after this line is reported as started.
    if (first) out(`watching the executions of ${stackName(options.stage)} (Ctrl-C to stop)`);
    for (const e of [...executions].reverse()) {
      if (!e.executionArn || !e.status) continue;
      const before = seen.get(e.executionArn);
      seen.set(e.executionArn, e.status);
      if (before === e.status || (first && e.status !== 'RUNNING')) continue;
      if (before === undefined) {
        const described = await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
        const input = JSON.parse(described.input ?? '{}') as { from?: string; files?: unknown[] };
        const files = Array.isArray(input.files) ? input.files.length : 0;
        out(`execution ${e.name} ${first ? 'is running' : 'started'}: from ${input.from ?? 'all'}, ${files} file(s)`);
      }
      if (e.status !== 'RUNNING') {
        const { error, cause } =
          e.status === 'SUCCEEDED'
            ? {}
            : await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
        const took = e.stopDate && e.startDate ? ` in ${seconds(e.stopDate.getTime() - e.startDate.getTime())}` : '';
        out(`execution ${e.name} ${e.status}${took}${error ? `: ${error}: ${cause ?? ''}` : ''}`);
      }
    }
    first = false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, POLL_MS);
      options.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return 0;
}
