import { DuckDBInstance } from '@duckdb/node-api';
import { existsSync, lstatSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import {
  DATASETS,
  DERIVED_TABLES,
  LANDING_TABLES,
  TABLE_PREFIX,
  datasetOfLandingTable,
  quarantinePrefix,
  validatedPrefix,
} from '../definition/layout';
import { literalPath, sqlString } from '../sql/quote';
import { Catalog, Lake, LakeDamagedError, filesUnder, parquetFiles, sha256Of } from '../lake/lake';
import { VALIDATED_MANIFEST } from './validated';
import { CATALOG_LINK, CURRENT_LINK, SNAPSHOTS_DIR, VERSIONS_DIR, removeTree, versionDir } from '../lake/versions';

/** One damaged thing `stedi doctor` found: the file (or folder), and what is wrong with it. */
export interface Damage {
  file: string;
  problem: string;
}

export interface Examination {
  /** Everything found damaged; none: the lake is whole. */
  damaged: Damage[];
  /** The catalog itself cannot be read: nothing else could be examined. */
  catalogDamaged: boolean;
  /** Committed files checked against their size and SHA-256. */
  filesChecked: number;
  /** Keys whose version was committed before files were recorded: their files could not be checked. */
  unrecorded: string[];
  /** Tables whose rows were counted in their data, with the count and the catalog's. */
  counted: { table: string; rows: number; recorded: number }[];
}

/**
 * Examines every committed file of a lake against what was recorded when it was committed: the catalog
 * parses, every version folder is there, every file has the size and SHA-256 recorded at its commit
 * (and no file was added), every validated manifest parses, and every table's rows in its data equal
 * the count its catalog entry records. Reads only.
 */
export async function examineLake(lake: Lake): Promise<Examination> {
  const found: Examination = { damaged: [], catalogDamaged: false, filesChecked: 0, unrecorded: [], counted: [] };
  let catalog: Catalog;
  try {
    catalog = lake.snapshotSync().catalog;
  } catch (error) {
    if (!(error instanceof LakeDamagedError)) throw error;
    found.catalogDamaged = true;
    found.damaged.push({ file: error.file, problem: 'the catalog cannot be read' });
    return found;
  }
  const damage = (file: string, problem: string) => found.damaged.push({ file, problem });
  for (const [key, version] of Object.entries(catalog.versions ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    const dir = versionDir(lake.root, key, version.id);
    if (!isFolder(dir)) {
      damage(dir, `the committed version of ${key} is missing`);
      continue;
    }
    if (!version.files) {
      found.unrecorded.push(key);
      continue;
    }
    for (const [relative, record] of Object.entries(version.files)) {
      const file = path.join(dir, relative);
      found.filesChecked++;
      let size: number;
      try {
        size = statSync(file).size;
      } catch {
        damage(file, 'missing');
        continue;
      }
      if (size !== record.size) damage(file, `${size} bytes, ${record.size} when committed`);
      else if (sha256Of(file) !== record.sha256)
        damage(file, 'its content is not what was committed (SHA-256 differs)');
    }
    for (const relative of filesUnder(dir))
      if (!(relative in version.files)) damage(path.join(dir, relative), 'not part of the committed version');
  }
  for (const dataset of DATASETS) {
    const dir = catalog.versions?.[validatedPrefix(dataset).replace(/\/$/, '')];
    if (!dir) continue;
    const manifest = path.join(versionDir(lake.root, validatedPrefix(dataset), dir.id), VALIDATED_MANIFEST);
    if (!existsSync(manifest)) continue;
    try {
      JSON.parse(readFileSync(manifest, 'utf8'));
    } catch (error) {
      damage(manifest, `not a manifest: ${(error as Error).message}`);
    }
  }
  await countRows(lake, catalog, found, damage);
  return found;
}

/** Counts each table's rows in its data (Parquet metadata) and compares them with its catalog entry. */
async function countRows(
  lake: Lake,
  catalog: Catalog,
  found: Examination,
  damage: (file: string, problem: string) => void,
): Promise<void> {
  const db = await DuckDBInstance.create(':memory:', { threads: '1' });
  const connection = await db.connect();
  try {
    for (const [name, entry] of Object.entries(catalog.tables)) {
      if (!entry) continue;
      const landing = (LANDING_TABLES as readonly string[]).includes(name);
      const key = landing ? validatedPrefix(datasetOfLandingTable(name as never)) : entry.location;
      const version = catalog.versions?.[key.replace(/\/$/, '')];
      if (!version) continue;
      const dir = versionDir(lake.root, key, version.id);
      if (!isFolder(dir)) continue; // reported above
      const files = parquetFiles(dir);
      let rows = 0;
      let readable = true;
      for (const file of files) {
        try {
          const result = await connection.runAndReadAll(
            `select count(*)::double from read_parquet(${sqlString(literalPath(file))})`,
          );
          rows += Number(result.getRows()[0]?.[0]);
        } catch (error) {
          readable = false;
          if (!found.damaged.some((d) => d.file === file))
            damage(file, `cannot be read as Parquet: ${(error as Error).message.split('\n')[0]}`);
        }
      }
      if (!readable) continue;
      found.counted.push({ table: name, rows, recorded: entry.rows });
      if (rows !== entry.rows) damage(dir, `${name} holds ${rows} rows, its catalog entry records ${entry.rows}`);
    }
  } finally {
    connection.closeSync();
    db.closeSync();
  }
}

function isFolder(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/**
 * For a lake whose catalog cannot be read: removes everything the runs made (the catalog, snapshots,
 * versions and the visible links of the versioned keys), never landing, so that a run rebuilds the lake
 * from landing. The lock, lock table, executions and alerts stay.
 */
export function clearCommittedState(lake: Lake): void {
  for (const name of [CURRENT_LINK, `${CURRENT_LINK}.next`, CATALOG_LINK, `${CATALOG_LINK}.next`])
    removeTree(lake.path(name));
  removeTree(lake.path(SNAPSHOTS_DIR));
  removeTree(lake.path(VERSIONS_DIR));
  const keys = [
    ...DATASETS.flatMap((d) => [validatedPrefix(d), quarantinePrefix(d)]),
    ...DERIVED_TABLES.map((t) => TABLE_PREFIX[t]),
  ];
  for (const key of keys) {
    const link = lake.path(key.replace(/\/$/, ''));
    try {
      if (lstatSync(link).isSymbolicLink()) unlinkSync(link);
    } catch {
      // not there
    }
  }
}
