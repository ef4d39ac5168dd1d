import type { DuckDBConnection } from '@duckdb/node-api';
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { MAX_LINE_BYTES } from '../sql/landing-rules';

// A landing batch's rejected lines, each dirty file's in a quarantine part of its own, byte for byte, with the
// lines DuckDB is never given (too long, not UTF-8) found before it parses the file (landing.ts).

/** A quarantine part's file name: one per landing key. */
export function quarantinePartName(key: string): string {
  return `${createHash('sha256').update(key).digest('hex').slice(0, 16)}.json`;
}

/**
 * Writes each dirty file's rejected lines, in line order, as JSON lines {source_file, line_number, reason,
 * line, line_encoding} to its own part. Lines DuckDB was never given (not UTF-8, too long) are merged in
 * here.
 */
export async function writeQuarantineParts(
  connection: DuckDBConnection,
  parsed: string,
  unparsed: Rejection[],
  dir: string,
): Promise<Map<string, { name: string; rejected: number }>> {
  const parts = new QuarantineWriter(dir, unparsed);
  const result = await connection.stream(
    `select source_file, line_number::double, reason, raw_line from ${parsed}
     where reason is not null order by source_file, line_number`,
  );
  for await (const rows of result.yieldRowsJs())
    for (const [key, lineNumber, reason, line] of rows as [string, number, string, string][])
      parts.write(key, lineNumber, reason, line);
  return parts.close();
}

const tooLongReason = `line longer than ${MAX_LINE_BYTES} bytes`;
const notUtf8Reason = 'not valid UTF-8 text';

/**
 * How a quarantine record holds its line: `text`, the line as it was; `base64`, the line's bytes in
 * base64, for a line that is not UTF-8 (JSON text cannot hold its bytes, and U+FFFD in their place would
 * lose them). The same column and values as the Glue runner's (glue/run_sql_job.py).
 */
export type LineEncoding = 'text' | 'base64';

/** A line as a quarantine record keeps it: byte for byte. */
function keptLine(line: Buffer): { text: string; encoding: LineEncoding } {
  return isUtf8(line)
    ? { text: line.toString('utf8'), encoding: 'text' }
    : { text: line.toString('base64'), encoding: 'base64' };
}

/** Appends rejected lines to one part per landing key, merging each key's unparsed lines in line order. */
class QuarantineWriter {
  /** Unparsed lines not written yet, by key, in line order. */
  private readonly pending = new Map<string, Rejection[]>();
  private readonly written = new Map<string, { name: string; rejected: number }>();
  private current?: { key: string; fd: number; part: { name: string; rejected: number } };

  constructor(
    private readonly dir: string,
    unparsed: Rejection[],
  ) {
    for (const r of [...unparsed].sort((a, b) => a.lineNumber - b.lineNumber)) {
      const list = this.pending.get(r.key) ?? [];
      list.push(r);
      this.pending.set(r.key, list);
    }
  }

  /** Rows come ordered by key, then line number. */
  write(key: string, lineNumber: number, reason: string, line: string): void {
    const current = this.open(key);
    const unparsed = this.pending.get(key) ?? [];
    for (let next = unparsed[0]; next && next.lineNumber < lineNumber; next = unparsed[0]) {
      unparsed.shift();
      this.append(current, next);
    }
    this.append(current, { key, lineNumber, reason, text: line, encoding: 'text' });
  }

  /** Writes the unparsed lines left (of keys with no other rejected line too) and closes the last part. */
  close(): Map<string, { name: string; rejected: number }> {
    for (const key of [...this.pending.keys()]) this.open(key);
    this.closeCurrent();
    return this.written;
  }

  private open(key: string): NonNullable<QuarantineWriter['current']> {
    if (this.current?.key === key) return this.current;
    this.closeCurrent();
    const name = quarantinePartName(key);
    const part = this.written.get(key) ?? { name, rejected: 0 };
    this.written.set(key, part);
    this.current = { key, fd: openSync(path.join(this.dir, name), 'a'), part };
    return this.current;
  }

  private closeCurrent(): void {
    const current = this.current;
    if (!current) return;
    for (const r of this.pending.get(current.key) ?? []) this.append(current, r);
    this.pending.delete(current.key);
    closeSync(current.fd);
    this.current = undefined;
  }

  private append(to: NonNullable<QuarantineWriter['current']>, r: Rejection): void {
    const record = {
      source_file: to.key,
      line_number: r.lineNumber,
      reason: r.reason,
      line: r.text,
      line_encoding: r.encoding,
    };
    writeSync(to.fd, `${JSON.stringify(record)}\n`);
    to.part.rejected++;
  }
}

export interface Rejection {
  key: string;
  lineNumber: number;
  reason: string;
  /** The line as `encoding` says. */
  text: string;
  encoding: LineEncoding;
}

/** Lines as the line-by-line parse numbers them (one per LF, and a last one without it) and the longest, in bytes. */
export function measureLines(bytes: Buffer): { count: number; longest: number } {
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
 * hold); those lines go to `unparsed`, kept byte for byte.
 */
export function blankLines(bytes: Buffer, key: string, unparsed: Rejection[]): Buffer {
  const lines: Buffer[] = [];
  let start = 0;
  for (let lineNumber = 1; start <= bytes.length; lineNumber++) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    const line = bytes.subarray(start, end);
    if (line.length > MAX_LINE_BYTES) {
      unparsed.push({ key, lineNumber, reason: tooLongReason, ...keptLine(line) });
      lines.push(Buffer.alloc(0));
    } else if (isUtf8(line)) lines.push(line);
    else {
      unparsed.push({ key, lineNumber, reason: notUtf8Reason, ...keptLine(line) });
      lines.push(Buffer.alloc(0));
    }
    start = end + 1;
  }
  return Buffer.concat(lines.flatMap((l, i) => (i === 0 ? [l] : [Buffer.from('\n'), l])));
}
