import type { DuckDBConnection } from '@duckdb/node-api';
import { existsSync } from 'node:fs';
import {
  Dataset,
  LandingTableName,
  TABLE_PREFIX,
  datasetOfLandingTable,
  isLandingTable,
  landingPrefix,
} from '../definition/layout';
import type { JobDefinition } from '../definition/pipeline';
import { required } from '../required';
import type { LandingTableDefinition } from '../definition/ddl';
import type { CatalogTable } from '../lake/catalog';
import { LandingFolderMissingError } from './job-run';
import type { Lake, SkippedFile } from '../lake/lake';
import { ValidatedCopy, landingContentId, refreshValidatedCopy } from './validated';

/* The landing tables a job reads: their validated copies brought in line with landing, and their catalog entries. */

/** Landing files of a dataset a job's run checked, reused untouched, and dropped (gone from landing). */
export interface LandingFileCounts {
  checked: number;
  reused: number;
  removed: number;
}

export interface LandingSettings {
  definitions: Record<LandingTableName, LandingTableDefinition>;
  /** The rules version of each landing table (rulesVersion). */
  rules: ReadonlyMap<string, string>;
  batchBytes?: number;
  /** Check every landing file again (stedi run --rebuild). */
  recheck?: boolean;
}

/** Throws LandingFolderMissingError when the landing folder of a table the lake has read is gone. */
export function checkLandingFolder(lake: Lake, table: LandingTableName, entry: CatalogTable | undefined): void {
  const dataset = datasetOfLandingTable(table);
  const folder = lake.path(landingPrefix(dataset));
  if (entry && !existsSync(folder)) throw new LandingFolderMissingError(dataset, folder);
}

/**
 * Brings the validated copy of each landing table the job reads in line with landing, and commits the
 * new versions (with the landing tables' catalog entries) on their own: checked files stay checked
 * whatever happens to the job.
 */
export async function refreshLandingTables(
  connection: DuckDBConnection,
  lake: Lake,
  job: JobDefinition,
  runId: string,
  scratch: string,
  settings: LandingSettings,
): Promise<Map<LandingTableName, ValidatedCopy>> {
  const copies = new Map<LandingTableName, ValidatedCopy>();
  const tables = job.reads.filter(isLandingTable);
  if (tables.length === 0) return copies;
  const committed = await lake.snapshot();
  for (const table of tables) checkLandingFolder(lake, table, committed.catalog.tables[table]);
  const transaction = lake.begin(runId);
  try {
    const snapshot = await lake.snapshot();
    for (const table of tables) {
      const copy = await refreshValidatedCopy(connection, transaction, {
        lake,
        snapshot,
        dataset: datasetOfLandingTable(table),
        definition: settings.definitions[table],
        rules: required(settings.rules.get(table), `the rules version of ${table}`),
        scratch,
        batchBytes: settings.batchBytes,
        recheck: settings.recheck,
      });
      copies.set(table, copy);
    }
    const staged = [...copies].filter(([, copy]) => copy.staged);
    const entry = ([table, copy]: [LandingTableName, ValidatedCopy]) =>
      landingCatalogEntry(table, settings.definitions[table], copy, runId);
    if (staged.length > 0) transaction.commit(staged.map(entry));
    else transaction.abort();
    return copies;
  } catch (error) {
    transaction.abort();
    throw error;
  }
}

function landingCatalogEntry(
  table: LandingTableName,
  definition: LandingTableDefinition,
  copy: ValidatedCopy,
  runId: string,
): CatalogTable {
  return {
    name: table,
    location: TABLE_PREFIX[table],
    format: 'json',
    columns: definition.columns.map((c) => ({ name: c.name, type: c.type })),
    partitionKeys: [],
    rows: copy.records,
    rejected: copy.rejected,
    files: Object.keys(copy.manifest.files).length,
    content: landingContentId(copy),
    updatedAt: new Date().toISOString(),
    runId,
  };
}

/** The checked/reused/removed counts, quarantined lines and skipped entries of the landing tables a job read. */
export function landingCounts(landing: Map<LandingTableName, ValidatedCopy>): {
  quarantined: Partial<Record<Dataset, number>>;
  landingFiles: Partial<Record<Dataset, LandingFileCounts>>;
  skippedLandingFiles: SkippedFile[];
} {
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
