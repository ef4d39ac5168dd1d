import { randomBytes } from 'node:crypto';
import {
  accessSync,
  constants,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { DATASETS, Dataset, landingPrefix, quarantinePrefix } from '../definition/layout';
import { required } from '../required';
import type { Catalog, CatalogTable } from './catalog';
import { JsonFiles, SkippedFile, jsonFilesIn } from './landing-listing';
import { LakeDamagedError, recordFiles } from './lake-files';
import {
  CATALOG_LINK,
  CURRENT_LINK,
  VERSIONS_DIR,
  normalizeKey,
  publish,
  readCommitted,
  recoverVersions,
  removeTree,
  stage,
  versionDir,
  withVersion,
} from './versions';
import { DEFAULT_KEEP_RUNS } from './run-log';

// The lake's parts, each in its module by concern, are also reachable from here.
export type { Catalog, CatalogColumn, CatalogTable } from './catalog';
export { jsonFilesIn } from './landing-listing';
export type { JsonFiles, SkippedFile } from './landing-listing';
export { LakeDamagedError, explainDamage, filesUnder, recordFiles, sha256Of } from './lake-files';
export { TableUnreadableError, emptyTableSql, parquetFiles, parquetFilesScanSql, parquetScanSql } from './table-scan';

const CATALOG_FILE = CATALOG_LINK;
/** Where the local alert sink appends each pipeline alert as one JSON line. */
export const ALERTS_FILE = '_alerts.jsonl';

/** The lake folder cannot be used: it is a file, or cannot be written. The message names the cause. */
export class LakeAccessError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LakeAccessError';
  }
}

/**
 * A local folder laid out like the data bucket. Landing files are plain files at their keys; every
 * folder a job writes (a table, a quarantine) is an immutable version swapped in atomically with the
 * catalog (versions.ts), so a reader sees the old or the new version of each, never none.
 */
export class Lake {
  readonly root: string;
  /** Versions (`<key>/<id>`) staged by this process's open transactions: no commit collects them. */
  readonly inFlight = new Set<string>();

  /** How many runs' snapshots the lake keeps for `stedi query --as-of` (run-log.ts). */
  readonly keepRuns: number;
  /**
   * The wall clock, in ms since the epoch, that a run compares landing files' change times with (a file
   * changed less than a clock tick before is racy: landing-identity.ts). Tests inject one that runs ahead
   * instead of waiting for the file system's clock to move on.
   */
  readonly clock: () => number;

  constructor(root: string, options: { keepRuns?: number; clock?: () => number } = {}) {
    this.root = path.resolve(root);
    this.keepRuns = options.keepRuns ?? DEFAULT_KEEP_RUNS;
    this.clock = options.clock ?? (() => Date.now());
  }

  path(key: string): string {
    return path.join(this.root, key);
  }

