import type { DuckDBConnection } from '@duckdb/node-api';
import type { JobDefinition } from '../definition/pipeline';

/** A job's diagnostics by name (glue/queries/<name>.sql): what its rule left out silently, counted. */
export type Diagnostics = Record<string, number>;

/**
 * Runs the job's declared diagnostics (its `-- Diagnostics:` header) on the connection its inputs are bound
 * on, as the Glue runner does after the job. Each counts input rows, so after an append the counts of the
 * rows added are added to those the table had. Undefined for a job that declares none.
 */
export async function runDiagnostics(
  connection: DuckDBConnection,
  job: JobDefinition,
  before?: Diagnostics,
): Promise<Diagnostics | undefined> {
  if (job.diagnostics.length === 0) return undefined;
  const counts: Diagnostics = {};
  for (const diagnostic of job.diagnostics) {
    const rows = (await connection.runAndReadAll(diagnostic.sql)).getRows();
    const [row] = rows;
    if (rows.length !== 1 || row?.length !== 1)
      throw new Error(`${diagnostic.file} must return one row with one count, got ${rows.length} rows`);
    counts[diagnostic.name] = Number(row[0] ?? 0) + (before?.[diagnostic.name] ?? 0);
  }
  return counts;
}
