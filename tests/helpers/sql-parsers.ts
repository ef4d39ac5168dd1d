import Module from 'node:module';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { required } from '../../src/required';

/** A syntax error dt-sql-parser's Spark SQL grammar reports (1-based line and column). */
export interface SparkSqlError {
  message: string;
  startLine: number;
  startColumn: number;
}

interface ParseTreeNode {
  constructor: { name: string };
  getText(): string;
  getChildCount(): number;
  getChild(i: number): ParseTreeNode;
}

interface SparkSqlParser {
  validate(sql: string): SparkSqlError[];
  parse(sql: string): ParseTreeNode;
  getAllEntities(sql: string): { entityContextType: string; text: string }[] | null;
}

let sparkParser: SparkSqlParser | undefined;

/** dt-sql-parser's SparkSQL parser (an ANTLR grammar of Spark SQL 3.x), loaded once per test file. */
export function sparkSqlParser(): SparkSqlParser {
  sparkParser ??= new (loadDtSqlParser<new () => SparkSqlParser>('spark', 'SparkSQL'))();
  return sparkParser;
}

/**
 * A parser class of dt-sql-parser. Its dist is ES modules with extension-less imports and depends on an
 * .mjs-only package, which neither Node's require nor Jest's CommonJS runtime load: esbuild (already the
 * Lambda bundler) bundles that dialect's parser into one CommonJS module here (about half a second).
 */
export function loadDtSqlParser<T>(dialect: 'spark' | 'trino', className: string): T {
  const bundle = buildSync({
    stdin: {
      contents: `export { ${className} } from 'dt-sql-parser/dist/parser/${dialect}';`,
      resolveDir: path.resolve(__dirname, '..', '..'),
      loader: 'js',
    },
    bundle: true,
    format: 'cjs',
    platform: 'node',
    write: false,
    logLevel: 'silent',
  });
  const loaded = new Module(`dt-sql-parser-${dialect}`);
  // ANTLR's default error listener prints each syntax error with console.error, outside Jest's console;
  // validate() returns them anyway, so the parser gets a silent console of its own.
  const silentConsole = 'const console = { log() {}, warn() {}, error() {} };\n';
  (loaded as unknown as { _compile(code: string, filename: string): void })._compile(
    silentConsole + required(bundle.outputFiles[0], 'the bundled parser').text,
    path.join(__dirname, `dt-sql-parser-${dialect}.cjs`),
  );
  return required((loaded.exports as Partial<Record<string, T>>)[className], `${className} of the bundled parser`);
}

/**
 * The tables a query reads, as Spark's grammar sees them: every table reference (`from a, b`, joins,
 * qualified names such as `db.t`) that is not one of the query's own CTEs. The job files declare their
 * inputs in a header; this checks the declaration against the SQL.
 */
export function tablesReadBy(sql: string): string[] {
  const parser = sparkSqlParser();
  const cteNames = new Set<string>();
  const walk = (node: ParseTreeNode) => {
    if (node.constructor.name === 'NamedQueryContext') cteNames.add(node.getChild(0).getText().toLowerCase());
    for (let i = 0; i < node.getChildCount(); i++) walk(node.getChild(i));
  };
  walk(parser.parse(sql));
  const tables = (parser.getAllEntities(sql) ?? [])
    .filter((entity) => entity.entityContextType === 'table')
    .map((entity) => entity.text.toLowerCase())
    .filter((name) => !cteNames.has(name));
  return [...new Set(tables)];
}

/** A syntax error dt-sql-parser's Trino grammar reports (1-based line and column). */
export interface TrinoSqlError {
  message: string;
  startLine: number;
  startColumn: number;
}

export interface TrinoParser {
  validate(sql: string): TrinoSqlError[];
}

let trinoParser: TrinoParser | undefined;

/** dt-sql-parser's TrinoSQL parser (the SQL of Athena engine 3), bundled as the Spark one is. */
export function loadTrinoParser(): TrinoParser {
  trinoParser ??= new (loadDtSqlParser<new () => TrinoParser>('trino', 'TrinoSQL'))();
  return trinoParser;
}
