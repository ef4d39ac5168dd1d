import type { LandingFileCounts } from '../build/engine';

// What glue/run_sql_job.py leaves in the bucket for the engine to read: each dataset's validated manifest, and
// each job's entry in the table build log.

export const MANIFEST = '_manifest.json';

export interface ManifestEntry {
  etag: string;
  size: number;
  records: number;
  rejected: number;
  batch: string;
}

export interface Manifest {
  rules: string;
  files: Record<string, ManifestEntry>;
}

export interface TableBuild {
  table_name: string;
  run_id: string;
  rows_before: number | null;
  rows_after: number;
  consent_policy: string;
  built_at: string;
  /** The inputs that held no rows, comma-separated (glue/checks/tables_not_emptied.sql). */
  empty_inputs?: string;
  /** The counts of the job's diagnostics (glue/run_sql_job.py run_diagnostics), by name. */
  diagnostics?: Record<string, number>;
}

/** Files checked, reused and removed, from the manifests before and after a run (glue/run_sql_job.py plan_sync). */
export function landingFileCounts(before: Manifest | undefined, after: Manifest): LandingFileCounts {
  const old = before && before.rules === after.rules ? before.files : {};
  let checked = 0;
  let reused = 0;
  for (const [key, entry] of Object.entries(after.files)) {
    const was = old[key];
    if (was && was.etag === entry.etag && was.size === entry.size && was.records === entry.records) reused++;
    else checked++;
  }
  const removed = Object.keys(before?.files ?? {}).filter((key) => !(key in after.files)).length;
  return { checked, reused, removed };
}