  /**
   * Throws LakeAccessError naming the cause when the lake is not a folder (or, with `write`, cannot be
   * made or written), before a command gets as far as an error about some file deep inside it.
   */
  checkAccess({ write }: { write: boolean }): void {
    const why = (error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EROFS') return 'it is on a read-only file system';
      if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
      if (code === 'ENOTDIR') return 'a folder above it is a file';
      return (error as Error).message;
    };
    let stats;
    try {
      stats = statSync(this.root);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !write)
        throw new LakeAccessError(`the lake ${this.root} cannot be used: ${why(error)}`);
      try {
        mkdirSync(this.root, { recursive: true });
        return;
      } catch (error) {
        throw new LakeAccessError(`the lake ${this.root} cannot be created: ${why(error)}`);
      }
    }
    if (!stats.isDirectory()) throw new LakeAccessError(`the lake ${this.root} is a file, not a folder`);
    if (!write) return;
    try {
      accessSync(this.root, constants.W_OK);
    } catch (error) {
      throw new LakeAccessError(`the lake ${this.root} cannot be written: ${why(error)}`);
    }
  }

  /** The landing files of a dataset (JSON lines, *.json), sorted by name; see jsonFilesIn. */
  async landingFiles(dataset: Dataset): Promise<string[]> {
    return (await this.landingListing(dataset)).files;
  }

  /** The landing files of a dataset, and the `*.json` entries that cannot be read as one, with why. */
  landingListing(dataset: Dataset): Promise<JsonFiles> {
    return Promise.resolve(jsonFilesIn(this.path(landingPrefix(dataset))));
  }

  /**
   * Copies a file into a dataset's landing zone under its own name, replacing one of that name (as S3
   * does): copied aside (a hidden `.NAME.uploading`, which no reader lists), then renamed into place, so
   * the name never shows part of a file. Synchronous, on the main thread, as the lake's other file
   * changes (see LakeLock).
   */
  drop(file: string, dataset: Dataset): Promise<string> {
    const dir = this.path(landingPrefix(dataset));
    mkdirSync(dir, { recursive: true });
    const target = path.join(dir, path.basename(file));
    const staging = path.join(dir, `.${path.basename(file)}.uploading`);
    copyFileSync(file, staging);
    renameSync(staging, target);
    return Promise.resolve(target);
  }

  /**
   * Drops every DIR/<dataset>/*.json of a folder laid out like `stedi generate --out` writes (a symbolic
   * link to a file drops the file's content, as an upload would); `skipped` names the entries that could
   * not be dropped, and why.
   */
  async dropFolder(
    landingDir: string,
  ): Promise<{ counts: Record<Dataset, number>; keys: string[]; skipped: SkippedFile[] }> {
    const counts = { customer: 0, accelerometer: 0, step_trainer: 0 };
    const keys: string[] = [];
    const skipped: SkippedFile[] = [];
    for (const dataset of DATASETS) {
      const listing = jsonFilesIn(path.join(landingDir, dataset));
      skipped.push(...listing.skipped);
      for (const file of listing.files) {
        await this.drop(file, dataset);
        counts[dataset]++;
        keys.push(`${landingPrefix(dataset)}${path.basename(file)}`);
      }
    }
    return { counts, keys, skipped };
  }

  /**
   * Starts a transaction that replaces some keys (table folders such as `customer/trusted/`) and catalog
   * entries at once: each key is written into a fresh version folder (stage), and commit() swaps all of
   * them in with the catalog in one atomic step (see versions.ts). Puts right what a crash left first.
   */
  begin(runId: string): LakeTransaction {
    this.recover();
    return new LakeTransaction(this, runId);
  }

  /** The committed state, read once: a reader that keeps it sees one consistent version of every table. */
  snapshot(): Promise<LakeSnapshot> {
    return Promise.resolve(this.snapshotSync());
  }

  snapshotSync(): LakeSnapshot {
    let committed: Catalog | undefined;
    try {
      committed = readCommitted<Catalog>(this.root);
    } catch (error) {
      throw new LakeDamagedError(
        this.path(CATALOG_FILE),
        `its committed catalog cannot be read: ${(error as Error).message.split('\n')[0]}`,
      );
    }
    if (committed) return new LakeSnapshot(this, committed, false);
    const file = this.path(CATALOG_FILE);
    if (!existsSync(file)) return new LakeSnapshot(this, { tables: {} }, false);
    // A lake written before versioned keys: tables live at their keys (migrated by the next writer).
    return new LakeSnapshot(this, JSON.parse(readFileSync(file, 'utf8')) as Catalog, true);
  }

  readCatalog(): Promise<Catalog> {
    return Promise.resolve(this.snapshotSync().catalog);
  }

  /** Removes what a crash left (uncommitted versions, old snapshots) and migrates a lake of the old layout. */
  recover(): void {
    if (!existsSync(this.root)) return;
    if (!existsSync(this.path(CURRENT_LINK))) this.migrateLegacyLayout();
    recoverVersions(this.root, this.inFlight);
  }

  /**
   * A lake of the old layout kept each table in a plain folder at its key (swapped by two renames) and
   * `_catalog.json` as a plain file. Each such folder becomes the first version of its key, then one
   * commit publishes them. A crash part-way leaves the folders already moved under _versions/, where a
   * second attempt finds them; until the commit a reader finds those tables missing and says so.
   */
  private migrateLegacyLayout(): void {
    const file = this.path(CATALOG_FILE);
    if (!existsSync(file) || lstatSync(file).isSymbolicLink()) return;
    let catalog = JSON.parse(readFileSync(file, 'utf8')) as Catalog;
    const keys = [
      ...Object.values(catalog.tables).flatMap((t) => (t && t.format === 'parquet' ? [t.location] : [])),
      ...DATASETS.map(quarantinePrefix),
    ];
    for (const key of keys) {
      const { parent, base } = this.split(key);
      const target = path.join(parent, base);
      const versions = path.join(this.root, VERSIONS_DIR, normalizeKey(key));
      const leftovers = existsSync(parent) ? readdirSync(parent).filter((n) => n.startsWith(`.${base}.`)) : [];
      // The old swap could crash between its two renames, leaving the previous version aside.
      const aside = leftovers.find((n) => n.startsWith(`.${base}.previous-`));
      const source = existsSync(target) ? target : aside ? path.join(parent, aside) : undefined;
      if (source && !lstatSync(source).isSymbolicLink()) {
        mkdirSync(versions, { recursive: true });
        renameSync(source, path.join(versions, `v-migrated-${randomBytes(4).toString('hex')}`));
      }
      for (const name of leftovers) if (existsSync(path.join(parent, name))) removeTree(path.join(parent, name));
      const moved = existsSync(versions) ? readdirSync(versions).find((n) => n.startsWith('v-migrated-')) : undefined;
      if (moved) catalog = withVersion(catalog, key, moved);
    }
    publish(this.root, catalog, this.inFlight);
  }

  private split(key: string): { parent: string; base: string } {
    const full = this.path(key.replace(/\/+$/, ''));
    return { parent: path.dirname(full), base: path.basename(full) };
  }
}

