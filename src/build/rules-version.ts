import { createHash } from 'node:crypto';
import type { LandingTableDefinition } from '../definition/ddl';
import { EPOCH_MS_RANGE, MAX_LINE_BYTES } from '../sql/landing-rules';
import { parseLandingSql, recordsPassSql } from './landing-sql';

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
