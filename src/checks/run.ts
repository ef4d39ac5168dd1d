import type { Lake } from '../lake/lake';
import { CheckDefinition, LOCAL_DATABASE, checksFor } from './definitions';
import type { Row } from './lake-session';
import { required } from '../required';

export interface CheckResult {
  name: string;
  summary: string;
  /** pass: no violating row; fail: some; error: the query could not run. */
  status: 'pass' | 'fail' | 'error';
  /** Violating rows found (the first `firstRows` of them are in `rows`). */
  violations: number;
  columns: string[];
  rows: Row[];
  error?: string;
  durationMs: number;
}

/** Runs one query on some engine: DuckDB over a lake, or Athena. */
export type QueryRunner = (sql: string) => Promise<{ columns: string[]; rows: Row[] }>;

export interface RunChecksOptions {
  /** Violating rows kept per failed check (default 5). */
  firstRows?: number;
  /** Why a check cannot run here (e.g. a table it reads has not been built), or undefined. */
  unavailable?: (check: CheckDefinition) => string | undefined;
  /** How many checks run at once (default 1; Athena queries wait seconds, so the AWS side runs them together). */
  concurrency?: number;
  onResult?: (result: CheckResult) => void;
}

export async function runChecks(
  checks: CheckDefinition[],
  run: QueryRunner,
  options: RunChecksOptions = {},
): Promise<CheckResult[]> {
  const firstRows = options.firstRows ?? 5;
  const results = new Array<CheckResult>(checks.length);
  let next = 0;
  const worker = async () => {
    while (next < checks.length) {
      const index = next++;
      const check = required(checks[index], `check ${index}`);
      const started = Date.now();
      const base = { name: check.name, summary: check.summary };
      const reason = options.unavailable?.(check);
      let result: CheckResult;
      if (reason) {
        result = { ...base, status: 'error', violations: 0, columns: [], rows: [], error: reason, durationMs: 0 };
      } else {
        try {
          const { columns, rows } = await run(check.sql);
          result = {
            ...base,
            status: rows.length === 0 ? 'pass' : 'fail',
            violations: rows.length,
            columns,
            rows: rows.slice(0, firstRows),
            durationMs: Date.now() - started,
          };
        } catch (error) {
          result = {
            ...base,
            status: 'error',
            violations: 0,
            columns: [],
            rows: [],
            error: error instanceof Error ? error.message.split('\n')[0] : String(error),
            durationMs: Date.now() - started,
          };
        }
      }
      results[index] = result;
      options.onResult?.(result);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 1) }, worker));
  return results;
}

/** Runs the checks of glue/checks/ on DuckDB over a local lake. */
export async function runLakeChecks(
  lake: Lake,
  options: Omit<RunChecksOptions, 'unavailable' | 'concurrency'> = {},
): Promise<CheckResult[]> {
  const { LakeCheckSession } = await import('./lake-session');
  const session = await LakeCheckSession.open(lake);
  try {
    return await runChecks(checksFor(LOCAL_DATABASE), (sql) => session.query(sql), {
      ...options,
      unavailable: (check) => {
        const missing = check.reads.filter((t) => session.missing.includes(t));
        return missing.length > 0 ? `not built in ${lake.root} yet: ${missing.join(', ')}` : undefined;
      },
    });
  } finally {
    session.close();
  }
}
