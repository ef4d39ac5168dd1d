import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { DuckDBInstance } from '@duckdb/node-api';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { UnknownRunError } from '../../src/aws/iceberg-history';
import { icebergTablesAsOf } from '../../src/glue-engine/iceberg-as-of';
import {
  BucketStateMetadataSource,
  STATE_BUCKET,
  STATE_DIR,
  STATE_ICEBERG,
} from '../../src/glue-engine/iceberg-history';
import { IcebergScanError } from '../../src/iceberg/manifests';
import {
  BUCKET,
  IcebergBucket,
  MANIFEST_ENTRY,
  MANIFEST_FILE,
  entry,
  listMeta,
  manifestFile,
  manifestMeta,
} from '../helpers/iceberg-files';

// A Glue engine's results lake as the engine keeps it (iceberg-history.ts: the bucket under
// _bucket-state/bucket, the Catalog entries in iceberg-tables.json), holding three Iceberg tables that two
// runs committed to: what `stedi query --as-of RUN --lake <lake>/_glue` reads, without Spark.

const RUN_1 = Date.parse('2026-12-07T10:00:00Z');
const RUN_2 = Date.parse('2026-12-07T11:00:00Z');

let lake: string;
let bucket: IcebergBucket;
beforeEach(() => {
  lake = mkdtempSync(path.join(tmpdir(), 'stedi-iceberg-as-of-'));
  bucket = new IcebergBucket(path.join(lake, STATE_DIR, STATE_BUCKET));
});
afterEach(() => rmSync(lake, { recursive: true, force: true }));

interface Commit {
  /** A snapshot id beyond 2^53, as Iceberg draws them. */
  id: string;
  runId: string;
  at: number;
  totalRecords: number;
  /** The manifests' entries: [status, data file key, rows]. */
  entries: [number, string, number][];
}

/** Writes a table's data files, manifests, manifest lists and metadata JSON: its commits on main, oldest first. */
async function table(name: string, commits: Commit[]): Promise<{ Name: string; Parameters: Record<string, string> }> {
  const snapshots: string[] = [];
  for (const [i, c] of commits.entries()) {
    await bucket.writeParquet(Object.fromEntries(c.entries.filter(([s]) => s !== 2).map(([, key, n]) => [key, n])));
    const manifest = await bucket.writeAvro(
      `${name}/metadata/m-${c.id}.avro`,
      MANIFEST_ENTRY,
      c.entries.map(([status, key, n]) => entry(status, key, n)),
      manifestMeta('data'),
    );
    const list = await bucket.writeAvro(
      `${name}/metadata/snap-${c.id}.avro`,
      MANIFEST_FILE,
      [manifestFile(manifest, 0)],
      {
        ...listMeta,
        'snapshot-id': c.id,
      },
    );
    const parent = i > 0 ? `"parent-snapshot-id":${commits[i - 1]!.id},` : '';
    snapshots.push(
      `{"snapshot-id":${c.id},${parent}"sequence-number":${i + 1},"timestamp-ms":${c.at},"manifest-list":"${list}",` +
        `"schema-id":0,"summary":{"operation":"overwrite","stedi.run-id":"${c.runId}","total-records":"${c.totalRecords}"}}`,
    );
  }
  const head = commits.at(-1)!.id;
  const metadata =
    `{"format-version":2,"location":"${BUCKET}/${name}","current-schema-id":0,` +
    `"schemas":[{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"user","required":false,"type":"string"},` +
    `{"id":2,"name":"reading_date","required":false,"type":"string"}]}],` +
    `"current-snapshot-id":${head},"refs":{"main":{"snapshot-id":${head},"type":"branch"}},"snapshots":[${snapshots.join(',')}]}`;
  const key = `${name}/metadata/0000${commits.length}-m.metadata.json`;
  writeFileSync(bucket.resolve(`${BUCKET}/${key}`), metadata);
  return { Name: name, Parameters: { table_type: 'ICEBERG', metadata_location: `${BUCKET}/${key}` } };
}

