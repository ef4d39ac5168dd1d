import type { DuckDBConnection } from '@duckdb/node-api';
import { isUtf8 } from 'node:buffer';
import { readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LandingTableName, datasetOfLandingTable } from '../layout';
import type { LandingTableDefinition } from '../sql/ddl';
import type { Lake } from './lake';
import { MAX_LINE_BYTES } from '../sql/landing-rules';
import {
  landingFileCheckSql,
  landingQuickCheckByValueSql,
  landingQuickCheckSql,
  parseLandingSql,
  typedLandingScanSql,
} from './landing-sql';
import { sqlIdentifier, sqlString } from '../sql/quote';

export interface BoundLandingTable {
  valid: number;
  rejected: number;
  /** Temporary table of the line-by-line parse, when some file needed one; its rows with a reason are the rejected lines. */
  parsedTable?: string;
  /** How many files were parsed line by line (the others were read by DuckDB's JSON reader). */
  parsedFiles: number;
  /** Rejected lines longer than MAX_LINE_BYTES: kept out of DuckDB, merged into the quarantine by writeRejected. */
  longLines: Rejection[];
  /**
   * With `countBy`, when every file was clean: a temporary table (value, records) of the records per
   * value of that column, the value as its JSON text (made in the check's pass, at almost no cost).
   */
  counts?: string;
}

export interface BindOptions {
  /** Bytes of landing files parsed line by line per query (see PARSE_BATCH_BYTES); tests make it small. */
  parseBatchBytes?: number;
  /** A column to count the records by, if the check's pass can (BoundLandingTable.counts). */
  countBy?: string;
}

/**
 * Makes a landing table readable by its name on this connection: a view of its valid records.
 * Clean files are read by DuckDB's parallel JSON reader; only files with a bad line are parsed
 * line by line, which names each rejected line's file, number and reason.
 *
 * DuckDB's readers take a path as a pattern (`*`, `?`, `[`) and cannot match a backslash in one, while a
 * landing file's name is whatever its uploader chose: each file is read through an alias with a plain
 * name, a symbolic link in `scratch`. The view reads those aliases, so `scratch` must outlive it.
 */
