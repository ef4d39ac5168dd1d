import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { glueDir } from '../project';
import { ALL_TABLES } from '../definition/layout';
import { supportTables } from '../definition/support-tables';
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

/**
 * Where a check names the lake's database, e.g. to filter information_schema by it: Athena then lists the
 * tables of that database alone, never the catalog's other databases (which the caller may not be allowed to
 * read). The same name as the state machine's definition substitution of the database.
 */
export const DATABASE_PLACEHOLDER = '${GlueDatabaseName}';
/** The database the checks see on a local lake (the local Athena's, and LakeCheckSession's schema). */
export const LOCAL_DATABASE = 'lake';
/** A Glue database name as the stack makes them (stedi_lakehouse_<stage>): safe inside a SQL string literal. */
const DATABASE_NAME = /^[a-z0-9_]{1,255}$/;

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
  // The state machine gets the SQL through a ${...} definition substitution: the database's name is the one
  // placeholder a check may hold (checkSqlFor fills it in).
  if (sql.split(DATABASE_PLACEHOLDER).join('').includes('${'))
    throw new CheckDefinitionError(
      file,
      `no "\${" in a check but ${DATABASE_PLACEHOLDER}: anything else would read as a substitution`,
    );
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

/** A check's SQL for the database it runs in: DATABASE_PLACEHOLDER replaced by the database's name. */
export function checkSqlFor(check: Pick<CheckDefinition, 'sql' | 'file'>, database: string): string {
  if (!DATABASE_NAME.test(database))
    throw new CheckDefinitionError(check.file, `"${database}" is not a database name (lowercase letters, digits, _)`);
  return check.sql.split(DATABASE_PLACEHOLDER).join(database);
}

/** The checks with their SQL for one database (Athena: the stack's; locally LOCAL_DATABASE). */
export function checksFor(database: string): CheckDefinition[] {
  return loadChecks().map((c) => ({ ...c, sql: checkSqlFor(c, database) }));
}
