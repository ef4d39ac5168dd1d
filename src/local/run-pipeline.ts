import { DATASETS, Dataset, LANDING_TABLES, TableName, ALL_TABLES } from '../layout';
import { JobName, JOB_NAMES } from '../pipeline';
import { JobResult, LocalEngine, RunParameters } from './engine';
import { Lake } from './lake';

export interface RunSummary {
  status: 'SUCCEEDED' | 'FAILED';
  tables: Record<TableName, { rows: number }>;
  quarantined: Record<Dataset, number>;
  jobs: JobResult[];
  error?: string;
}

export type ProgressListener = (event: { type: 'job-started'; job: JobName } | { type: 'job-finished'; result: JobResult }) => void;

/** Runs the jobs in dependency order, stopping at the first failure. */
export async function runJobsInOrder(
  engine: LocalEngine,
  params: RunParameters,
  jobs: readonly JobName[] = JOB_NAMES,
  onProgress: ProgressListener = () => undefined,
): Promise<JobResult[]> {
  const results: JobResult[] = [];
  for (const job of jobs) {
    onProgress({ type: 'job-started', job });
    const result = await engine.runJob(job, params);
    results.push(result);
    onProgress({ type: 'job-finished', result });
  }
  return results;
}

/** Row counts of all eight catalog tables and the quarantine counts, as the catalog holds them now. */
export async function summarize(lake: Lake): Promise<Pick<RunSummary, 'tables' | 'quarantined'>> {
  const catalog = await lake.readCatalog();
  const tables = Object.fromEntries(ALL_TABLES.map((t) => [t, { rows: catalog.tables[t]?.rows ?? 0 }])) as RunSummary['tables'];
  const quarantined = Object.fromEntries(
    DATASETS.map((d, i) => [d, catalog.tables[LANDING_TABLES[i]]?.rejected ?? 0]),
  ) as Record<Dataset, number>;
  return { tables, quarantined };
}
