import { createHash, randomBytes } from 'node:crypto';
import {
  Stats,
  accessSync,
  closeSync,
  openSync,
  readSync,
  constants,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { DATASETS, Dataset, TableName, landingPrefix, quarantinePrefix } from '../layout';
import type { ConsentPolicy } from '../pipeline';
import { literalPath, sqlIdentifier, sqlString } from '../sql/quote';
import { duckdbType } from '../sql/types';
import { required } from '../required';
import {
  CATALOG_LINK,
  CURRENT_LINK,
  FileRecord,
  KeyVersion,
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

export interface CatalogColumn {
  name: string;
  /** A catalog (Hive) type, or DuckDB's name of a type the catalog has no name for (lowercased). */
  type: string;
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
  /** Landing tables: landing files in the validated copy (<dataset>/validated/). */
  files?: number;
  /**
   * What the table holds, independent of row order: equal ids, equal rows (a landing table's from its
   * validated copy, a job's table from a fingerprint of its rows). Job build keys are made of them.
   */
  content?: string;
  /** A job's table: the build key it was made with (engine.ts); the job is skipped while it is unchanged. */
  buildKey?: string;
  /** A job's table: the part of its build key that is the job's own (engine, SQL, parameters). */
  base?: string;
  /** A job's table: the content of each input it was built from. */
  inputs?: Record<string, string>;
  /**
   * This version only added rows to the one whose content was `from`: the files holding them (relative to
   * the table's folder; a landing table's: segments of its validated copy), and how many rows they hold. A
   * job row-wise in this table, built from `from`, then runs over those rows alone (engine.ts).
   */
  appended?: { from: string; files: string[]; rows: number };
  /**
   * The job parameters this version was built with, where its SQL uses them: the consent policy,
   * and for the salt only a fingerprint (saltFingerprint), which does not reveal it.
   */
  parameters?: Partial<Record<'pii_salt' | 'consent_policy', string>>;
  /** The diagnostics of the job that wrote the table (its `-- Diagnostics:` header), by name. */
  diagnostics?: Record<string, number>;
  updatedAt: string;
  runId: string;
  /**
   * Derived tables: what the data checks' table_builds reads of this build (on AWS the jobs write it to
   * checks/table_builds/): the rows of the version it replaced (null when none) and the run's consent policy.
   */
  build?: { rowsBefore: number | null; consentPolicy: string; emptyInputs?: string[] };
}

export interface Catalog {
  tables: Partial<Record<TableName, CatalogTable>>;
  /**
   * The lake's consent policy, recorded by the first run that builds its tables (as a table records its
   * salt's fingerprint): every later run uses it unless told to change it (stedi run --change-consent).
   */
  consentPolicy?: ConsentPolicy;
  /** How many commits the lake has seen (versions.ts). */
  generation?: number;
  /** The committed version folder of each key: table folders and quarantine folders (versions.ts). */
  versions?: Record<string, KeyVersion>;
}

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

  constructor(root: string) {
    this.root = path.resolve(root);
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

/** A `*.json` entry of a folder that is not read as a file, and why. */
export interface SkippedFile {
  file: string;
  reason: string;
}

export interface JsonFiles {
  /** Full paths, sorted by name. */
  files: string[];
  skipped: SkippedFile[];
}

/**
 * The `*.json` files of a folder (none when it does not exist), sorted by name. A symbolic link to a file
 * is read as that file: S3 has no links, so locally one can only be a user's way to land a big file
 * without copying it, and following it loses nothing: the landing zone is only read, the file's identity
 * (validated.ts) is its target's, so a changed target is checked again, and `stedi run --landing` already
 * copies a linked file's content. An entry that cannot be read as a file (a link to nothing, to a folder,
 * a link loop, a folder named *.json) is returned in `skipped` with the reason, to be reported: never
 * passed over silently.
 */
export function jsonFilesIn(dir: string): JsonFiles {
  const listing: JsonFiles = { files: [], skipped: [] };
  if (!existsSync(dir)) return listing;
  const entries = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.name.endsWith('.json'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const file = path.join(dir, entry.name);
    if (entry.isFile()) listing.files.push(file);
    else if (entry.isSymbolicLink()) {
      const problem = linkProblem(file);
      if (problem) listing.skipped.push({ file, reason: problem });
      else listing.files.push(file);
    } else if (entry.isDirectory()) listing.skipped.push({ file, reason: 'a folder, not a file' });
    else listing.skipped.push({ file, reason: 'not a regular file' });
  }
  return listing;
}

/** Why a symbolic link cannot be read as a file, or undefined when it leads to one. */
function linkProblem(link: string): string | undefined {
  let target = '?';
  try {
    target = readlinkSync(link);
    return statSync(link).isFile() ? undefined : `a symbolic link to ${target}, which is not a file`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `a symbolic link to ${target}, which does not exist`;
    if (code === 'ELOOP') return `a symbolic link to ${target}, which leads round in a loop`;
    return `a symbolic link to ${target}, which cannot be read: ${(error as Error).message}`;
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
    publish(this.lake.root, catalog, this.lake.inFlight);
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

/**
 * A committed file of the lake is damaged (unreadable, cut short, not what was committed). The message
 * names it and says how to repair it.
 */
export class LakeDamagedError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(
      `${file} is damaged (${reason}): run \`stedi doctor\` to see what is damaged, \`stedi doctor --repair\` to rebuild it from landing`,
    );
    this.name = 'LakeDamagedError';
  }
}

/** The DuckDB messages that mean a file it read is not a whole Parquet (or JSON) file. */
const DAMAGE_SIGNS =
  /magic bytes|corrupt|invalid parquet|too small to be a parquet|no such file|not a parquet|out of range|Invalid Input Error: File/i;

/**
 * An error of a read of the lake's committed files, with the damaged file named and the repair said,
 * when its message names a file under the lake's _versions/ and sounds like damage; otherwise the error.
 */
export function explainDamage(lake: Lake, error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof LakeDamagedError) return error;
  const root = `${lake.root}${path.sep}${VERSIONS_DIR}${path.sep}`;
  const at = error.message.indexOf(root);
  if (at < 0 || !DAMAGE_SIGNS.test(error.message)) return error;
  const file = /^[^'"\s]+/.exec(error.message.slice(at))?.[0] ?? root;
  return new LakeDamagedError(file, error.message.split('\n')[0] ?? error.message);
}

/** Size and SHA-256 of each file under a version folder; one hard-linked from the previous version keeps its record. */
export function recordFiles(
  dir: string,
  previous?: { dir: string; files: Record<string, FileRecord> },
): Record<string, FileRecord> {
  const records: Record<string, FileRecord> = {};
  for (const relative of filesUnder(dir)) {
    const file = path.join(dir, relative);
    const stats = statSync(file);
    const before = previous?.files[relative];
    if (before && sameFile(stats, path.join(previous.dir, relative))) {
      // The same file as in the version before: never recorded anew, so damage is not carried in as sound.
      if (before.size !== stats.size)
        throw new LakeDamagedError(
          path.join(previous.dir, relative),
          `${stats.size} bytes, ${before.size} when committed`,
        );
      records[relative] = before;
      continue;
    }
    records[relative] = { size: stats.size, sha256: sha256Of(file) };
  }
  return records;
}

function sameFile(stats: Stats, other: string): boolean {
  try {
    const o = statSync(other);
    return o.ino === stats.ino && o.dev === stats.dev;
  } catch {
    return false;
  }
}

export function sha256Of(file: string): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0;) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Every file under a folder, as paths relative to it, sorted. */
export function filesUnder(dir: string, relative = ''): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(path.join(dir, relative), { withFileTypes: true })) {
    const child = path.join(relative, entry.name);
    if (entry.isDirectory()) found.push(...filesUnder(dir, child));
    else found.push(child);
  }
  return found.sort();
}

