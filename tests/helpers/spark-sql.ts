import Module from 'node:module';
import path from 'node:path';
import { buildSync } from 'esbuild';

/** A syntax error dt-sql-parser's Spark SQL grammar reports (1-based line and column). */
export interface SparkSqlError {
  message: string;
  startLine: number;
  startColumn: number;
}

interface SparkSqlParser {
  validate(sql: string): SparkSqlError[];
}

let parser: SparkSqlParser | undefined;

/**
 * dt-sql-parser's SparkSQL parser (an ANTLR grammar of Spark SQL 3.x). Its dist is ES modules with
 * extension-less imports and depends on an .mjs-only package, which neither Node's require nor Jest's
 * CommonJS runtime load: esbuild (already the Lambda bundler) bundles the Spark parser into one CommonJS
 * module here, once per test file (about half a second).
 */
export function sparkSqlParser(): SparkSqlParser {
  if (parser) return parser;
  const bundle = buildSync({
    stdin: {
      contents: "export { SparkSQL } from 'dt-sql-parser/dist/parser/spark';",
      resolveDir: path.resolve(__dirname, '..', '..'),
      loader: 'js',
    },
    bundle: true,
    format: 'cjs',
    platform: 'node',
    write: false,
    logLevel: 'silent',
  });
  const loaded = new Module('dt-sql-parser-spark');
  (loaded as unknown as { _compile(code: string, filename: string): void })._compile(
    bundle.outputFiles[0].text,
    path.join(__dirname, 'dt-sql-parser-spark.cjs'),
  );
  const { SparkSQL } = loaded.exports as { SparkSQL: new () => SparkSqlParser };
  parser = new SparkSQL();
  return parser;
}
