import Module from 'node:module';
import path from 'node:path';
import { buildSync } from 'esbuild';

/** A syntax error dt-sql-parser's Trino grammar reports (1-based line and column). */
export interface TrinoSqlError {
  message: string;
  startLine: number;
  startColumn: number;
}

export interface TrinoParser {
  validate(sql: string): TrinoSqlError[];
}

let parser: TrinoParser | undefined;

/**
 * dt-sql-parser's TrinoSQL parser (the SQL of Athena engine 3), bundled into one CommonJS module by
 * esbuild as tests/helpers/spark-sql.ts bundles its Spark parser: the package's ES modules load
 * neither in Node's require nor in Jest as they are.
 */
export function loadTrinoParser(): TrinoParser {
  if (parser) return parser;
  const bundle = buildSync({
    stdin: {
      contents: "export { TrinoSQL } from 'dt-sql-parser/dist/parser/trino';",
      resolveDir: path.resolve(__dirname, '..', '..'),
      loader: 'js',
    },
    bundle: true,
    format: 'cjs',
    platform: 'node',
    write: false,
    logLevel: 'silent',
  });
  const loaded = new Module('dt-sql-parser-trino');
  (loaded as unknown as { _compile(code: string, filename: string): void })._compile(
    bundle.outputFiles[0].text,
    path.join(__dirname, 'dt-sql-parser-trino.cjs'),
  );
  const { TrinoSQL } = loaded.exports as { TrinoSQL: new () => TrinoParser };
  parser = new TrinoSQL();
  return parser;
}
