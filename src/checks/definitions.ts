import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { glueDir } from '../project';
import { ALL_TABLES } from '../layout';
import { supportTables } from '../support-tables';
import { stripCommentsAndStrings, tokenize } from '../sql/text';

/**
 * A data check of glue/checks/: a query returning the rows that break a rule (none: it passes),
 * as dbt's singular tests are. Its header comment says what it guards; the first line is
 * `-- <file name>: <summary>`. Written once in SQL that Athena (Trino) and DuckDB both run.
 */
export interface CheckDefinition {
  name: string;
  /** The first header line after the name. */
  summary: string;
  /** The whole header, comment markers removed. */
  description: string;
  sql: string;
  /** The catalog tables the query names outside string literals (information_schema excluded). */
  reads: string[];
  file: string;
}

export class CheckDefinitionError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'CheckDefinitionError';
  }
}

export const checksDir = (): string => path.join(glueDir(), 'checks');
/** Saved queries (named queries in the stack), e.g. the per-zone row counts. */
export const queriesDir = (): string => path.join(glueDir(), 'queries');

/** Reads one SQL file with a `-- <name>: <summary>` header. */
export function readCheckFile(file: string): CheckDefinition {
  const sql = readFileSync(file, 'utf8');
  const name = path.basename(file, '.sql');
  const header: string[] = [];
  for (const line of sql.split('\n')) {
    if (!line.startsWith('--')) break;
    header.push(line.replace(/^--\s?/, ''));
  }
  const [, headerName, summary] = /^([a-z][a-z0-9_]*):\s+(\S.*)$/.exec(header[0] ?? '') ?? [];
  if (headerName === undefined || summary === undefined)
    throw new CheckDefinitionError(file, 'the first line must be "-- <name>: <what it guards>"');
  if (headerName !== name) throw new CheckDefinitionError(file, `the header names ${headerName}, the file ${name}`);
  if (!/\bselect\b/i.test(sql.slice(header.join('\n').length)))
    throw new CheckDefinitionError(file, 'no query after the header');
  if (/;\s*\S/.test(stripCommentsAndStrings(sql))) throw new CheckDefinitionError(file, 'one statement per file');
  // The state machine gets the SQL through a ${...} definition substitution.
  if (sql.includes('${')) throw new CheckDefinitionError(file, 'no "${" in a check: it would read as a substitution');
  const words = new Set(tokenize(sql).map((t) => t.text));
  const reads = [...ALL_TABLES, ...supportTables().map((t) => t.name)].filter((t) => words.has(t));
  return {
    name,
    summary,
    description: [summary, ...header.slice(1)].join('\n'),
    sql,
    reads,
    file,
  };
}

function readDir(dir: string): CheckDefinition[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => readCheckFile(path.join(dir, f)));
}

let cachedChecks: CheckDefinition[] | undefined;

/** The checks of glue/checks/, by name. */
export function loadChecks(): CheckDefinition[] {
  cachedChecks ??= readDir(checksDir());
  return cachedChecks;
}

/** The saved queries of glue/queries/, by name. */
export function loadSavedQueries(): CheckDefinition[] {
  return readDir(queriesDir());
}

/** The ASL definition substitution that carries a check's SQL, e.g. CustomerTrustedConsentedCheckSql. */
export function checkSqlSubstitution(name: string): string {
  return `${name
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('')}CheckSql`;
}

/** The values `stedi run` substitutes for the checks' SQL (raw text: substitute() escapes it for JSON). */
export function checkSqlSubstitutions(): Record<string, string> {
  return Object.fromEntries(loadChecks().map((c) => [checkSqlSubstitution(c.name), c.sql]));
}
