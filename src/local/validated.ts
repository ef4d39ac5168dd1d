import type { DuckDBConnection } from '@duckdb/node-api';
import { createHash } from 'node:crypto';
import { BigIntStats, existsSync, linkSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Dataset, landingPrefix, quarantinePrefix, validatedPrefix } from '../layout';
import type { LandingTableDefinition } from '../sql/ddl';
import { EPOCH_MS_RANGE, MAX_LINE_BYTES } from '../sql/landing-rules';
import { LakeDamagedError } from './lake';
import type { Lake, LakeSnapshot, LakeTransaction, SkippedFile } from './lake';
import { CheckedFile, SOURCE_FILE_COLUMN, checkLandingFiles, quarantinePartName, segmentName } from './landing';
import { emptyRecordsSql, parseLandingSql, recordsPassSql } from './landing-sql';
import { literalPath, sqlIdentifier, sqlString } from '../sql/quote';
import { required } from '../required';

/**
 * The validated copy of a dataset's landing zone: each landing file's valid records, checked once and
 * typed as the landing DDL says, in Parquet under `<dataset>/validated/`, and its rejected lines as its
 * part of `<dataset>/quarantine/`. A manifest (`_manifest.json`) names, per landing file, the identity of
 * the file it was made from, where its records and rejected lines are, and the version of the checking
 * rules; a run first brings the copy in line with landing:
 *
 * - a file that is new, or whose identity changed, is checked (landing.ts);
 * - the entries of a file that is gone are dropped;
 * - every other entry is reused untouched: its records' segment and its quarantine part are hard-linked
 *   into the new version (both keys are versioned, versions.ts), never read; but an entry recorded racy
 *   is reused only when its file, checked again, gives the same (confirmRacyEntries).
 *
 * Records are kept in segments, one Parquet file per batch of files checked together, so a cold run
 * writes a few large files (a file per landing file cost a third more at 100x). A segment never holds a
 * record of a file that is gone or changed: a segment that would is rewritten, from its Parquet, without
 * them, at the cost of about one batch (64 MB of landing JSON). Anyone can read the folder's Parquet as
 * the table.
 *
 * A change of the landing DDL, of the checking rules (the SQL they generate) or of DuckDB makes a new
 * rules version, and every file is checked again. The salt and consent policy play no part: the copy
 * holds landing data only.
 */

export const VALIDATED_MANIFEST = '_manifest.json';

/**
 * What identifies the content of a landing file locally without reading it: size, modification and
 * change times in nanoseconds, inode and device. A file replaced by a rename (as `stedi drop` does) has a
 * new inode; one rewritten in place a new mtime and ctime, unless within the same tick of the file
 * system's clock as the recorded ones: such an entry is recorded as racy, and its file checked again
 * (isRacy, confirmRacyEntries).
 */
export interface FileIdentity {
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  dev: string;
}

export interface ValidatedEntry {
  identity: FileIdentity;
  /** Recorded so soon after the file's last change that a change in the same clock tick could follow unseen. */
  racy?: true;
  records: number;
  /** Order-independent fingerprint of the file's valid records (landing.ts). */
  fingerprint: string;
  rejected: number;
  segment?: string;
  quarantine?: string;
}

export interface ValidatedManifest {
  /** The rules version the entries were checked with (rulesVersion). */
  rules: string;
  /** By landing file name (under `<dataset>/landing/`). */
  files: Record<string, ValidatedEntry>;
  /** Rows of each segment. */
  segments: Record<string, number>;
}

/** A landing file as found now. */
export interface LandingStat {
  name: string;
  path: string;
  identity: FileIdentity;
  racy: boolean;
}

/**
 * The landing files of a dataset with their identities, taken before any is read (a symbolic link's are
 * its target's), and the entries that cannot be read as files (jsonFilesIn), keyed as S3 would key them.
 */
