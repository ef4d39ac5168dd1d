import { IcebergSnapshot, snapshotsAsOf } from '../aws/iceberg-history';
import { IcebergScanError, snapshotDataFiles } from '../iceberg/manifests';
import { icebergScanSql } from '../iceberg/scan-sql';
import { mainBranchSnapshots, snapshotToRead } from '../iceberg/table-metadata';
import { BucketStateMetadataSource } from './iceberg-history';

/**
 * `stedi query --as-of RUN` on a Glue engine's results lake: each Iceberg table as run RUN left it, read
 * from its snapshot as Athena's `FOR VERSION AS OF` would, not from the results lake's own Parquet copies.
 * The snapshot is picked as on AWS (snapshotsAsOf: the one whose summary names the run, else the newest
 * committed at or before the run's last commit), then its live data files are read from its manifests in
 * the bucket the engine keeps (manifests.ts).
 */

/** A table's view as of the run: the SELECT over its snapshot's files and the folder those are in. */
export interface IcebergTableView {
  snapshotId: string;
  sql: string;
  /** The folder DuckDB must be allowed to read: the kept bucket. */
  reads: string[];
  files: number;
}

/**
 * The tables' views as run `runId` left them: null for a table with no snapshot yet at that run. Throws
 * UnknownRunError (aws/iceberg-history.ts) when no snapshot of the tables names the run, IcebergScanError
 * when a chosen snapshot cannot be read (delete files, a missing file, rows that do not add up).
 */
export async function icebergTablesAsOf(
  source: BucketStateMetadataSource,
  tables: readonly string[],
  runId: string,
): Promise<Map<string, IcebergTableView | null>> {
  const metadata = new Map<string, string>();
  const snapshots: IcebergSnapshot[] = [];
  for (const table of tables) {
    const text = await source.currentMetadata(table);
    if (text === undefined) continue;
    metadata.set(table, text);
    snapshots.push(...mainBranchSnapshots(text).map((s) => ({ table, ...s })));
  }
  snapshots.sort((a, b) => b.committedAt.localeCompare(a.committedAt));
  const chosen = snapshotsAsOf(snapshots, [...tables], runId);
  const views = new Map<string, IcebergTableView | null>();
  for (const [table, snapshotId] of chosen) {
    if (snapshotId === null) {
      views.set(table, null);
      continue;
    }
    const toRead = snapshotToRead(metadata.get(table)!, snapshotId);
    const files = await snapshotDataFiles(table, toRead.manifestList, (uri) => source.localPath(uri));
    const expected = snapshots.find((s) => s.table === table && s.snapshotId === snapshotId)?.rows ?? null;
    const counted = files.reduce((sum, f) => sum + f.records, 0);
    // The summary's total-records and the manifests' record counts describe the same files.
    if (expected !== null && expected !== counted)
      throw new IcebergScanError(
        `table ${table}: snapshot ${snapshotId} records ${expected} rows (total-records) but its live data files hold ${counted}`,
      );
    views.set(table, {
      snapshotId,
      sql: icebergScanSql(
        files.map((f) => f.file),
        toRead.columns,
      ),
      reads: [source.bucketDir],
      files: files.length,
    });
  }
  return views;
}
