import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ALL_TABLES, TableName, datasetOfLandingTable, isLandingTable, validatedPrefix } from '../definition/layout';
import { Catalog, CatalogTable, Lake, LakeSnapshot } from './lake';
import { RunRecord } from './run-log';
import { SNAPSHOT_CATALOG, normalizeKey, snapshotDir } from './versions';

/**
 * A table's history and the lake as a run left it, read from the snapshots the lake keeps for its newest
 * runs (run-log.ts): the local counterpart of an Iceberg table's snapshots and Athena's time travel.
 */

/** One snapshot of a table: a version a run committed. */
export interface TableSnapshot {
  runId: string;
  /** When the run built this version (its catalog entry's updatedAt). */
  committedAt: string;
  rows: number;
  /** The version the lake reads now. */
  current: boolean;
}

/** An --as-of run this lake cannot show: never run here, or run so long ago that its snapshot is gone. */
export class RunNotKeptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunNotKeptError';
  }
}

/** The folder whose version holds a table's data: a landing table's validated copy, a job's table folder. */
export function storageKey(entry: CatalogTable): string {
  return normalizeKey(isLandingTable(entry.name) ? validatedPrefix(datasetOfLandingTable(entry.name)) : entry.location);
}

/** The catalogs of the current snapshot and of each run's kept snapshot, newest first (unreadable ones left out). */
function keptCatalogs(lake: Lake): Catalog[] {
  const current = lake.snapshotSync().catalog;
  const catalogs = [current];
  for (const generation of current.retainedSnapshots ?? []) {
    if (generation === current.generation) continue;
    const catalog = readSnapshotCatalog(lake, generation);
    if (catalog) catalogs.push(catalog);
  }
  return catalogs.sort((a, b) => (b.generation ?? 0) - (a.generation ?? 0));
}

function readSnapshotCatalog(lake: Lake, generation: number): Catalog | undefined {
  try {
    return JSON.parse(readFileSync(path.join(snapshotDir(lake.root, generation), SNAPSHOT_CATALOG), 'utf8')) as Catalog;
  } catch {
    return undefined;
  }
}

/**
 * The snapshots of a table the lake still holds, newest first: one per version committed (a run that
 * skipped the table's job made none). Undefined when no kept snapshot has the table.
 */
export function tableHistory(lake: Lake, table: TableName): TableSnapshot[] | undefined {
  const versions = new Map<string, TableSnapshot>();
  for (const [i, catalog] of keptCatalogs(lake).entries()) {
    const entry = catalog.tables[table];
    if (!entry) continue;
    const version = catalog.versions?.[storageKey(entry)]?.id ?? `${entry.runId} ${entry.updatedAt}`;
    // Catalogs come newest first: a version's oldest entry is the one of the run that made it (a later
    // run that kept it may have committed its entry again).
    const current = i === 0 || (versions.get(version)?.current ?? false);
    versions.set(version, { runId: entry.runId, committedAt: entry.updatedAt, rows: entry.rows, current });
  }
  return versions.size > 0 ? [...versions.values()] : undefined;
}

/** The runs the lake remembers, newest first, and how many of them it keeps a snapshot of. */
export function runsOf(lake: Lake): { runs: RunRecord[]; kept: Set<number> } {
  const catalog = lake.snapshotSync().catalog;
  return { runs: catalog.runs ?? [], kept: new Set([catalog.generation ?? 0, ...(catalog.retainedSnapshots ?? [])]) };
}

/**
 * The lake as run `runId` left it: the snapshot of its last commit, so each table is its newest version
 * committed at or before that run, and a table made later is absent. Throws RunNotKeptError naming the
 * run and what the lake keeps when it cannot.
 */
export function lakeAsOf(lake: Lake, runId: string): LakeSnapshot {
  const { runs, kept } = runsOf(lake);
  const run = runs.find((r) => r.runId === runId);
  const howToList = 'list the runs with `stedi tables --history TABLE`';
  if (!run) {
    const forgotten = runs.length > 0 ? ` (it remembers ${runs.length} runs, since ${runs.at(-1)!.runId})` : '';
    throw new RunNotKeptError(`no run ${runId} in the lake ${lake.root}${forgotten}: ${howToList}`);
  }
  const catalog = kept.has(run.generation) ? readSnapshotCatalog(lake, run.generation) : undefined;
  if (!catalog)
    throw new RunNotKeptError(
      `run ${runId} (${run.committedAt}) is older than the snapshots the lake ${lake.root} keeps: a lake keeps ` +
        `the snapshots of its newest ${lake.keepRuns} runs, older ones are removed; ${howToList}`,
    );
  return new LakeSnapshot(lake, catalog, false);
}

/** The catalog tables of a snapshot, in the usual order. */
export function tablesOf(snapshot: LakeSnapshot): TableName[] {
  return ALL_TABLES.filter((t) => snapshot.catalog.tables[t]);
}
