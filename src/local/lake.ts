import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DATASETS, Dataset, TableName, landingPrefix } from '../layout';
import { sqlIdentifier, sqlString } from './landing-sql';

export type HiveType = 'string' | 'bigint' | 'int' | 'double' | 'boolean' | 'date' | 'timestamp';

export interface CatalogColumn {
  name: string;
  type: HiveType | string;
}

/** One table of the local catalog: what `stedi query` (the local Athena) reads. */
export interface CatalogTable {
  name: TableName;
  /** Key prefix inside the lake, e.g. customer/trusted/. */
  location: string;
  format: 'json' | 'parquet';
  columns: CatalogColumn[];
  partitionKeys: string[];
  rows: number;
  /** Landing tables: lines rejected to <dataset>/quarantine/ by the last run. */
  rejected?: number;
  /**
   * The job parameters this version was built with, where its SQL uses them: the consent policy,
   * and for the salt only a fingerprint (saltFingerprint), which does not reveal it.
   */
  parameters?: Partial<Record<'pii_salt' | 'consent_policy', string>>;
  updatedAt: string;
  runId: string;
}

export interface Catalog {
  tables: Partial<Record<TableName, CatalogTable>>;
}

const CATALOG_FILE = '_catalog.json';
/** Where the local alert sink appends each pipeline alert as one JSON line. */
export const ALERTS_FILE = '_alerts.jsonl';

/**
 * A local folder laid out like the data bucket. Output folders are replaced atomically:
 * written beside the old one, then swapped in by rename, so a crash never leaves a half table.
 */
export class Lake {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  path(key: string): string {
    return path.join(this.root, key);
  }

  /** The landing files of a dataset (JSON lines, *.json), sorted by name. */
  async landingFiles(dataset: Dataset): Promise<string[]> {
    const dir = this.path(landingPrefix(dataset));
    if (!existsSync(dir)) return [];
    const names = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isFile() && e.name.endsWith('.json'))
      .map((e) => e.name)
      .sort();
    return names.map((name) => path.join(dir, name));
  }

  /** Copies a file into a dataset's landing zone under its own name, replacing one of that name (as S3 does). */
  async drop(file: string, dataset: Dataset): Promise<string> {
    const dir = this.path(landingPrefix(dataset));
    await mkdir(dir, { recursive: true });
    const target = path.join(dir, path.basename(file));
    const staging = path.join(dir, `.${path.basename(file)}.uploading`);
    await copyFile(file, staging);
    await rename(staging, target);
    return target;
  }

  /** Drops every DIR/<dataset>/*.json of a folder laid out like `stedi generate --out` writes. */
  async dropFolder(landingDir: string): Promise<{ counts: Record<Dataset, number>; keys: string[] }> {
    const counts = { customer: 0, accelerometer: 0, step_trainer: 0 };
    const keys: string[] = [];
    for (const dataset of DATASETS) {
      const dir = path.join(landingDir, dataset);
      if (!existsSync(dir)) continue;
      const names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
      for (const name of names) {
        const file = path.join(dir, name);
        if (!(await stat(file)).isFile()) continue;
        await this.drop(file, dataset);
        counts[dataset]++;
        keys.push(`${landingPrefix(dataset)}${name}`);
      }
    }
    return { counts, keys };
  }

  /** A fresh, empty folder beside `key` to write a new version of it into. */
  async stage(key: string, runId: string): Promise<string> {
    const { parent, base } = this.split(key);
    const staging = path.join(parent, `.${base}.staging-${runId}`);
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    return staging;
  }

  /** Swaps a staged folder in for `key`; the previous version stays readable until the last moment. */
  async commit(key: string, staging: string, runId: string): Promise<void> {
    const { parent, base } = this.split(key);
    const target = path.join(parent, base);
    const previous = path.join(parent, `.${base}.previous-${runId}`);
    const hadPrevious = existsSync(target);
    if (hadPrevious) await rename(target, previous);
    await rename(staging, target);
    if (hadPrevious) await rm(previous, { recursive: true, force: true });
  }

  /** Removes a staged folder that will not be committed. */
  async discard(staging: string): Promise<void> {
    await rm(staging, { recursive: true, force: true });
  }

  /**
   * Puts back a version a crash left between the two renames of commit(), and removes
   * leftovers of crashed runs, so the table at `key` is always the last complete one.
   */
  async recover(key: string): Promise<void> {
    const { parent, base } = this.split(key);
    if (!existsSync(parent)) return;
    const target = path.join(parent, base);
    const leftovers = (await readdir(parent)).filter((n) => n.startsWith(`.${base}.`)).sort();
    for (const name of leftovers) {
      const full = path.join(parent, name);
      if (name.startsWith(`.${base}.previous-`) && !existsSync(target)) await rename(full, target);
      else await rm(full, { recursive: true, force: true });
    }
  }

  async readCatalog(): Promise<Catalog> {
    const file = this.path(CATALOG_FILE);
    if (!existsSync(file)) return { tables: {} };
    return JSON.parse(await readFile(file, 'utf8')) as Catalog;
  }

  /** Records a table's new version in the catalog (written to a temporary file, then renamed). */
  async updateCatalog(table: CatalogTable): Promise<void> {
    const catalog = await this.readCatalog();
    catalog.tables[table.name] = table;
    await mkdir(this.root, { recursive: true });
    const file = this.path(CATALOG_FILE);
    await writeFile(`${file}.tmp`, `${JSON.stringify(catalog, null, 2)}\n`);
    await rename(`${file}.tmp`, file);
  }

  private split(key: string): { parent: string; base: string } {
    const full = this.path(key.replace(/\/+$/, ''));
    return { parent: path.dirname(full), base: path.basename(full) };
  }
}

const DUCKDB_TYPE: Record<string, string> = {
  string: 'VARCHAR',
  bigint: 'BIGINT',
  int: 'INTEGER',
  double: 'DOUBLE',
  date: 'DATE',
};

/** A SELECT over a catalog table's Parquet files, or an empty typed SELECT when it has none. */
export function parquetScanSql(lake: Lake, entry: CatalogTable): string {
  const dir = lake.path(entry.location);
  if (!hasParquet(dir)) {
    const columns = entry.columns.map((c) => `null::${DUCKDB_TYPE[c.type] ?? 'VARCHAR'} as ${sqlIdentifier(c.name)}`);
    return `select ${columns.join(', ')} where false`;
  }
  if (entry.partitionKeys.length === 0) return `select * from read_parquet(${sqlString(path.join(dir, '*.parquet'))})`;
  const hiveTypes = entry.partitionKeys.map((k) => `${sqlString(k)}: 'VARCHAR'`).join(', ');
  return `select * from read_parquet(${sqlString(path.join(dir, '**', '*.parquet'))}, hive_partitioning = true, hive_types = {${hiveTypes}})`;
}

function hasParquet(dir: string): boolean {
  if (!existsSync(dir)) return false;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.parquet')) return true;
    if (entry.isDirectory() && hasParquet(path.join(dir, entry.name))) return true;
  }
  return false;
}
