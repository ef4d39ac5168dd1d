import { AthenaClient } from '@aws-sdk/client-athena';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { GlueClient } from '@aws-sdk/client-glue';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { runAthenaQuery } from '../../aws/athena';
import { listCatalogTables } from '../../aws/glue-catalog';
import { requireOutputs } from '../../aws/stack';
import { awsClientConfig } from '../../aws/clients';
import {
  ALL_TABLES,
  DATASETS,
  DERIVED_TABLES,
  DerivedTableName,
  isLandingTable,
  isTableName,
  landingTableOf,
  quarantinePrefix,
  tableBuildKey,
} from '../../definition/layout';
import { CatalogTable, LakeSnapshot, TableUnreadableError, parquetScanSql } from '../../lake/lake';
import { TABLE_BUILDS_TABLE, quarantineTableName, supportTables } from '../../definition/support-tables';
import type { Where } from '../common/options';
import { existingLake, athenaTarget } from './targets';

const out = (line: string) => process.stdout.write(`${line}\n`);
const note = (line: string) => process.stderr.write(`${line}\n`);
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