/**
 * customer_trusted rebuilt by both runs (run-2's overwrite deletes a.parquet, adds b.parquet); accelerometer_trusted
 * skipped by run-2; step_trainer_trusted first made by run-2.
 */
async function twoRuns(customerTotalRecords = 3) {
  const entries = [
    await table('customer_trusted', [
      {
        id: '4611686018427387905',
        runId: 'run-1',
        at: RUN_1,
        totalRecords: customerTotalRecords,
        entries: [[1, 'c/a.parquet', 3]],
      },
      {
        id: '9007199254740993',
        runId: 'run-2',
        at: RUN_2,
        totalRecords: 5,
        entries: [
          [2, 'c/a.parquet', 3],
          [1, 'c/b.parquet', 5],
        ],
      },
    ]),
    await table('accelerometer_trusted', [
      {
        id: '5764607523034234881',
        runId: 'run-1',
        at: RUN_1 + 1000,
        totalRecords: 2,
        entries: [[1, 'a/c.parquet', 2]],
      },
    ]),
    await table('step_trainer_trusted', [
      {
        id: '6917529027641081857',
        runId: 'run-2',
        at: RUN_2 + 1000,
        totalRecords: 4,
        entries: [[1, 's/d.parquet', 4]],
      },
    ]),
  ];
  writeFileSync(path.join(lake, STATE_DIR, STATE_ICEBERG), JSON.stringify(entries));
  return BucketStateMetadataSource.of(lake)!;
}

const TABLES = ['customer_trusted', 'accelerometer_trusted', 'step_trainer_trusted'];

/** Each table's row count through its view, or null for a table with none. */
async function counts(views: Awaited<ReturnType<typeof icebergTablesAsOf>>) {
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  try {
    const out: Record<string, [string, number] | null> = {};
    for (const [name, view] of views) {
      if (!view) {
        out[name] = null;
        continue;
      }
      const reader = await connection.runAndReadAll(`select count(*)::int as n from (${view.sql})`);
      out[name] = [view.snapshotId, reader.getRowObjects()[0]!.n as number];
      expect(view.reads).toEqual([bucket.dir]);
    }
    return out;
  } finally {
    connection.closeSync();
    db.closeSync();
  }
}

describe('icebergTablesAsOf: the Glue engine lake read as a run left it, from Iceberg snapshots', () => {
  it("picks each table's snapshot as on AWS and reads its live data files: the run's own, else the newest before it", async () => {
    const source = await twoRuns();
    expect(await counts(await icebergTablesAsOf(source, TABLES, 'run-1'))).toEqual({
      customer_trusted: ['4611686018427387905', 3],
      accelerometer_trusted: ['5764607523034234881', 2],
      // First made by run-2: no snapshot as run-1 left the lake.
      step_trainer_trusted: null,
    });
    expect(await counts(await icebergTablesAsOf(source, TABLES, 'run-2'))).toEqual({
      // The overwrite's DELETED entry (a.parquet) is not read, only its ADDED b.parquet.
      customer_trusted: ['9007199254740993', 5],
      // Skipped by run-2: the snapshot run-1 left.
      accelerometer_trusted: ['5764607523034234881', 2],
      step_trainer_trusted: ['6917529027641081857', 4],
    });
  });

  it('throws UnknownRunError for a run no snapshot names', async () => {
    const source = await twoRuns();
    await expect(icebergTablesAsOf(source, TABLES, 'run-0')).rejects.toThrow(UnknownRunError);
  });

  it("refuses a snapshot whose live files do not add up to its summary's total-records", async () => {
    const source = await twoRuns(7);
    await expect(icebergTablesAsOf(source, TABLES, 'run-1')).rejects.toThrow(IcebergScanError);
    await expect(icebergTablesAsOf(source, TABLES, 'run-1')).rejects.toThrow(
      'table customer_trusted: snapshot 4611686018427387905 records 7 rows (total-records) but its live data files hold 3',
    );
  });
});