export async function statLandingFiles(
  lake: Lake,
  dataset: Dataset,
): Promise<{ found: LandingStat[]; skipped: SkippedFile[] }> {
  const now = BigInt(Date.now()) * 1_000_000n;
  const found: LandingStat[] = [];
  const listing = await lake.landingListing(dataset);
  const skipped = listing.skipped.map((s) => ({ ...s, file: `${landingPrefix(dataset)}${path.basename(s.file)}` }));
  for (const file of listing.files) {
    let stats: BigIntStats;
    try {
      stats = statSync(file, { bigint: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed since it was listed
      throw error;
    }
    const identity = identityOf(stats);
    found.push({ name: path.basename(file), path: file, identity, racy: isRacy(identity, now) });
  }
  return { found, skipped };
}

export function identityOf(stats: BigIntStats): FileIdentity {
  return {
    size: String(stats.size),
    mtimeNs: String(stats.mtimeNs),
    ctimeNs: String(stats.ctimeNs),
    ino: String(stats.ino),
    dev: String(stats.dev),
  };
}

export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino && a.dev === b.dev;
}

/**
 * A file system stamps times from a clock that advances in ticks (a few milliseconds on Linux; whole
 * seconds on some): a file rewritten in place in the same tick as its recorded change, with the same
 * size, keeps its identity. Like git's "racily clean" entries, an identity taken less than a tick after
 * the file's last change (mtime or ctime) cannot vouch for its content: the entry is checked again next
 * time. The tick is taken to be 100 ms, or 2 s when both times have no fraction of a second.
 */
export function isRacy(identity: FileIdentity, statTimeNs: bigint): boolean {
  const mtime = BigInt(identity.mtimeNs);
  const ctime = BigInt(identity.ctimeNs);
  const second = 1_000_000_000n;
  const tick = mtime % second === 0n && ctime % second === 0n ? 2n * second : 100_000_000n;
  const latest = mtime > ctime ? mtime : ctime;
  return latest > statTimeNs - tick;
}

/** What bringing the copy in line with landing takes. */
export interface SyncPlan {
  /** Names of the files whose entries are reused. */
  reuse: string[];
  /** Files to check. */
  check: LandingStat[];
  /** Names of the entries of files that are gone. */
  removed: string[];
  /** Committed segments holding a record of an entry not reused (a file gone, changed or checked with other rules). */
  dirtySegments: Set<string>;
}

/**
 * Compares the landing files with the committed manifest. An entry is reused when its file is there with
 * the same identity, it was not racy, and the rules are the same.
 */
export function planSync(landing: LandingStat[], committed: ValidatedManifest | undefined, rules: string): SyncPlan {
  const entries = committed && committed.rules === rules ? committed.files : {};
  const plan: SyncPlan = { reuse: [], check: [], removed: [], dirtySegments: new Set() };
  const present = new Set(landing.map((f) => f.name));
  for (const file of landing) {
    const entry = entries[file.name];
    if (entry && !entry.racy && sameIdentity(entry.identity, file.identity)) plan.reuse.push(file.name);
    else plan.check.push(file);
  }
  const reused = new Set(plan.reuse);
  for (const [name, entry] of Object.entries(committed?.files ?? {})) {
    if (reused.has(name)) continue;
    if (!present.has(name)) plan.removed.push(name);
    if (entry.segment) plan.dirtySegments.add(entry.segment);
  }
  return plan;
}

/** The validated copy as a landing table reads it. */
export interface ValidatedCopy {
  manifest: ValidatedManifest;
  /** Parquet files of the records, each with the landing keys whose records to leave out (read-only copies only). */
  scans: { file: string; exclude: string[] }[];
  records: number;
  rejected: number;
  /** Landing files checked, entries reused untouched, entries dropped because their file is gone. */
  checked: number;
  reused: number;
  removed: number;
  /** A new version was staged (commit it with the transaction). */
  staged: boolean;
  /**
   * When the new version only adds files to the committed one (none changed, none gone, the same rules):
   * the segments holding the added files' records, which hold nothing else.
   */
  appended?: string[];
  /** Landing entries named *.json that could not be read as files (by key), and why: to be reported. */
  skipped: SkippedFile[];
}

export interface ValidatedOptions {
  lake: Lake;
  snapshot: LakeSnapshot;
  dataset: Dataset;
  definition: LandingTableDefinition;
  /** rulesVersion(definition, DuckDB's version). */
  rules: string;
  scratch: string;
  batchBytes?: number;
  /** Check every file again, reusing nothing. */
  recheck?: boolean;
}

/** The committed manifest of a dataset's validated copy and the folder it is in; undefined when there is none. */
export function committedCopy(
  snapshot: LakeSnapshot,
  dataset: Dataset,
): { manifest: ValidatedManifest; dir: string } | undefined {
  const dir = snapshot.dirOf(validatedPrefix(dataset));
  const file = dir && path.join(dir, VALIDATED_MANIFEST);
  if (!file || !existsSync(file)) return undefined;
  try {
    return { manifest: JSON.parse(readFileSync(file, 'utf8')) as ValidatedManifest, dir };
  } catch (error) {
    throw new LakeDamagedError(file, `not a manifest: ${(error as Error).message.split('\n')[0]}`);
  }
}

/**
 * Brings the validated copy in line with landing in a new version of `<dataset>/validated/` and
 * `<dataset>/quarantine/`, staged in the transaction; nothing is staged when nothing changed.
 */
export async function refreshValidatedCopy(
  connection: DuckDBConnection,
  transaction: LakeTransaction,
  options: ValidatedOptions,
): Promise<ValidatedCopy> {
  const { snapshot, dataset, rules } = options;
  const last = options.recheck ? undefined : committedCopy(snapshot, dataset);
  const { found: landing, skipped } = await statLandingFiles(options.lake, dataset);
  const confirmed = last ? await confirmRacyEntries(connection, options, last, landing) : new Set<string>();
  // Confirmed entries plan as entries that were never racy; the new manifest records each as it is now.
  const committed = last && {
    ...last,
    manifest: { ...last.manifest, files: withoutRacyFlag(last.manifest.files, confirmed) },
  };
  const plan = planSync(landing, committed?.manifest, rules);
  if (
    committed &&
    committed.manifest.rules === rules &&
    plan.check.length === 0 &&
    plan.removed.length === 0 &&
    confirmed.size === 0
  )
    return { ...copyOf(committed.manifest, committed.dir, plan, false), skipped };
  const dir = transaction.stage(validatedPrefix(dataset));
  const quarantine = transaction.stage(quarantinePrefix(dataset));
  const manifest: ValidatedManifest = { rules, files: {}, segments: {} };
  if (committed) {
    const previousQuarantine = snapshot.dirOf(quarantinePrefix(dataset));
    reuseEntries(committed, plan, manifest, dir, quarantine, previousQuarantine);
    await rewriteDirtySegments(connection, dataset, committed, plan, manifest, dir);
  }
  const checked = await checkLandingFiles(
    connection,
    options.definition,
    plan.check.map(toLandingFile(dataset)),
    {
      segments: dir,
      quarantine,
      scratch: options.scratch,
    },
    { batchBytes: options.batchBytes },
  );
  addChecked(manifest, plan.check, checked);
  for (const file of landing)
    if (confirmed.has(file.name)) {
      const entry = required(manifest.files[file.name], `the manifest entry of ${file.name}`);
      manifest.files[file.name] = { ...entry, ...(file.racy ? { racy: true as const } : {}) };
    }
  writeFileSync(path.join(dir, VALIDATED_MANIFEST), `${JSON.stringify(manifest)}\n`);
  const appendOnly =
    committed?.manifest.rules === rules &&
    plan.removed.length === 0 &&
    plan.dirtySegments.size === 0 &&
    plan.check.every((file) => !(file.name in committed.manifest.files));
  const appended = [...new Set(checked.flatMap((c) => (c.segment ? [c.segment] : [])))];
  return { ...copyOf(manifest, dir, plan, true), skipped, ...(appendOnly ? { appended } : {}) };
}

/**
 * An entry recorded as racy cannot vouch for its file, which may have changed since in the same clock
 * tick. Its file is checked again, into scratch: when that check gives what the entry records (the same
 * valid records by count and fingerprint, the same rejected lines), the entry stands with its segment, so
 * a run that came right after a write does not turn the next drop into a rebuild of every table on that
 * dataset. Returns the names of the entries confirmed; the others are checked as changed files.
 */
async function confirmRacyEntries(
  connection: DuckDBConnection,
  options: ValidatedOptions,
  committed: { manifest: ValidatedManifest; dir: string },
  landing: LandingStat[],
): Promise<Set<string>> {
  const confirmed = new Set<string>();
  if (committed.manifest.rules !== options.rules) return confirmed;
  const racy = landing.filter((file) => {
    const entry = committed.manifest.files[file.name];
    return entry?.racy && sameIdentity(entry.identity, file.identity);
  });
  if (racy.length === 0) return confirmed;
  const scratch = mkdtempSync(path.join(options.scratch, 'confirm-'));
  const checked = await checkLandingFiles(
    connection,
    options.definition,
    racy.map(toLandingFile(options.dataset)),
    { segments: scratch, quarantine: scratch, scratch },
    { batchBytes: options.batchBytes },
  );
  const quarantine = options.snapshot.dirOf(quarantinePrefix(options.dataset));
  racy.forEach((file, i) => {
    const entry = required(committed.manifest.files[file.name], `the manifest entry of ${file.name}`);
    const again = required(checked[i], `the check result of ${file.name}`);
    const sameRecords =
      again.records === entry.records && again.fingerprint === entry.fingerprint && again.rejected === entry.rejected;
    const sameRejected =
      !again.quarantine ||
      (entry.quarantine !== undefined &&
        quarantine !== undefined &&
        readFileSync(path.join(scratch, again.quarantine)).equals(
          readFileSync(path.join(quarantine, entry.quarantine)),
        ));
    if (sameRecords && sameRejected) confirmed.add(file.name);
  });
  return confirmed;
}

function withoutRacyFlag(files: Record<string, ValidatedEntry>, names: Set<string>): Record<string, ValidatedEntry> {
  return Object.fromEntries(
    Object.entries(files).map(([name, entry]) => {
      if (!names.has(name)) return [name, entry];
      const { racy: _racy, ...rest } = entry;
      return [name, rest];
    }),
  );
}

/**
 * The validated copy as it would be after a refresh, for a reader that must not write the lake (stedi
 * query): committed segments are read as they are, leaving out the records of dropped entries, and the
 * files to check are checked into the scratch folder.
 */
export async function readValidatedCopy(
  connection: DuckDBConnection,
  options: ValidatedOptions,
): Promise<ValidatedCopy> {
  const { snapshot, dataset, rules, scratch } = options;
  const committed = committedCopy(snapshot, dataset);
  const { found: landing, skipped } = await statLandingFiles(options.lake, dataset);
  const plan = planSync(landing, committed?.manifest, rules);
  const manifest: ValidatedManifest = { rules, files: {}, segments: {} };
  const scans: ValidatedCopy['scans'] = [];
  if (committed) {
    const dropped = new Set([...Object.keys(committed.manifest.files)].filter((n) => !plan.reuse.includes(n)));
    for (const name of plan.reuse)
      manifest.files[name] = required(committed.manifest.files[name], `the manifest entry of ${name}`);
    for (const segment of Object.keys(committed.manifest.segments)) {
      const exclude = [...dropped]
        .filter((n) => committed.manifest.files[n]?.segment === segment)
        .map((n) => `${landingPrefix(dataset)}${n}`);
      if (plan.reuse.some((n) => committed.manifest.files[n]?.segment === segment))
        scans.push({ file: path.join(committed.dir, segment), exclude });
    }
  }
  const checked = await checkLandingFiles(
    connection,
    options.definition,
    plan.check.map(toLandingFile(dataset)),
    {
      segments: scratch,
      quarantine: scratch,
      scratch,
    },
    { batchBytes: options.batchBytes },
  );
  addChecked(manifest, plan.check, checked);
  for (const segment of new Set(checked.flatMap((c) => (c.segment ? [c.segment] : []))))
    scans.push({ file: path.join(scratch, segment), exclude: [] });
  return { ...totals(manifest), scans, manifest, ...counts(plan), staged: false, skipped };
}

const toLandingFile =
  (dataset: Dataset) =>
  (file: LandingStat): { path: string; key: string } => ({
    path: file.path,
    key: `${landingPrefix(dataset)}${file.name}`,
  });

/** Hard-links the reused entries' quarantine parts and their segments that stay as they are. */
function reuseEntries(
  committed: { manifest: ValidatedManifest; dir: string },
  plan: SyncPlan,
  manifest: ValidatedManifest,
  dir: string,
  quarantine: string,
  previousQuarantine: string | undefined,
): void {
  for (const name of plan.reuse) {
    const entry = required(committed.manifest.files[name], `the manifest entry of ${name}`);
    manifest.files[name] = entry;
    if (entry.quarantine) {
      if (!previousQuarantine) throw new Error(`the quarantine part of ${name} is missing: no committed quarantine`);
      linkSync(path.join(previousQuarantine, entry.quarantine), path.join(quarantine, entry.quarantine));
    }
    if (entry.segment && !plan.dirtySegments.has(entry.segment) && !(entry.segment in manifest.segments)) {
      linkSync(path.join(committed.dir, entry.segment), path.join(dir, entry.segment));
      manifest.segments[entry.segment] = required(
        committed.manifest.segments[entry.segment],
        `the row count of segment ${entry.segment}`,
      );
    }
  }
}

/**
 * A committed segment holding records of dropped entries is rewritten with the records of its reused
 * entries only (read from its Parquet, never from landing), under a new name; one left with none goes.
 */
async function rewriteDirtySegments(
  connection: DuckDBConnection,
  dataset: Dataset,
  committed: { manifest: ValidatedManifest; dir: string },
  plan: SyncPlan,
  manifest: ValidatedManifest,
  dir: string,
): Promise<void> {
  for (const segment of plan.dirtySegments) {
    const kept = plan.reuse.filter((n) => committed.manifest.files[n]?.segment === segment);
    if (kept.length === 0) continue;
    const target = segmentName();
    const keys = kept.map((n) => sqlString(`${landingPrefix(dataset)}${n}`)).join(', ');
    const result = await connection.runAndReadAll(
      `copy (select * from read_parquet(${sqlString(path.join(committed.dir, segment))})
             where ${SOURCE_FILE_COLUMN} in (${keys}))
       to ${sqlString(path.join(dir, target))} (format parquet, compression lz4)`,
    );
    manifest.segments[target] = Number(result.getRows()[0]?.[0] ?? 0);
    for (const name of kept)
      manifest.files[name] = { ...required(manifest.files[name], `the manifest entry of ${name}`), segment: target };
  }
}

function addChecked(manifest: ValidatedManifest, files: LandingStat[], checked: CheckedFile[]): void {
  files.forEach((file, i) => {
    const result = required(checked[i], `the check result of ${file.name}`);
    manifest.files[file.name] = {
      identity: file.identity,
      ...(file.racy ? { racy: true as const } : {}),
      records: result.records,
      fingerprint: result.fingerprint,
      rejected: result.rejected,
      ...(result.segment ? { segment: result.segment } : {}),
      ...(result.quarantine ? { quarantine: result.quarantine } : {}),
    };
    if (result.segment) manifest.segments[result.segment] = (manifest.segments[result.segment] ?? 0) + result.records;
  });
}

function copyOf(
  manifest: ValidatedManifest,
  dir: string,
  plan: SyncPlan,
  staged: boolean,
): Omit<ValidatedCopy, 'skipped'> {
  const scans = Object.keys(manifest.segments).map((segment) => ({ file: path.join(dir, segment), exclude: [] }));
  return { manifest, scans, ...totals(manifest), ...counts(plan), staged };
}

function totals(manifest: ValidatedManifest): { records: number; rejected: number } {
  const entries = Object.values(manifest.files);
  return {
    records: entries.reduce((n, e) => n + e.records, 0),
    rejected: entries.reduce((n, e) => n + e.rejected, 0),
  };
}

function counts(plan: SyncPlan): { checked: number; reused: number; removed: number } {
  return { checked: plan.check.length, reused: plan.reuse.length, removed: plan.removed.length };
}

/** A SELECT of the records (the DDL columns) of some segments of a dataset's committed validated copy. */
export function segmentsScanSql(definition: LandingTableDefinition, dir: string, segments: string[]): string {
  return validatedScanSql(definition, {
    scans: segments.map((segment) => ({ file: path.join(dir, segment), exclude: [] })),
  });
}

/** A SELECT of a landing table's records (its DDL columns) from a validated copy. */
export function validatedScanSql(definition: LandingTableDefinition, copy: Pick<ValidatedCopy, 'scans'>): string {
  const columns = definition.columns.map((c) => sqlIdentifier(c.name)).join(', ');
  const whole = copy.scans.filter((s) => s.exclude.length === 0).map((s) => s.file);
  const parts = whole.length > 0 ? [`select ${columns} from read_parquet(${fileList(whole)})`] : [];
  for (const scan of copy.scans.filter((s) => s.exclude.length > 0))
    parts.push(
      `select ${columns} from read_parquet(${fileList([scan.file])})
       where ${SOURCE_FILE_COLUMN} not in (${scan.exclude.map(sqlString).join(', ')})`,
    );
  if (parts.length === 0) return `select ${columns} from (${emptyRecordsSql(definition)})`;
  return parts.join('\nunion all\n');
}

const fileList = (files: string[]): string => `[${files.map((f) => sqlString(literalPath(f))).join(', ')}]`;

/**
 * The content of a landing table as its readers see it, independent of order and file names: the rules,
 * the record count and the sum of the records' fingerprints. Equal when the records are equal.
 */
export function landingContentId(copy: ValidatedCopy): string {
  const sum = Object.values(copy.manifest.files).reduce((n, e) => n + BigInt(e.fingerprint), 0n);
  return `${copy.manifest.rules}:${copy.records}:${sum}`;
}

/**
 * Bumped when the checking code outside the generated SQL changes (line counting, blanking, UTF-8, the
 * segment layout): every validated copy is then made again.
 */
const RULES_REVISION = 2; // 2: a line that is not UTF-8 is quarantined as base64 (line_encoding)

/**
 * The version of the checking rules for a landing table: a hash of its DDL, the SQL the checks generate
 * from it (which holds the landing rules' numbers), the longest line, DuckDB's version and RULES_REVISION.
 */
export function rulesVersion(definition: LandingTableDefinition, duckdbVersion: string): string {
  const file = { path: '<file>', key: '<key>' };
  const inputs = {
    revision: RULES_REVISION,
    duckdb: duckdbVersion,
    table: { name: definition.name, columns: definition.columns },
    epochMs: EPOCH_MS_RANGE,
    maxLineBytes: MAX_LINE_BYTES,
    sql: [
      recordsPassSql(definition, [file], 'strict'),
      recordsPassSql(definition, [file], 'lenient'),
      parseLandingSql(definition, [file]),
    ],
  };
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
}

export { quarantinePartName };