/** The table could not be read: its data is missing or does not match the catalog. Never read as empty. */
export class TableUnreadableError extends Error {
  constructor(
    readonly table: TableName,
    readonly reason: string,
  ) {
    super(`table ${table} cannot be read: ${reason}; rebuild it by running the pipeline from the job that writes it`);
    this.name = 'TableUnreadableError';
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

/**
 * A SELECT over a catalog table's committed Parquet files (listed, not globbed). A table whose version
 * folder is missing, or holds no Parquet file although the catalog counts rows, throws
 * TableUnreadableError: a missing table is never read as an empty one.
 */
export function parquetScanSql(snapshot: LakeSnapshot, entry: CatalogTable): string {
  const dir = snapshot.dirOf(entry.location);
  if (!dir || !isDirectory(dir))
    throw new TableUnreadableError(entry.name, `its data folder for ${entry.location} is missing`);
  const files = parquetFiles(dir);
  if (files.length === 0) {
    if (entry.rows !== 0)
      throw new TableUnreadableError(
        entry.name,
        `the catalog counts ${entry.rows} rows but ${dir} holds no Parquet file`,
      );
    return emptyTableSql(entry.columns);
  }
  return parquetFilesScanSql(files, entry.partitionKeys)!;
}

/** A SELECT of no rows with a table's columns, typed. */
export function emptyTableSql(columns: CatalogColumn[]): string {
  return `select ${columns.map((c) => `null::${duckdbType(c.type)} as ${sqlIdentifier(c.name)}`).join(', ')} where false`;
}

/** A SELECT over Parquet files of a table (hive-partitioned by its partition keys); undefined for none. */
export function parquetFilesScanSql(files: string[], partitionKeys: string[]): string | undefined {
  if (files.length === 0) return undefined;
  const list = `[${files.map((f) => sqlString(literalPath(f))).join(', ')}]`;
  if (partitionKeys.length === 0) return `select * from read_parquet(${list})`;
  const hiveTypes = partitionKeys.map((k) => `${sqlString(k)}: 'VARCHAR'`).join(', ');
  return `select * from read_parquet(${list}, hive_partitioning = true, hive_types = {${hiveTypes}})`;
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** Every *.parquet file under a folder, sorted. */
export function parquetFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isFile() && entry.name.endsWith('.parquet')) files.push(full);
    else if (entry.isDirectory()) files.push(...parquetFiles(full));
  }
  return files.sort();
}
