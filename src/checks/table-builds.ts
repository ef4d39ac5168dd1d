import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DerivedTableName, tableBuildKey } from '../layout';
import type { Lake } from '../local/lake';

/** One line of the table build log (src/support-tables.ts TABLE_BUILDS_COLUMNS), as glue/run_sql_job.py writes it too. */
export interface TableBuild {
  table_name: DerivedTableName;
  run_id: string;
  /** Rows of the version the rebuild replaced; null when there was none. */
  rows_before: number | null;
  rows_after: number;
  /** The consent policy of the run that built it. */
  consent_policy: string;
  built_at: string;
}

/** Replaces a table's build record: written beside it, then renamed, so a reader never sees half of it. */
export async function writeTableBuild(lake: Lake, build: TableBuild): Promise<void> {
  const file = lake.path(tableBuildKey(build.table_name));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(`${file}.tmp`, `${JSON.stringify(build)}\n`);
  await rename(`${file}.tmp`, file);
}
