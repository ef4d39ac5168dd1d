import { linkSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import {
  LandingTableName,
  TableName,
  datasetOfLandingTable,
  isLandingTable,
  validatedPrefix,
} from '../definition/layout';
import type { JobDefinition } from '../definition/pipeline';
import type { LandingTableDefinition } from '../definition/ddl';
import type { BuiltFrom, CatalogTable } from '../lake/catalog';
import type { LakeSnapshot } from '../lake/lake';
import { emptyTableSql, parquetFiles, parquetFilesScanSql } from '../lake/table-scan';
import { ValidatedCopy, segmentsScanSql } from './validated';

/**
 * Incremental bookkeeping: every table is made of immutable segments, files written once under a name
 * never used again. A landing table's are its validated copy's Parquet segments (validated.ts); a job's
 * table's are its Parquet part files, each named with its build's random token, and an append
 * hard-links the files of the version before under their names. So a segment named in two versions of a
 * table holds the same rows in both, and a table's rows are the union of its segments' rows.
 *
 * Each job's table records the segments of every input it was built from (CatalogTable.builtFrom), beside
 * their contents (CatalogTable.inputs). When the job's SQL and parameters are those it was built with,
 * every input but one holds the same rows, and that one is an input the job is row-wise in (`-- Row-wise
 * in:`) whose segments now include the recorded ones, the table is brought up to date by running the job
 * over the rows of the added segments alone. However many versions of the input came between (runs that
 * failed before the job, runs that confirmed racy entries), the added rows are the difference of two
 * sets; a segment dropped or rewritten breaks the inclusion, and the job builds whole.
 */

/** Past this many files in a table's folder, a job builds it whole rather than add more. */
export const MAX_APPENDED_FILES = 1000;

/**
 * The segments a table is made of in a snapshot: a landing table's validated copy (as `landing` holds
 * it after the refresh, else as committed), or the Parquet files of a job's table, relative to its
 * folder. Undefined when the table has no data here.
 */
export function segmentsOf(
  snapshot: LakeSnapshot,
  table: TableName,
  landing: ReadonlyMap<LandingTableName, ValidatedCopy>,
): string[] | undefined {
  if (isLandingTable(table)) {
    const copy = landing.get(table);
    return copy ? Object.keys(copy.manifest.segments).sort() : undefined;
  }
  const entry = snapshot.catalog.tables[table];
  const dir = entry && snapshot.dirOf(entry.location);
  if (!dir) return undefined;
  try {
    return parquetFiles(dir).map((file) => path.relative(dir, file));
  } catch {
    return undefined; // its folder is gone: the job that reads it names the table
  }
}

/** The segments of each input a job reads now; undefined when one is not known. */
export function builtFromOf(
  job: JobDefinition,
  snapshot: LakeSnapshot,
  landing: ReadonlyMap<LandingTableName, ValidatedCopy>,
): BuiltFrom | undefined {
  const builtFrom: BuiltFrom = {};
  for (const table of job.reads) {
    const segments = segmentsOf(snapshot, table, landing);
    if (!segments) return undefined;
    builtFrom[table] = segments;
  }
  return builtFrom;
}

export function sameBuiltFrom(a: BuiltFrom | undefined, b: BuiltFrom | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

export interface AppendPlan {
  /** The input that gained segments, and a SELECT of their rows alone. */
  table: TableName;
  delta: string;
  /** The table's committed version: its folder, and its catalog entry. */
  previous: string;
  target: CatalogTable;
}

/**
 * When the job's table can be brought up to date by adding rows (see above): the input that gained
 * segments and a SELECT of their rows. Every other input holds the rows the table was built from (its
 * content as recorded, CatalogTable.inputs), in whatever segments; the one that changed holds every
 * segment recorded and more. `now`: each input's content and segments now; `sameBase`: the job's SQL,
 * engine and parameters are those the table was built with.
 */
export function appendPlan(
  job: JobDefinition,
  snapshot: LakeSnapshot,
  now: { contents?: Record<string, string>; segments?: BuiltFrom },
  sameBase: boolean,
  landingTables: Record<LandingTableName, LandingTableDefinition>,
): AppendPlan | undefined {
  const target = snapshot.catalog.tables[job.target];
  const previous = snapshot.dirOf(job.location);
  const recorded = target?.builtFrom;
  if (!target?.inputs || !recorded || !now.contents || !now.segments || !sameBase || !previous) return undefined;
  const changed = job.reads.filter((table) => now.contents?.[table] !== target.inputs?.[table]);
  const [table] = changed;
  if (changed.length !== 1 || !table || !job.rowWise.includes(table)) return undefined;
  const was = new Set(recorded[table] ?? []);
  const is = new Set(now.segments[table] ?? []);
  if (!recorded[table] || [...was].some((segment) => !is.has(segment))) return undefined; // one dropped
  const added = [...is].filter((segment) => !was.has(segment));
  if (added.length === 0) return undefined;
  if (countFiles(previous) >= MAX_APPENDED_FILES) return undefined; // a full build gathers them again
  if (isLandingTable(table)) {
    const dir = snapshot.dirOf(validatedPrefix(datasetOfLandingTable(table)));
    if (!dir) return undefined;
    return { table, delta: segmentsScanSql(landingTables[table], dir, added), previous, target };
  }
  const input = snapshot.catalog.tables[table];
  const dir = input && snapshot.dirOf(input.location);
  if (!input || !dir) return undefined;
  const files = added.map((f) => path.join(dir, f));
  return {
    table,
    delta: parquetFilesScanSql(files, input.partitionKeys) ?? emptyTableSql(input.columns),
    previous,
    target,
  };
}

/** Hard-links every file of a folder tree into another (the folders made anew): a version to build on. */
export function linkTree(from: string, to: string): void {
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
export function filesNamed(dir: string, prefix: string, relative = ''): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(path.join(dir, relative), { withFileTypes: true })) {
    const child = path.join(relative, entry.name);
    if (entry.isDirectory()) found.push(...filesNamed(dir, prefix, child));
    else if (entry.name.startsWith(prefix)) found.push(child);
  }
  return found.sort();
}
