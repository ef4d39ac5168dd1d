import type { DuckDBConnection } from '@duckdb/node-api';
import { existsSync, linkSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Dataset, landingPrefix, quarantinePrefix, validatedPrefix } from '../definition/layout';
import type { LandingTableDefinition } from '../definition/ddl';
import { LakeDamagedError } from '../lake/lake';
import type { Lake, LakeSnapshot, LakeTransaction, SkippedFile } from '../lake/lake';
import { CheckedFile, SOURCE_FILE_COLUMN, checkLandingFiles, segmentName } from './landing';
import { quarantinePartName } from './landing-quarantine';
import { emptyRecordsSql } from './landing-sql';
import { literalPath, sqlIdentifier, sqlString } from '../sql/quote';
import { required } from '../required';
import {
  FileIdentity,
  LandingStat,
  confirmByContent,
  pinContent,
  sameIdentity,
  statLandingFiles,
} from '../lake/landing-identity';

export { identityOf, isRacy, sameIdentity, statLandingFiles } from '../lake/landing-identity';
export type { FileIdentity, LandingStat } from '../lake/landing-identity';

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
 *   into the new version (both keys are versioned, versions.ts), never read; an entry recorded racy is
 *   reused only while its file has the SHA-256 it recorded (landing-identity.ts).
 *
 * Records are kept in immutable segments, one Parquet file per batch of files checked together, so a
 * cold run writes a few large files (a file per landing file cost a third more at 100x). A segment's name
 * is never reused: the copy's segments are the landing table's (segments.ts), and a table built from
 * some of them gains exactly the rows of those added since. A segment never holds a record of a file
 * that is gone or changed: one that would is rewritten, from its Parquet, without them, under a new
 * name, at the cost of about one batch (64 MB of landing JSON). Anyone can read the folder's Parquet as
 * the table.
 *
 * A change of the landing DDL, of the checking rules (the SQL they generate) or of DuckDB makes a new
 * rules version, and every file is checked again. The salt and consent policy play no part: the copy
 * holds landing data only.
 */

export const VALIDATED_MANIFEST = '_manifest.json';

export interface ValidatedEntry {
  identity: FileIdentity;
  /** Recorded so soon after the file's last change that a change in the same clock tick could follow unseen. */
  racy?: true;
  /** A racy entry: the SHA-256 of the bytes checked, which the file must still have for the entry to be reused. */
  sha256?: string;
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
 * Compares the landing files with the committed manifest. Under the same rules, an entry is reused when
 * its file is there with the same identity, or, for an entry recorded racy, with the content it
 * recorded (its SHA-256, which the caller put in `LandingStat.sha256`: confirmByContent).
 */
export function planSync(landing: LandingStat[], committed: ValidatedManifest | undefined, rules: string): SyncPlan {
  const entries = committed && committed.rules === rules ? committed.files : {};
  const plan: SyncPlan = { reuse: [], check: [], removed: [], dirtySegments: new Set() };
  const present = new Set(landing.map((f) => f.name));
  for (const file of landing) {
    const entry = entries[file.name];
    if (entry && stillHolds(entry, file)) plan.reuse.push(file.name);
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

function stillHolds(entry: ValidatedEntry, file: LandingStat): boolean {
  if (entry.racy) return entry.sha256 !== undefined && file.sha256 === entry.sha256;
  return sameIdentity(entry.identity, file.identity);
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
  const committed = options.recheck ? undefined : committedCopy(snapshot, dataset);
  const { found, skipped } = await statLandingFiles(options.lake, dataset);
  const landing = confirmByContent(found, racyEntries(committed?.manifest, rules));
  const plan = planSync(landing, committed?.manifest, rules);
  const recorded = new Map(landing.map((file) => [file.name, file]));
  const reusedAsRecorded = plan.reuse.every((name) =>
    sameEntry(required(committed?.manifest.files[name], `the entry of ${name}`), recorded.get(name)),
  );
  if (committed?.manifest.rules === rules && plan.check.length === 0 && plan.removed.length === 0 && reusedAsRecorded)
    return { ...copyOf(committed.manifest, committed.dir, plan, false), skipped };
  const dir = transaction.stage(validatedPrefix(dataset));
  const quarantine = transaction.stage(quarantinePrefix(dataset));
  const manifest: ValidatedManifest = { rules, files: {}, segments: {} };
  if (committed) {
    const previousQuarantine = snapshot.dirOf(quarantinePrefix(dataset));
    reuseEntries(committed, plan, manifest, dir, quarantine, previousQuarantine);
    await rewriteDirtySegments(connection, dataset, committed, plan, manifest, dir);
    for (const name of plan.reuse)
      manifest.files[name] = asFoundNow(required(manifest.files[name], `the entry of ${name}`), recorded.get(name));
  }
  // A racy file is checked from a copy of its bytes, whose SHA-256 its entry records.
  const toCheck = plan.check.map((file) =>
    file.racy ? pinContent(file, options.scratch) : { ...file, checkedPath: file.path },
  );
  const checked = await checkLandingFiles(
    connection,
    options.definition,
    toCheck.map((file) => ({
      path: file.checkedPath,
      key: `${landingPrefix(dataset)}${file.name}`,
    })),
    { segments: dir, quarantine, scratch: options.scratch },
    { batchBytes: options.batchBytes },
  );
  addChecked(manifest, toCheck, checked);
  writeFileSync(path.join(dir, VALIDATED_MANIFEST), `${JSON.stringify(manifest)}\n`);
  return { ...copyOf(manifest, dir, plan, true), skipped };
}

/** Names of the committed entries recorded racy (under the same rules): their files' content is hashed. */
function racyEntries(manifest: ValidatedManifest | undefined, rules: string): Set<string> {
  if (!manifest || manifest.rules !== rules) return new Set();
  return new Set(Object.entries(manifest.files).flatMap(([name, entry]) => (entry.racy ? [name] : [])));
}

/**
 * A reused entry as the file is found now: its identity now, and racy (with the SHA-256 it was confirmed
 * by) only while the file is still within a clock tick of its last change.
 */
function asFoundNow(entry: ValidatedEntry, file: LandingStat | undefined): ValidatedEntry {
  const { racy: _racy, sha256: _sha256, ...rest } = entry;
  if (!file) return entry;
  const sha256 = file.sha256 ?? entry.sha256;
  return { ...rest, identity: file.identity, ...(file.racy && sha256 ? { racy: true as const, sha256 } : {}) };
}

function sameEntry(entry: ValidatedEntry, file: LandingStat | undefined): boolean {
  const now = asFoundNow(entry, file);
  return sameIdentity(now.identity, entry.identity) && now.racy === entry.racy && now.sha256 === entry.sha256;
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
  const { found, skipped } = await statLandingFiles(options.lake, dataset);
  const landing = confirmByContent(found, racyEntries(committed?.manifest, rules));
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
    plan.check.map((file) => ({ path: file.path, key: `${landingPrefix(dataset)}${file.name}` })),
    { segments: scratch, quarantine: scratch, scratch },
    { batchBytes: options.batchBytes },
  );
  addChecked(manifest, plan.check, checked);
  for (const segment of new Set(checked.flatMap((c) => (c.segment ? [c.segment] : []))))
    scans.push({ file: path.join(scratch, segment), exclude: [] });
  return { ...totals(manifest), scans, manifest, ...counts(plan), staged: false, skipped };
}

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
      ...(file.racy && file.sha256 ? { racy: true as const, sha256: file.sha256 } : {}),
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

export { quarantinePartName };
export { rulesVersion } from './rules-version';
