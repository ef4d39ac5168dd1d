import { buildSync } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/project';

export interface SyntaxError {
  message: string;
  startLine: number;
  startColumn: number;
}

export interface TrinoParser {
  validate(sql: string): SyntaxError[];
}

/**
 * dt-sql-parser's Trino grammar (the SQL Athena engine 3 runs). Its package ships ES modules with
 * extensionless imports, which neither Node nor Jest load as they are; esbuild (a devDependency)
 * bundles the parser into one CommonJS file first.
 */
export function loadTrinoParser(): TrinoParser {
  const dir = mkdtempSync(path.join(tmpdir(), 'stedi-trino-parser-'));
  try {
    const outfile = path.join(dir, 'trino.js');
    buildSync({
      stdin: { contents: "export { TrinoSQL } from 'dt-sql-parser';", resolveDir: projectRoot() },
      bundle: true,
      platform: 'node',
      format: 'cjs',
      outfile,
      logLevel: 'error',
    });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { TrinoSQL } = require(outfile) as { TrinoSQL: new () => TrinoParser };
    return new TrinoSQL();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
