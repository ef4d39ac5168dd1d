import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { literalPath, sqlString } from '../sql/quote';

/**
 * A dataset's quarantine, `<dataset>/quarantine/`: one part per landing file with rejected lines, each
 * JSON lines {source_file, line_number, reason, line, line_encoding} in line order (a lake of an earlier
 * layout has one rejected.json, whose records have no line_encoding: their lines are text). The one
 * reader of it: `stedi query`'s <dataset>_quarantine views use it.
 */

const COLUMNS = `{source_file: 'VARCHAR', line_number: 'BIGINT', reason: 'VARCHAR', line: 'VARCHAR', line_encoding: 'VARCHAR'}`;

/** The JSON-lines files of a quarantine folder, sorted; none when the folder is missing. */
export function quarantineParts(dir: string | undefined): string[] {
  if (!dir || !existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => path.join(dir, name));
}

/** A SELECT of a quarantine folder's rejected lines, in file and line order. */
export function quarantineScanSql(dir: string | undefined): string {
  const parts = quarantineParts(dir);
  if (parts.length === 0)
    return `select null::varchar as source_file, null::bigint as line_number, null::varchar as reason, null::varchar as line,
            null::varchar as line_encoding where false`;
  const list = `[${parts.map((f) => sqlString(literalPath(f))).join(', ')}]`;
  const size = Math.max(...parts.map(maximumObjectSize));
  return `select source_file, line_number, reason, line, coalesce(line_encoding, 'text') as line_encoding
          from read_json(${list}, format = 'newline_delimited', maximum_object_size = ${size}, columns = ${COLUMNS})
          order by source_file, line_number`;
}

const DEFAULT_MAXIMUM_OBJECT_SIZE = 16 * 1024 * 1024;

/**
 * read_json's maximum_object_size for a JSON-lines file: a quarantine keeps lines of any length, and
 * DuckDB allocates buffers of twice this size, so it is the longest line's (measured only in files
 * larger than the default).
 */
function maximumObjectSize(file: string): number {
  if (statSync(file).size <= DEFAULT_MAXIMUM_OBJECT_SIZE) return DEFAULT_MAXIMUM_OBJECT_SIZE;
  const buffer = Buffer.alloc(DEFAULT_MAXIMUM_OBJECT_SIZE);
  const fd = openSync(file, 'r');
  let longest = 0;
  let current = 0;
  try {
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) {
      let start = 0;
      for (let at = buffer.indexOf(0x0a, 0); at !== -1 && at < read; at = buffer.indexOf(0x0a, start)) {
        longest = Math.max(longest, current + at - start);
        current = 0;
        start = at + 1;
      }
      current += read - start;
    }
  } finally {
    closeSync(fd);
  }
  return Math.max(DEFAULT_MAXIMUM_OBJECT_SIZE, longest, current) + 1;
}
