import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LANDING_TABLES, LandingTableName } from './layout';
import { endOfString, stripComments } from '../sql/text';
import { required } from '../required';

export type ColumnType = 'string' | 'bigint' | 'int' | 'double';
export const COLUMN_TYPES: readonly ColumnType[] = ['string', 'bigint', 'int', 'double'];

export interface ColumnDefinition {
  name: string;
  type: ColumnType;
  /** A record lacking this field (or holding null) is rejected to quarantine. */
  required: boolean;
  /** A bigint column whose comment says "epoch ms": a value outside EPOCH_MS_RANGE (landing-rules.ts) is rejected. */
  epochMillis: boolean;
  comment: string;
}

/** Landing rules beyond the column types (the epoch-ms range, the longest line) are in landing-rules.ts. */

export interface LandingTableDefinition {
  name: string;
  columns: ColumnDefinition[];
  /** The LOCATION of the DDL, e.g. s3://${bucket}/customer/landing/. */
  location: string;
}

export class DdlError extends Error {
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'DdlError';
  }
}

/**
 * Reads a `create external table` DDL file of glue/tables/: the Glue Catalog definition of a
 * landing table. A column whose comment starts with "required" must be present in every record.
 */
export function readLandingTableDdl(file: string): LandingTableDefinition {
  const code = stripComments(readFileSync(file, 'utf8'));
  const header = /create\s+external\s+table\s+(?:if\s+not\s+exists\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*\(/i.exec(code);
  if (!header) throw new DdlError('no "create external table NAME (" statement', file);
  const rest = code.slice(header.index + header[0].length);
  const [columnList, afterColumns] = splitAtClosingParen(rest, file);
  const columns = splitTopLevel(columnList).map((part) => parseColumn(part, file));
  const [, location] = /location\s+'([^']*)'/i.exec(afterColumns) ?? [];
  if (location === undefined) throw new DdlError('no LOCATION', file);
  return { name: required(header[1], 'the table name of the DDL header'), columns, location };
}

function parseColumn(text: string, file: string): ColumnDefinition {
  const m = /^\s*`?([A-Za-z_][A-Za-z0-9_]*)`?\s+([A-Za-z]+)\s*(?:comment\s+'((?:[^'\\]|\\.)*)')?\s*$/is.exec(text);
  const [, name, typeName, comment = ''] = m ?? [];
  if (name === undefined || typeName === undefined)
    throw new DdlError(`cannot read the column definition "${text.trim()}"`, file);
  const type = typeName.toLowerCase();
  if (!(COLUMN_TYPES as readonly string[]).includes(type)) {
    throw new DdlError(`column ${name} has type ${type}; supported: ${COLUMN_TYPES.join(', ')}`, file);
  }
  const epochMillis = /\bepoch ms\b/i.test(comment);
  if (epochMillis && type !== 'bigint')
    throw new DdlError(`column ${name} says "epoch ms" but is ${type}, not bigint`, file);
  return { name, type: type as ColumnType, required: /^required\b/i.test(comment), epochMillis, comment };
}

/** Splits `text` (just after an opening parenthesis) at its matching closing one, skipping strings. */
function splitAtClosingParen(text: string, file: string): [string, string] {
  let depth = 1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "'") i = endOfString(text, i);
    else if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return [text.slice(0, i), text.slice(i + 1)];
  }
  throw new DdlError('unbalanced parentheses in the column list', file);
}

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "'") i = endOfString(text, i);
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (text.slice(start).trim()) parts.push(text.slice(start));
  return parts;
}

/** The three landing table definitions, read from glue/tables/. */
export function readLandingTables(glueDir: string): Record<LandingTableName, LandingTableDefinition> {
  const read = (name: LandingTableName) => readLandingTableDdl(path.join(glueDir, 'tables', `${name}.sql`));
  return Object.fromEntries(LANDING_TABLES.map((name) => [name, read(name)])) as Record<
    LandingTableName,
    LandingTableDefinition
  >;
}