export async function bindLandingTable(
  connection: DuckDBConnection,
  lake: Lake,
  table: LandingTableName,
  definition: LandingTableDefinition,
  scratch: string,
  { parseBatchBytes = PARSE_BATCH_BYTES, countBy }: BindOptions = {},
): Promise<BoundLandingTable> {
  const files = await lake.landingFiles(datasetOfLandingTable(table));
  const aliasDir = await mkdtemp(path.join(scratch, `${table}-`));
  const realFile = new Map<string, string>();
  const aliases = files.map((file, i) => {
    const alias = path.join(aliasDir, `${i}.json`);
    symlinkSync(file, alias);
    realFile.set(alias, file);
    return alias;
  });
  const keyOf = (alias: string) => path.relative(lake.root, realFile.get(alias)!).split(path.sep).join('/');
  const clean: string[] = [];
  const dirty: { path: string; key: string }[] = [];
  const unreadable: Rejection[] = [];
  const longLines: Rejection[] = [];
  let cleanRecords = 0;
  let counts: string | undefined;
  if (aliases.length > 0) {
    let allClean = false;
    try {
      let check = landingQuickCheckSql(definition, aliases);
      if (countBy) {
        counts = `${table}_by_${countBy}`;
        await connection.run(landingQuickCheckByValueSql(definition, aliases, countBy, counts));
        check = `select coalesce(sum(records), 0), coalesce(sum(failing), 0) from ${sqlIdentifier(counts)}`;
      }
      const [records, failing] = (await connection.runAndReadAll(check)).getRows()[0] as [number, number];
      allClean = failing === 0;
      if (allClean) {
        clean.push(...aliases);
        cleanRecords = records;
      } else counts = undefined;
    } catch {
      counts = undefined;
      // Some line is not JSON (or not UTF-8): the per-file check below finds which files hold one.
    }
    if (!allClean) {
      // DuckDB reads text only as UTF-8, and a huge line would take it many times its size in memory: a
      // file with a line that is not UTF-8 or longer than MAX_LINE_BYTES is parsed from a copy where such
      // lines are blank, and they are rejected here (the landing file itself is never changed).
      const utf8: string[] = [];
      const lines = new Map<string, number>();
      for (const alias of aliases) {
        const bytes = await readFile(alias);
        const { count, longest } = measureLines(bytes);
        if (longest <= MAX_LINE_BYTES && isUtf8(bytes)) {
          utf8.push(alias);
          lines.set(alias, count);
          continue;
        }
        const copy = path.join(aliasDir, `${dirty.length}.blanked.json`);
        await writeFile(copy, blankLines(bytes, keyOf(alias), unreadable, longLines));
        dirty.push({ path: copy, key: keyOf(alias) });
      }
      // A file is clean when DuckDB's reader, skipping what it cannot parse, reads one record per
      // line and none breaks a rule; a file it reads no record from has no row here.
      const checked = await checkFiles(connection, definition, utf8);
      for (const alias of utf8) {
        const { records, failing } = checked.get(alias) ?? { records: 0, failing: 0 };
        if (records === lines.get(alias) && failing === 0) {
          clean.push(alias);
          cleanRecords += records;
        } else {
          dirty.push({ path: alias, key: keyOf(alias) });
        }
      }
    }
  }
  const cleanScan = typedLandingScanSql(definition, clean.sort());
  if (dirty.length === 0 && unreadable.length === 0) {
    // The usual case: every file passed the check, so DuckDB's JSON reader is the whole table.
    await connection.run(`create or replace temp view ${sqlIdentifier(table)} as ${cleanScan}`);
    return { valid: cleanRecords, rejected: 0, parsedFiles: 0, longLines, counts };
  }
  const parsed = sqlIdentifier(`${table}_parsed`);
  const batches = await batchesBySize(
    dirty.sort((a, b) => a.key.localeCompare(b.key)),
    parseBatchBytes,
  );
  await connection.run(`create or replace temp table ${parsed} as ${parseLandingSql(definition, batches[0] ?? [])}`);
  for (const batch of batches.slice(1))
    await connection.run(`insert into ${parsed} ${parseLandingSql(definition, batch)}`);
  for (const r of unreadable) {
    await connection.run(
      `insert into ${parsed} (reason, source_file, line_number, raw_line) values ($reason, $key, $line, $raw)`,
      {
        reason: 'not valid UTF-8 text',
        key: r.key,
        line: r.lineNumber,
        raw: r.text,
      },
    );
  }
  const columns = definition.columns.map((c) => sqlIdentifier(c.name)).join(', ');
  await connection.run(
    `create or replace temp view ${sqlIdentifier(table)} as
     ${cleanScan}
     union all
     select ${columns} from ${parsed} where reason is null`,
  );
  const tally = await connection.runAndReadAll(
    `select count(*) filter (where reason is null)::double, count(*) filter (where reason is not null)::double from ${parsed}`,
  );
  const [dirtyValid, rejected] = tally.getRows()[0] as [number, number];
  return {
    valid: cleanRecords + dirtyValid,
    rejected: rejected + longLines.length,
    parsedTable: parsed,
    parsedFiles: dirty.length,
    longLines,
  };
}

/**
 * The per-file check of landingFileCheckSql, by file. DuckDB's reader raises some errors even when told
 * to skip bad lines (a record split over several lines, a line beyond its maximum object size): then
 * each file is checked alone, and a file whose check raises has no entry (it is parsed line by line).
 */
async function checkFiles(
  connection: DuckDBConnection,
  definition: LandingTableDefinition,
  files: string[],
): Promise<Map<string, { records: number; failing: number }>> {
  const checked = new Map<string, { records: number; failing: number }>();
  const read = async (batch: string[]) => {
    for (const row of (await connection.runAndReadAll(landingFileCheckSql(definition, batch))).getRowObjectsJS())
      checked.set(row.filename as string, { records: Number(row.records), failing: Number(row.failing) });
  };
  if (files.length === 0) return checked;
  try {
    await read(files);
  } catch {
    checked.clear();
    for (const file of files) {
      try {
        await read([file]);
      } catch {
        checked.delete(file);
      }
    }
  }
  return checked;
}

