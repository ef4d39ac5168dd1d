import { expect } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { BucketStateMetadataSource, STATE_DIR, STATE_ICEBERG } from '../../src/glue-engine/iceberg-history';
import { icebergTableHistory } from '../../src/iceberg/table-metadata';

// The Glue engine's results lake as the engine leaves it (src/glue-engine/engine.ts saveState): the bucket's
// objects under _bucket-state/bucket/<key>, the Catalog entries (TableInput) in iceberg-tables.json.

/** Table metadata (Iceberg spec v2) of two commits on main, ids beyond 2^53 as Iceberg writes them. */
const METADATA = `{"format-version":2,"table-uuid":"u","location":"s3://b/customer/trusted",
  "current-snapshot-id":9007199254740993,
  "refs":{"main":{"snapshot-id":9007199254740993,"type":"branch"}},
  "snapshots":[
    {"snapshot-id":4611686018427387905,"timestamp-ms":1796619600000,
     "summary":{"operation":"overwrite","stedi.run-id":"run-1","total-records":"10"}},
    {"snapshot-id":9007199254740993,"parent-snapshot-id":4611686018427387905,"timestamp-ms":1796623200000,
     "summary":{"operation":"overwrite","stedi.run-id":"run-2","total-records":"12"}}]}`;

let lake: string;
beforeEach(() => {
  lake = mkdtempSync(path.join(tmpdir(), 'stedi-bucket-state-'));
});
afterEach(() => rmSync(lake, { recursive: true, force: true }));

function keep(key: string, body: string | Buffer, entries: { Name: string; Parameters?: Record<string, string> }[]) {
  const state = path.join(lake, STATE_DIR);
  const file = path.join(state, 'bucket', ...key.split('/'));
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, body);
  writeFileSync(path.join(state, STATE_ICEBERG), JSON.stringify(entries));
}

describe("BucketStateMetadataSource: the Glue engine lake's Iceberg metadata", () => {
  it("reads the file the Catalog entry's metadata_location names in the kept bucket: main's snapshots, newest first", async () => {
    const key = 'customer/trusted/metadata/00001-a.metadata.json';
    keep(key, METADATA, [
      {
        Name: 'customer_trusted',
        Parameters: { table_type: 'ICEBERG', metadata_location: `s3://stedi-bucket/${key}` },
      },
      { Name: 'customer_curated', Parameters: { table_type: 'ICEBERG' } },
    ]);
    const source = BucketStateMetadataSource.of(lake)!;
    const history = await icebergTableHistory(source, 'customer_trusted');
    expect(history?.map((s) => [s.snapshotId, s.runId, s.rows])).toEqual([
      ['9007199254740993', 'run-2', 12],
      ['4611686018427387905', 'run-1', 10],
    ]);
    // A table without metadata_location (never committed) and one not kept have no history.
    expect(await icebergTableHistory(source, 'customer_curated')).toBeUndefined();
    expect(await icebergTableHistory(source, 'step_trainer_trusted')).toBeUndefined();
  });

  it('reads gzip metadata (write.metadata.compression-codec=gzip names it *.gz.metadata.json)', async () => {
    const key = 'customer/trusted/metadata/00001-a.gz.metadata.json';
    keep(key, gzipSync(METADATA), [{ Name: 'customer_trusted', Parameters: { metadata_location: `s3://b/${key}` } }]);
    const history = await icebergTableHistory(BucketStateMetadataSource.of(lake)!, 'customer_trusted');
    expect(history?.[0]?.runId).toBe('run-2');
  });

  it('names the entry when its metadata file is not in the kept bucket', async () => {
    keep('other', '', [
      {
        Name: 'customer_trusted',
        Parameters: { metadata_location: 's3://b/customer/trusted/metadata/gone.metadata.json' },
      },
    ]);
    await expect(BucketStateMetadataSource.of(lake)!.currentMetadata('customer_trusted')).rejects.toThrow(
      /customer_trusted's metadata_location s3:\/\/b\/customer\/trusted\/metadata\/gone\.metadata\.json is not in the kept bucket/,
    );
  });

  it("is no source for a lake without the Glue engine's kept Iceberg tables (a DuckDB lake)", () => {
    expect(BucketStateMetadataSource.of(lake)).toBeUndefined();
  });
});
