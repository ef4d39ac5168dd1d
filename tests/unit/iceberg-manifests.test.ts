import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { DuckDBInstance } from '@duckdb/node-api';
import { Schema } from 'avsc';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIGINT_LONG, avroType, readAvroFile } from '../../src/iceberg/avro-file';
import { EntryStatus, FileContent, IcebergScanError, snapshotDataFiles } from '../../src/iceberg/manifests';
import { icebergScanSql } from '../../src/iceberg/scan-sql';
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

// Real Avro files shaped as Iceberg writes them (tests/helpers/iceberg-files.ts: the spec's manifest_file and
// manifest_entry schemas with their field ids, deflate), and real Parquet data files, in a folder for the bucket.

let bucket: IcebergBucket;
beforeEach(() => {
  bucket = new IcebergBucket(mkdtempSync(path.join(tmpdir(), 'stedi-iceberg-manifests-')));
});
afterEach(() => rmSync(bucket.dir, { recursive: true, force: true }));

const resolve = (uri: string) => bucket.resolve(uri);
const writeAvro = (key: string, schema: Schema, records: object[], meta: Record<string, string>) =>
  bucket.writeAvro(key, schema, records, meta);
const writeParquet = (files: Record<string, number>) => bucket.writeParquet(files);

describe('snapshotDataFiles: the live data files of an Iceberg snapshot, from its Avro manifests', () => {
  it('reads the manifest list, then each manifest: ADDED and EXISTING entries are live, DELETED ones are not', async () => {
    await writeParquet({ 'data/a.parquet': 3, 'data/b.parquet': 2, 'data/d.parquet': 5 });
    const m0 = await writeAvro(
      'metadata/m0.avro',
      MANIFEST_ENTRY,
      // c.parquet was removed by this snapshot: it need not be there any more.
      [
        entry(EntryStatus.ADDED, 'data/a.parquet', 3),
        entry(EntryStatus.EXISTING, 'data/b.parquet', 2),
        entry(EntryStatus.DELETED, 'data/c.parquet', 4),
      ],
      manifestMeta('data'),
    );
    const m1 = await writeAvro(
      'metadata/m1.avro',
      MANIFEST_ENTRY,
      [entry(EntryStatus.ADDED, 'data/d.parquet', 5)],
      manifestMeta('data'),
    );
    const list = await writeAvro(
      'metadata/snap-2.avro',
      MANIFEST_FILE,
      [manifestFile(m0, FileContent.DATA), manifestFile(m1, FileContent.DATA)],
      listMeta,
    );

    const files = await snapshotDataFiles('accelerometer_trusted', list, resolve);
    expect(files).toEqual([
      { uri: `${BUCKET}/data/a.parquet`, file: resolve(`${BUCKET}/data/a.parquet`), records: 3 },
      { uri: `${BUCKET}/data/b.parquet`, file: resolve(`${BUCKET}/data/b.parquet`), records: 2 },
      { uri: `${BUCKET}/data/d.parquet`, file: resolve(`${BUCKET}/data/d.parquet`), records: 5 },
    ]);

    // The header is what an Iceberg reader reads: the codec and the schema with its field ids.
    const avro = await readAvroFile(resolve(list));
    expect(avro.meta['avro.codec']).toBe('deflate');
    expect(avro.schema.fields.find((f) => f.name === 'content')?.['field-id']).toBe(517);

    // Read through DuckDB as the --as-of view binds it: 3 + 2 + 5 rows, the schema's columns.
    const db = await DuckDBInstance.create(':memory:');
    const connection = await db.connect();
    try {
      const sql = icebergScanSql(
        files.map((f) => f.file),
        [
          { id: 1, name: 'user', type: 'string' },
          { id: 2, name: 'reading_date', type: 'string' },
        ],
      );
      const reader = await connection.runAndReadAll(
        `select count(*)::int as n, count(distinct "user")::int as users from (${sql})`,
      );
      expect(reader.getRowObjects()).toEqual([{ n: 10, users: 5 }]);
      const empty = await connection.runAndReadAll(
        `select column_name, column_type from (describe ${icebergScanSql(
          [],
          [
            { id: 1, name: 'x', type: 'long' },
            { id: 2, name: 'd', type: 'decimal(9, 2)' },
          ],
        )})`,
      );
      expect(empty.getRowObjects()).toEqual([
        { column_name: 'x', column_type: 'BIGINT' },
        { column_name: 'd', column_type: 'DECIMAL(9,2)' },
      ]);
    } finally {
      connection.closeSync();
      db.closeSync();
    }
  });

  it('refuses a snapshot whose manifest list names a delete manifest (content 1), naming the table and the manifest', async () => {
    await writeParquet({ 'data/a.parquet': 3 });
    const data = await writeAvro(
      'metadata/m0.avro',
      MANIFEST_ENTRY,
      [entry(EntryStatus.ADDED, 'data/a.parquet', 3)],
      manifestMeta('data'),
    );
    const deletes = await writeAvro(
      'metadata/m1.avro',
      MANIFEST_ENTRY,
      [entry(EntryStatus.ADDED, 'data/a-deletes.parquet', 1, FileContent.POSITION_DELETES)],
      manifestMeta('deletes'),
    );
    const list = await writeAvro(
      'metadata/snap-2.avro',
      MANIFEST_FILE,
      [manifestFile(data, FileContent.DATA), manifestFile(deletes, 1)],
      listMeta,
    );
    const read = snapshotDataFiles('customer_trusted', list, resolve);
    await expect(read).rejects.toThrow(IcebergScanError);
    await expect(read).rejects.toThrow(
      `table customer_trusted: manifest ${deletes} (in ${list}) holds delete files (content 1)`,
    );
  });

  it('refuses a delete file listed in a data manifest (data_file content 2), naming the file', async () => {
    await writeParquet({ 'data/a.parquet': 3 });
    const manifest = await writeAvro(
      'metadata/m0.avro',
      MANIFEST_ENTRY,
      [
        entry(EntryStatus.ADDED, 'data/a.parquet', 3),
        entry(EntryStatus.ADDED, 'data/eq-deletes.parquet', 1, FileContent.EQUALITY_DELETES),
      ],
      manifestMeta('data'),
    );
    const list = await writeAvro('metadata/snap-2.avro', MANIFEST_FILE, [manifestFile(manifest, 0)], listMeta);
    await expect(snapshotDataFiles('customer_trusted', list, resolve)).rejects.toThrow(
      `table customer_trusted: manifest ${manifest} lists the delete file ${BUCKET}/data/eq-deletes.parquet (content 2)`,
    );
  });

  it('refuses a live data file missing from the bucket, and a missing manifest, naming the table and the file', async () => {
    await writeParquet({ 'data/a.parquet': 3 });
    const manifest = await writeAvro(
      'metadata/m0.avro',
      MANIFEST_ENTRY,
      [entry(EntryStatus.ADDED, 'data/a.parquet', 3), entry(EntryStatus.EXISTING, 'data/gone.parquet', 2)],
      manifestMeta('data'),
    );
    const list = await writeAvro('metadata/snap-2.avro', MANIFEST_FILE, [manifestFile(manifest, 0)], listMeta);
    await expect(snapshotDataFiles('step_trainer_trusted', list, resolve)).rejects.toThrow(
      `table step_trainer_trusted: data file ${BUCKET}/data/gone.parquet is missing`,
    );

    const orphan = await writeAvro(
      'metadata/snap-3.avro',
      MANIFEST_FILE,
      [manifestFile(`${BUCKET}/metadata/never-written.avro`, 0)],
      listMeta,
    );
    await expect(snapshotDataFiles('step_trainer_trusted', orphan, resolve)).rejects.toThrow(
      `table step_trainer_trusted: manifest ${BUCKET}/metadata/never-written.avro is missing`,
    );
  });

  it('reads longs beyond 2^53 (snapshot ids) exactly, as BigInt', () => {
    const type = avroType({ type: 'record', name: 'r', fields: [{ name: 'id', type: 'long' }] });
    const id = 2n ** 62n + 1n;
    expect((type.fromBuffer(type.toBuffer({ id })) as { id: bigint }).id).toBe(id);
    expect(BIGINT_LONG.fromBuffer(BIGINT_LONG.toBuffer(-5n))).toBe(-5n);
  });
});