/** A set of keys and catalog entries replaced together by one atomic commit (see Lake.begin). */
export class LakeTransaction {
  private readonly staged = new Map<string, { id: string; dir: string }>();
  private done = false;

  constructor(
    readonly lake: Lake,
    readonly runId: string,
  ) {}

  /**
   * A fresh, empty folder to write the new version of `key` into; invisible until commit(). Staging a
   * key again (a job run again in one execution) drops the version staged before.
   */
  stage(key: string): string {
    const k = normalizeKey(key);
    this.unstage(k);
    const version = stage(this.lake.root, k, this.runId);
    this.staged.set(k, version);
    this.lake.inFlight.add(path.join(k, version.id));
    return version.dir;
  }

  /** Drops what is staged for `key` (nothing when nothing is). */
  unstage(key: string): void {
    const k = normalizeKey(key);
    const staged = this.staged.get(k);
    if (!staged) return;
    this.staged.delete(k);
    this.lake.inFlight.delete(path.join(k, staged.id));
    removeTree(staged.dir);
  }

  /** The committed catalog with this transaction's staged keys and the given entries in it. */
  overlay(catalog: Catalog, tables: Iterable<CatalogTable>, fields: Partial<Catalog> = {}): Catalog {
    let next = catalog;
    for (const [key, { id }] of this.staged) next = withVersion(next, key, id);
    next = { ...next, ...fields, tables: { ...next.tables } };
    for (const table of tables) next.tables[table.name] = table;
    return next;
  }

  /** The committed lake with this transaction's staged keys and the given entries in it: what an open run reads. */
  async view(tables: Iterable<CatalogTable>): Promise<LakeSnapshot> {
    const committed = await this.lake.snapshot();
    return new LakeSnapshot(this.lake, this.overlay(committed.catalog, tables), committed.legacy);
  }

  /**
   * Swaps every staged key in and records the given catalog entries (and fields), all in one atomic step.
   * Each staged version's files are recorded with their size and SHA-256 (KeyVersion.files).
   */
  commit(tables: CatalogTable[], fields: Partial<Catalog> = {}): void {
    if (this.done) throw new Error('transaction already ended');
    const committed = this.lake.snapshotSync().catalog;
    const catalog = this.overlay(committed, tables, fields);
    const versions = { ...catalog.versions };
    for (const [key, { dir }] of this.staged) {
      const was = committed.versions?.[key];
      const previous = was?.files ? { dir: versionDir(this.lake.root, key, was.id), files: was.files } : undefined;
      versions[key] = { ...required(versions[key], `the version of ${key}`), files: recordFiles(dir, previous) };
    }
    catalog.versions = versions;
    this.release();
    publish(this.lake.root, catalog, this.lake.inFlight, { runId: this.runId, keepRuns: this.lake.keepRuns });
    this.done = true;
  }

  /** Removes the staged folders: nothing of this transaction becomes visible. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    for (const { dir } of this.staged.values()) removeTree(dir);
    this.release();
  }

  private release(): void {
    for (const [key, { id }] of this.staged) this.lake.inFlight.delete(path.join(key, id));
  }
}

/** One committed state of the lake: its catalog and where each key's version is. */
export class LakeSnapshot {
  constructor(
    readonly lake: Lake,
    readonly catalog: Catalog,
    /** The lake predates versioned keys: tables are read at their keys. */
    readonly legacy: boolean,
  ) {}

  /** The folder holding `key`'s committed version, or undefined when none was ever committed. */
  dirOf(key: string): string | undefined {
    const version = this.catalog.versions?.[normalizeKey(key)];
    if (version) return versionDir(this.lake.root, key, version.id);
    return this.legacy ? this.lake.path(key) : undefined;
  }
}
