import type { DuckDBConnection } from '@duckdb/node-api';
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { existsSync, symlinkSync, unlinkSync } from 'node:fs';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LandingTableDefinition } from '../definition/ddl';
import { MAX_LINE_BYTES } from '../sql/landing-rules';
import { parseLandingSql, recordsPassSql, requiresLineByLine } from './landing-sql';
import { sqlIdentifier, sqlString } from '../sql/quote';
import { Rejection, blankLines, measureLines, writeQuarantineParts } from './landing-quarantine';

/**
 * Checking landing files: each file's valid records, typed as the landing DDL says, go to a Parquet
 * "segment" (one per batch of files checked together), and its rejected lines to a quarantine part of
 * its own. Every file is parsed once when all its lines are good, which is the usual case: one strict
 * pass reads the JSON, checks every record, casts it and writes the segment. Only a batch where that pass
 * fails is taken apart: a lenient pass finds its clean files, and only the files with a bad line are
 * parsed line by line, which names each rejected line's file, number and reason.
 *
 * DuckDB's readers take a path as a pattern (`*`, `?`, `[`) and cannot match a backslash in one, while a
 * landing file's name is whatever its uploader chose: each file is read through an alias with a plain
 * name, a symbolic link in the scratch folder.
 */

/** A landing file to check: where to read it, and its key in the lake (named in segments and quarantine). */
export interface LandingFile {
  path: string;
  key: string;
}

/** What checking one landing file gave. */
export interface CheckedFile {
  key: string;
  /** Valid records, in `segment`. */
  records: number;
  /** Order-independent fingerprint of its valid records (see recordStatsSql). */
  fingerprint: string;
  /** Rejected lines, in `quarantine`. */
  rejected: number;
  /** The segment (a file name in the segments folder) holding its valid records; none when it has none. */
  segment?: string;
  /** The part (a file name in the quarantine folder) holding its rejected lines; none when it has none. */
  quarantine?: string;
}

export interface CheckTargets {
  /** Where the segments go. */
  segments: string;
  /** Where the quarantine parts go. */
  quarantine: string;
  /** Where aliases and intermediate files go; removed by the caller. */
  scratch: string;
}

export interface CheckOptions {
  /** Bytes of landing files checked per batch, one segment each (see BATCH_BYTES); tests make it small. */
  batchBytes?: number;
}

/**
 * Landing files checked per batch, at most about this many bytes: one segment each, so a file replaced
 * later costs the rewrite of about this much (validated.ts), and read_text holds a batch's dirty files in
 * memory at once when they are parsed line by line (one query over the 1 GB of 100x accelerometer files
 * peaked near 2 GB; in batches of this size it stays near 1 GB).
 */
const BATCH_BYTES = 64 * 1024 * 1024;

/** The columns a segment holds: the landing key of each record's file, then the DDL's columns. */
export const SOURCE_FILE_COLUMN = 'source_file';

/** A new segment's file name, unique among a dataset's segments. */
export function segmentName(): string {
  return `part-${randomBytes(8).toString('hex')}.parquet`;
}

/** Checks the files, batch by batch, into segments and quarantine parts; one result per file, in order. */
export async function checkLandingFiles(
  connection: DuckDBConnection,
  definition: LandingTableDefinition,
  files: LandingFile[],
  targets: CheckTargets,
  { batchBytes = BATCH_BYTES }: CheckOptions = {},
): Promise<CheckedFile[]> {
  const checked: CheckedFile[] = [];
  for (const batch of await batchesBySize(files, batchBytes))
    checked.push(...(await checkBatch(connection, definition, batch, targets)));
  return checked;
}

