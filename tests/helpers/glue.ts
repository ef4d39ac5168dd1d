import { DuckDBInstance } from '@duckdb/node-api';
import { existsSync } from 'node:fs';
import { glueSetupProblems } from '../../src/glue-engine/setup';
import { DERIVED_TABLES, DATASETS, LANDING_TABLES } from '../../src/definition/layout';
import { Lake } from '../../src/lake/lake';
import { QuerySession } from '../../src/stand-ins/athena/query';
import { plainRows } from '../../src/lake/rows';
import { literalPath, sqlString } from '../../src/sql/quote';

/**
 * The Glue engine's tests need `npm run setup:glue` (.venv, the S3A jars) and java: without them each
 * suite is skipped, saying what is missing, instead of failing on a machine that cannot run Spark.
 */
export function describeWithGlue(name: string, body: () => void): void {
  const problems = glueSetupProblems();
  if (problems.length === 0) {
    describe(name, body);
    return;
  }
  // In CI the set-up is part of `npm test`: a missing piece there is a failure, never a quiet skip.
  if (process.env.CI) {
    describe(name, () => {
      test('has the Glue engine set up', () => {
        throw new Error(`${problems.join('; ')}; \`npm run setup:glue\` should have made it`);
      });
    });
    return;
  }
  describe(name, () => {
    test.skip(`skipped: ${problems.join('; ')}; run \`npm run setup:glue\``, () => undefined);
  });
  process.stderr.write(`tests/glue: "${name}" skipped: ${problems.join('; ')}; run \`npm run setup:glue\`\n`);
}

/** A table as both engines are compared on it: its columns with their types, and its rows as sorted JSON. */
export interface TableDump {
  columns: string[];
  rows: string[];
}

/**
 * Every derived table (columns and types, rows) and every quarantine of a lake, and the catalog's counts
 * (rows and rejected lines per table: the run summary's), read through `stedi query`'s session.
 */
export async function dumpTables(lake: Lake): Promise<Record<string, TableDump>> {
  const session = await QuerySession.open(lake, DERIVED_TABLES.join(' '));
  try {
    const dump: Record<string, TableDump> = {};
    const { tables } = await lake.readCatalog();
    dump.catalog = {
      columns: [],
      rows: [...LANDING_TABLES, ...DERIVED_TABLES].map(
        (t) => `${t} rows ${tables[t]?.rows} rejected ${tables[t]?.rejected ?? '-'}`,
      ),
    };
    for (const view of [...DERIVED_TABLES, ...DATASETS.map((d) => `${d}_quarantine`)]) {
      const described = await session.query(`select column_name, column_type from (describe select * from ${view})`);
      const { rows } = await session.query(`select * from ${view}`);
      dump[view] = {
        columns: described.rows.map((r) => `${String(r.column_name)} ${String(r.column_type)}`),
        rows: rows.map((r) => JSON.stringify(r)).sort(),
      };
    }
    return dump;
  } finally {
    session.close();
  }
}

/**
 * The first difference between two dumps, naming the table and its first differing row (in sorted
 * order), or undefined when they are equal.
 */
export function firstDifference(
  expected: Record<string, TableDump>,
  actual: Record<string, TableDump>,
  names = { expected: 'duckdb', actual: 'glue' },
): string | undefined {
  for (const table of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
    const a = expected[table];
    const b = actual[table];
    if (!a || !b) return `${table}: only the ${a ? names.expected : names.actual} engine has it`;
    if (a.columns.join() !== b.columns.join())
      return `${table}: columns differ: ${names.expected} [${a.columns.join(', ')}], ${names.actual} [${b.columns.join(', ')}]`;
    for (let i = 0; i < Math.max(a.rows.length, b.rows.length); i++)
      if (a.rows[i] !== b.rows[i])
        return (
          `${table}: ${a.rows.length} rows (${names.expected}) and ${b.rows.length} (${names.actual}); ` +
          `first differing row, #${i} in sorted order: ${names.expected} ${a.rows[i] ?? '(none)'}, ${names.actual} ${b.rows[i] ?? '(none)'}`
        );
  }
  return undefined;
}

/** Rows of Parquet files as sorted JSON (the Glue runner's validated copy, downloaded). */
export async function parquetRows(files: string[], columns: string[]): Promise<string[]> {
  const parquet = files.filter((f) => f.endsWith('.parquet') && existsSync(f));
  if (parquet.length === 0) return [];
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  try {
    const list = parquet.map((f) => sqlString(literalPath(f))).join(', ');
    const reader = await connection.runAndReadAll(
      `select ${columns.map((c) => `"${c}"`).join(', ')} from read_parquet([${list}])`,
    );
    return plainRows(reader)
      .map((r) => JSON.stringify(r))
      .sort();
  } finally {
    connection.closeSync();
    db.closeSync();
  }
}