/**
 * Files parsed line by line per query, at most about this many bytes: read_text holds a query's files
 * in memory at once, so one query over the 1 GB of 100x accelerometer files peaked near 2 GB; in
 * batches of this size it stays near 1 GB and is no slower.
 */
const PARSE_BATCH_BYTES = 64 * 1024 * 1024;

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

export interface Rejection {
  key: string;
  lineNumber: number;
  text: string;
}

/** Lines as the line-by-line parse numbers them (one per LF, and a last one without it) and the longest, in bytes. */
function measureLines(bytes: Buffer): { count: number; longest: number } {
  let count = 0;
  let longest = 0;
  let start = 0;
  for (let at = bytes.indexOf(0x0a); at !== -1; at = bytes.indexOf(0x0a, start)) {
    count++;
    longest = Math.max(longest, at - start);
    start = at + 1;
  }
  if (start < bytes.length) {
    count++;
    longest = Math.max(longest, bytes.length - start);
  }
  return { count, longest };
}

/**
 * The file with every line that is not UTF-8 or longer than MAX_LINE_BYTES made blank (so line numbers
 * hold); those lines go to `notUtf8` and `tooLong`.
 */
function blankLines(bytes: Buffer, key: string, notUtf8: Rejection[], tooLong: Rejection[]): Buffer {
  const lines: Buffer[] = [];
  let start = 0;
  for (let lineNumber = 1; start <= bytes.length; lineNumber++) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    const line = bytes.subarray(start, end);
    if (line.length > MAX_LINE_BYTES) {
      tooLong.push({ key, lineNumber, text: line.toString('utf8') });
      lines.push(Buffer.alloc(0));
    } else if (isUtf8(line)) lines.push(line);
    else {
      notUtf8.push({ key, lineNumber, text: line.toString('utf8') }); // bad bytes shown as U+FFFD
      lines.push(Buffer.alloc(0));
    }
    start = end + 1;
  }
  return Buffer.concat(lines.flatMap((l, i) => (i === 0 ? [l] : [Buffer.from('\n'), l])));
}

/**
 * Writes a bound table's rejected lines, in file and line order, as JSON lines. Lines too long for DuckDB
 * were never given to it: they are merged in here, in order.
 */
export async function writeRejected(
  connection: DuckDBConnection,
  bound: BoundLandingTable,
  file: string,
): Promise<void> {
  if (!bound.parsedTable) throw new Error('writeRejected: this landing table has no rejected lines');
  const target = bound.longLines.length > 0 ? `${file}.parsed` : file;
  await connection.run(
    `copy (
       select source_file, line_number, reason, raw_line as line
       from ${bound.parsedTable} where reason is not null order by source_file, line_number
     ) to ${sqlString(target)} (format json)`,
  );
  if (target === file) return;
  // DuckDB orders VARCHARs by their UTF-8 bytes.
  const order = (a: { key: Buffer; line: number }, b: { key: Buffer; line: number }) =>
    Buffer.compare(a.key, b.key) || a.line - b.line;
  const parsed = readFileSync(target, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((json) => {
      const row = JSON.parse(json) as { source_file: string; line_number: number };
      return { key: Buffer.from(row.source_file), line: row.line_number, json };
    });
  const long = bound.longLines.map((r) => ({
    key: Buffer.from(r.key),
    line: r.lineNumber,
    json: JSON.stringify({ source_file: r.key, line_number: r.lineNumber, reason: tooLongReason, line: r.text }),
  }));
  const merged = [...parsed, ...long].sort(order);
  writeFileSync(file, merged.map((r) => `${r.json}\n`).join(''));
  unlinkSync(target);
}

const tooLongReason = `line longer than ${MAX_LINE_BYTES} bytes`;