/** The files in order, cut into runs of about `budget` bytes (a larger file is a batch of its own). */
export async function batchesBySize<T extends { path: string }>(files: T[], budget: number): Promise<T[][]> {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const file of files) {
    const size = (await stat(file.path)).size;
    if (current.length > 0 && bytes + size > budget) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(file);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

async function checkBatch(
  connection: DuckDBConnection,
  definition: LandingTableDefinition,
  batch: LandingFile[],
  targets: CheckTargets,
): Promise<CheckedFile[]> {
  const aliasDir = await mkdtemp(path.join(targets.scratch, 'landing-'));
  const files = batch.map((file, i) => {
    const alias = path.join(aliasDir, `${i}.json`);
    symlinkSync(file.path, alias);
    return { path: alias, key: file.key };
  });
  const segment = segmentName();
  const segmentPath = path.join(targets.segments, segment);
  const written =
    (await strictPass(connection, definition, files, segmentPath)) ??
    (await lenientPass(connection, definition, files, segmentPath, targets, aliasDir));
  const stats = written.rows > 0 ? await recordStats(connection, definition, segmentPath) : new Map<string, Stats>();
  if (written.rows === 0 && existsSync(segmentPath)) unlinkSync(segmentPath);
  return files.map(({ key }) => {
    const { records, fingerprint } = stats.get(key) ?? { records: 0, fingerprint: '0' };
    const part = written.quarantine.get(key);
    return {
      key,
      records,
      fingerprint,
      rejected: part?.rejected ?? 0,
      ...(records > 0 ? { segment } : {}),
      ...(part ? { quarantine: part.name } : {}),
    };
  });
}

interface Written {
  rows: number;
  quarantine: Map<string, { name: string; rejected: number }>;
}

/**
 * The usual case in one pass: every record of every file valid, written to the segment. Undefined when
 * some line is not JSON or some record breaks a rule (DuckDB raises an Invalid Input Error: nothing else
 * is taken for a bad line), or when the table cannot be checked this way.
 */
async function strictPass(
  connection: DuckDBConnection,
  definition: LandingTableDefinition,
  files: LandingFile[],
  segmentPath: string,
): Promise<Written | undefined> {
  if (requiresLineByLine(definition)) return undefined;
  try {
    const rows = await copyToParquet(connection, recordsPassSql(definition, files, 'strict'), segmentPath);
    return { rows, quarantine: new Map() };
  } catch (error) {
    if (!isInputError(error)) throw error;
    if (existsSync(segmentPath)) unlinkSync(segmentPath);
    return undefined;
  }
}

/**
 * DuckDB's error for input it cannot read as asked: malformed JSON, a repeated key, a line too long,
 * error(). Told by its message, not by instanceof: the error may come from another realm (jest's).
 */
export function isInputError(error: unknown): boolean {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && message.startsWith('Invalid Input Error:');
}

async function copyToParquet(connection: DuckDBConnection, select: string, file: string): Promise<number> {
  const result = await connection.runAndReadAll(
    `copy (${select}) to ${sqlString(file)} (format parquet, compression lz4)`,
  );
  return Number(result.getRows()[0]?.[0] ?? 0);
}

interface Stats {
  records: number;
  fingerprint: string;
}

/**
 * Per landing file of a segment: its records and an order-independent fingerprint of them (the sum of
 * their rows' 64-bit hashes, as a decimal string), so an unchanged file's records are known unchanged.
 */
async function recordStats(
  connection: DuckDBConnection,
  definition: LandingTableDefinition,
  segmentPath: string,
): Promise<Map<string, Stats>> {
  const columns = definition.columns.map((c) => sqlIdentifier(c.name)).join(', ');
  const result = await connection.runAndReadAll(
    `select ${SOURCE_FILE_COLUMN}, count(*)::double as records, sum(hash(${columns})::hugeint)::varchar as fingerprint
     from read_parquet(${sqlString(segmentPath)}) group by 1`,
  );
  const stats = new Map<string, Stats>();
  for (const [key, records, fingerprint] of result.getRowsJS() as [string, number, string][])
    stats.set(key, { records, fingerprint });
  return stats;
}

/** How a file of a batch whose strict pass failed stands after the lenient pass. */
interface Classified {
  /** Read by the lenient pass with one record per line and none breaking a rule: its records are taken from it. */
  clean: string[];
  /** To parse line by line: where to read each (a copy with its unreadable lines blanked, or the alias). */
  dirty: LandingFile[];
  /** Lines that are not UTF-8 or longer than MAX_LINE_BYTES, rejected without being parsed. */
  unparsed: Rejection[];
  /** The lenient pass's Parquet files (source_file, broken, columns). */
  lenient: string[];
}

async function lenientPass(
  connection: DuckDBConnection,
  definition: LandingTableDefinition,
  files: LandingFile[],
  segmentPath: string,
  targets: CheckTargets,
  aliasDir: string,
): Promise<Written> {
  const classified = await classifyFiles(connection, definition, files, aliasDir);
  const parsed = sqlIdentifier(`landing_parsed_${randomBytes(4).toString('hex')}`);
  try {
    await parseLineByLine(connection, definition, classified, parsed);
    const rows = await copyToParquet(connection, segmentSelect(definition, classified, parsed), segmentPath);
    const quarantine = await writeQuarantineParts(connection, parsed, classified.unparsed, targets.quarantine);
    return { rows, quarantine };
  } finally {
    await connection.run(`drop table if exists ${parsed}`);
  }
}

/**
 * Tells the clean files of a batch from those to parse line by line. DuckDB reads text only as UTF-8,
 * and a huge line would take it many times its size in memory: a file with a line that is not UTF-8 or
 * longer than MAX_LINE_BYTES is parsed from a copy where such lines are blank (so line numbers hold),
 * and they are rejected here (the landing file itself is never changed). A file is clean when the
 * lenient pass reads one record per line and none breaks a rule.
 */
async function classifyFiles(
  connection: DuckDBConnection,
  definition: LandingTableDefinition,
  files: LandingFile[],
  aliasDir: string,
): Promise<Classified> {
  const out: Classified = { clean: [], dirty: [], unparsed: [], lenient: [] };
  const readable: LandingFile[] = [];
  const lines = new Map<string, number>();
  for (const [i, file] of files.entries()) {
    const bytes = await readFile(file.path);
    const { count, longest } = measureLines(bytes);
    if (longest <= MAX_LINE_BYTES && isUtf8(bytes)) {
      readable.push(file);
      lines.set(file.key, count);
    } else {
      const copy = path.join(aliasDir, `${i}.blanked.json`);
      await writeFile(copy, blankLines(bytes, file.key, out.unparsed));
      out.dirty.push({ path: copy, key: file.key });
    }
  }
  if (requiresLineByLine(definition)) {
    out.dirty.push(...readable);
    return out;
  }
  const { parquet, failed } = await lenientRecords(connection, definition, readable, aliasDir);
  out.lenient = parquet;
  const counts = await lenientCounts(connection, parquet);
  for (const file of readable) {
    const { records, broken } = counts.get(file.key) ?? { records: 0, broken: 0 };
    if (!failed.has(file.key) && records === lines.get(file.key) && broken === 0) out.clean.push(file.key);
    else out.dirty.push(file);
  }
  return out;
}

/**
 * The lenient pass over the readable files, into Parquet. DuckDB's reader raises some errors even when
 * told to skip bad lines (a record split over several lines, a line beyond its maximum object size):
 * then each file is read alone, and a file whose read raises is parsed line by line.
 */
async function lenientRecords(
  connection: DuckDBConnection,
  definition: LandingTableDefinition,
  files: LandingFile[],
  dir: string,
): Promise<{ parquet: string[]; failed: Set<string> }> {
  const failed = new Set<string>();
  if (files.length === 0) return { parquet: [], failed };
  const all = path.join(dir, 'lenient.parquet');
  try {
    await copyToParquet(connection, recordsPassSql(definition, files, 'lenient'), all);
    return { parquet: [all], failed };
  } catch (error) {
    if (!isInputError(error)) throw error;
  }
  const parquet: string[] = [];
  for (const [i, file] of files.entries()) {
    const one = path.join(dir, `lenient-${i}.parquet`);
    try {
      await copyToParquet(connection, recordsPassSql(definition, [file], 'lenient'), one);
      parquet.push(one);
    } catch (error) {
      if (!isInputError(error)) throw error;
      failed.add(file.key);
    }
  }
  return { parquet, failed };
}

async function lenientCounts(
  connection: DuckDBConnection,
  parquet: string[],
): Promise<Map<string, { records: number; broken: number }>> {
  const counts = new Map<string, { records: number; broken: number }>();
  if (parquet.length === 0) return counts;
  const result = await connection.runAndReadAll(
    `select ${SOURCE_FILE_COLUMN}, count(*)::double, count(*) filter (where broken)::double
     from read_parquet(${parquetList(parquet)}) group by 1`,
  );
  for (const [key, records, broken] of result.getRowsJS() as [string, number, number][])
    counts.set(key, { records, broken });
  return counts;
}

const parquetList = (files: string[]): string => `[${files.map(sqlString).join(', ')}]`;

/** The dirty files parsed line by line into a temporary table (reason null: a valid record). */
async function parseLineByLine(
  connection: DuckDBConnection,
  definition: LandingTableDefinition,
  classified: Classified,
  table: string,
): Promise<void> {
  const dirty = [...classified.dirty].sort((a, b) => a.key.localeCompare(b.key));
  await connection.run(`create temp table ${table} as ${parseLandingSql(definition, dirty)}`);
}

/** The batch's valid records: the clean files' from the lenient pass, the dirty files' from the line-by-line parse. */
function segmentSelect(definition: LandingTableDefinition, classified: Classified, parsed: string): string {
  const columns = [SOURCE_FILE_COLUMN, ...definition.columns.map((c) => c.name)].map(sqlIdentifier).join(', ');
  const fromParsed = `select ${columns} from ${parsed} where reason is null`;
  if (classified.clean.length === 0) return fromParsed;
  return `select ${columns} from read_parquet(${parquetList(classified.lenient)})
          where not broken and ${SOURCE_FILE_COLUMN} in (${classified.clean.map(sqlString).join(', ')})
          union all ${fromParsed}`;
}
