import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  CheckDefinition,
  DATABASE_PLACEHOLDER,
  checkSqlFor,
  checksFor,
  loadChecks,
  loadSavedQueries,
  readCheckFile,
} from '../../src/checks/definitions';
import { removeDir, tempDir } from '../helpers/lake';
import { required } from '../../src/required';
import { tokenize } from '../../src/sql/text';
import { TrinoParser, loadTrinoParser } from '../helpers/sql-parsers';

// The checks (glue/checks/) and saved queries (glue/queries/) are written once and run on Athena
// (Trino) and on DuckDB. DuckDB runs them in the integration tests; here each must parse with a
// Trino grammar, and use only functions and types both engines have with the same meaning.

/**
 * Functions Trino (https://trino.io/docs/current/functions/list.html) and DuckDB both have, with the
 * same meaning for the arguments the checks give them. Add one only after checking both lists.
 */
const SHARED_FUNCTIONS = new Set(['count', 'min', 'max', 'sum', 'lower', 'upper', 'coalesce', 'length']);
/** Types both engines name alike in CAST. (Spark's `string` is not a Trino type.) */
const SHARED_TYPES = new Set(['varchar', 'bigint', 'integer', 'double', 'boolean', 'date']);
/** Words that take a parenthesis without being functions. */
const SYNTAX_BEFORE_PARENTHESIS = new Set([
  'from',
  'join',
  'in',
  'exists',
  'as',
  'and',
  'or',
  'not',
  'where',
  'on',
  'all',
  'select',
  'values',
  'over',
  'cast',
  'when',
  'then',
  'else',
]);

const files: CheckDefinition[] = [...loadChecks(), ...loadSavedQueries()];

/** Names called as functions: a word followed by "(" that is not syntax. */
function functionsCalled(sql: string): string[] {
  const tokens = tokenize(sql);
  return tokens
    .filter((t, i) => t.kind === 'word' && tokens[i + 1]?.text === '(' && !SYNTAX_BEFORE_PARENTHESIS.has(t.text))
    .map((t) => t.text);
}

function typesCast(sql: string): string[] {
  return [...sql.matchAll(/\bcast\s*\([^()]*?\bas\s+([a-z_]+)/gi)].map((m) =>
    required(m[1], 'the type of a cast').toLowerCase(),
  );
}

let trino: TrinoParser;
beforeAll(() => {
  trino = loadTrinoParser();
});

describe('the Trino grammar used on the checks', () => {
  it('rejects what only DuckDB or Spark accepts, so the tests below can fail', () => {
    expect(trino.validate('select a from t where x = 1')).toEqual([]);
    expect(trino.validate('select * exclude (a) from t')).not.toEqual([]); // DuckDB
    expect(trino.validate('from t select a')).not.toEqual([]); // DuckDB
    expect(trino.validate('select a from t where a::int = 1')).not.toEqual([]); // DuckDB, PostgreSQL
    expect(trino.validate('select a from t lateral view explode(b) e as x')).not.toEqual([]); // Spark
    expect(functionsCalled("select regexp_matches(a, '@'), count(*) from t")).toEqual(['regexp_matches', 'count']);
    expect(typesCast('select cast(a as string) from t')).toEqual(['string']);
  });
});

describe.each(files.map((f) => [f.name, f] as const))('%s', (_name, check) => {
  it('parses with the Trino grammar', () => {
    const errors = trino.validate(check.sql);
    expect(errors.map((e) => `line ${e.startLine}:${e.startColumn} ${e.message}`)).toEqual([]);
  });

  it('calls only functions and casts only to types that Trino and DuckDB share', () => {
    expect(functionsCalled(check.sql).filter((f) => !SHARED_FUNCTIONS.has(f))).toEqual([]);
    expect(typesCast(check.sql).filter((t) => !SHARED_TYPES.has(t))).toEqual([]);
    expect(check.sql).not.toMatch(/`/); // Spark and Hive quote identifiers so; Trino does not
  });

  it('has a header that says what it guards or gives', () => {
    expect(check.summary.length).toBeGreaterThan(20);
    if (loadChecks().includes(check)) expect(check.description).toMatch(/\nGuards: [\s\S]*\nReturns: /);
  });
});

describe('the checks', () => {
  it('are at least the ones the STEDI project verifies with Athena', () => {
    expect(loadChecks().map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'curated_no_pii_columns',
        'curated_no_email_values',
        'customer_trusted_consented',
        'machine_learning_customers_curated',
        'customer_curated_unique_customer_id',
        'trusted_readings_since_consent',
        'tables_not_emptied',
        'trusted_readings_consented',
        'curated_customers_trusted_with_readings',
      ]),
    );
  });
});

describe('the database a check names', () => {
  it('is filled in literally wherever a check reads information_schema, never left to current_schema (Athena guide, "List all columns for all tables": restrict to one database with table_schema = \'database_name\')', () => {
    const readers = loadChecks().filter((c) => /information_schema/i.test(c.sql));
    expect(readers.map((c) => c.name)).toEqual(['curated_no_pii_columns']);
    for (const check of checksFor('stedi_lakehouse_dev').filter((c) => readers.some((r) => r.name === c.name))) {
      expect(check.sql).toMatch(/table_schema = 'stedi_lakehouse_dev'/);
      expect(check.sql).not.toMatch(/current_schema|\$\{/);
    }
  });

  it('is a database name: anything that could leave the string literal is refused, naming the file', () => {
    const check = loadChecks().find((c) => c.sql.includes(DATABASE_PLACEHOLDER))!;
    expect(() => checkSqlFor(check, "x' or '1'='1")).toThrow(/curated_no_pii_columns\.sql: .* is not a database name/);
  });

  it('is the only placeholder a check may hold: any other "${" would read as a definition substitution', () => {
    const dir = tempDir('check-file');
    try {
      const file = path.join(dir, 'bad_check.sql');
      writeFileSync(file, "-- bad_check: a check that names a stage-specific bucket\nselect '${DataBucket}' as b\n");
      expect(() => readCheckFile(file)).toThrow(/bad_check\.sql: no "\$\{" in a check but \$\{GlueDatabaseName\}/);
      writeFileSync(file, "-- bad_check: a check that names the database alone\nselect '${GlueDatabaseName}' as d\n");
      expect(readCheckFile(file).sql).toContain(DATABASE_PLACEHOLDER);
    } finally {
      removeDir(dir);
    }
  });
});
