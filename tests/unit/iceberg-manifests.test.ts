import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { DuckDBInstance } from '@duckdb/node-api';
import { Schema, streams } from 'avsc';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { BIGINT_LONG, avroType, readAvroFile } from '../../src/iceberg/avro-file';
import { EntryStatus, FileContent, IcebergScanError, snapshotDataFiles } from '../../src/iceberg/manifests';
import { icebergScanSql } from '../../src/iceberg/scan-sql';
import { sqlString } from '../../src/sql/quote';

// Iceberg-shaped Avro files, written with avsc as Iceberg's writers lay them out (table spec v2,
// https://iceberg.apache.org/spec/, "Manifest Lists" and "Manifests"): the writer's schema with its
// field-id attributes in the header's avro.schema, deflate blocks, Iceberg's keys in the file metadata.

/** manifest_file (spec, "Manifest Lists", v2): the fields a v2 writer writes. */
const MANIFEST_FILE: Schema = {
  type: 'record',
  name: 'manifest_file',
  fields: [
    { name: 'manifest_path', type: 'string', 'field-id': 500 },
    { name: 'manifest_length', type: 'long', 'field-id': 501 },
    { name: 'partition_spec_id', type: 'int', 'field-id': 502 },
    { name: 'content', type: 'int', 'field-id': 517 },
    { name: 'sequence_number', type: 'long', 'field-id': 515 },
    { name: 'min_sequence_number', type: 'long', 'field-id': 516 },
    { name: 'added_snapshot_id', type: 'long', 'field-id': 503 },
    { name: 'added_files_count', type: 'int', 'field-id': 504 },
    { name: 'existing_files_count', type: 'int', 'field-id': 505 },
    { name: 'deleted_files_count', type: 'int', 'field-id': 506 },
    { name: 'added_rows_count', type: 'long', 'field-id': 512 },
    { name: 'existing_rows_count', type: 'long', 'field-id': 513 },
    { name: 'deleted_rows_count', type: 'long', 'field-id': 514 },
    { name: 'key_metadata', type: ['null', 'bytes'], default: null, 'field-id': 519 },
  ],
} as unknown as Schema;

/** manifest_entry (spec, "Manifests", v2) of a table partitioned by identity(reading_date). */
const MANIFEST_ENTRY: Schema = {
  type: 'record',
  name: 'manifest_entry',
  fields: [
    { name: 'status', type: 'int', 'field-id': 0 },
    { name: 'snapshot_id', type: ['null', 'long'], default: null, 'field-id': 1 },
    { name: 'sequence_number', type: ['null', 'long'], default: null, 'field-id': 3 },
    { name: 'file_sequence_number', type: ['null', 'long'], default: null, 'field-id': 4 },
    {
      name: 'data_file',
      'field-id': 2,
      type: {
        type: 'record',
        name: 'r2',
        fields: [
          { name: 'content', type: 'int', 'field-id': 134 },
          { name: 'file_path', type: 'string', 'field-id': 100 },
          { name: 'file_format', type: 'string', 'field-id': 101 },
          {
            name: 'partition',
            'field-id': 102,
            type: {
              type: 'record',
              name: 'r102',
              fields: [{ name: 'reading_date', type: ['null', 'string'], default: null, 'field-id': 1000 }],
            },
          },
          { name: 'record_count', type: 'long', 'field-id': 103 },
          { name: 'file_size_in_bytes', type: 'long', 'field-id': 104 },
          {
            name: 'column_sizes',
            'field-id': 108,
            default: null,
            type: [
              'null',
              {
                type: 'array',
                logicalType: 'map',
                items: {
                  type: 'record',
                  name: 'k117_v118',
                  fields: [
                    { name: 'key', type: 'int', 'field-id': 117 },
                    { name: 'value', type: 'long', 'field-id': 118 },
                  ],
                },
              },
            ],
          },
        ],
      },
    },
  ],
} as unknown as Schema;

const BUCKET = 's3://stedi-data-bucket';
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'stedi-iceberg-manifests-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The kept bucket's copy of an s3:// location. */
const resolve = (uri: string) => path.join(dir, ...uri.slice(BUCKET.length + 1).split('/'));

/** Writes an Avro object container file at the bucket key, as Iceberg does (deflate, its metadata keys). */
async function writeAvro(key: string, schema: Schema, records: object[], meta: Record<string, string>) {
  const file = resolve(`${BUCKET}/${key}`);
  mkdirSync(path.dirname(file), { recursive: true });
  const metadata = Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, Buffer.from(v)]));
  const encoder = new streams.BlockEncoder(schema, { codec: 'deflate', metadata } as object);
  const out = encoder.pipe(createWriteStream(file));
  for (const record of records) encoder.write(record);
  encoder.end();
  await finished(out);
  return `${BUCKET}/${key}`;
}

function manifestFile(manifestPath: string, content: number) {
  return {
    manifest_path: manifestPath,
    manifest_length: 4096,
    partition_spec_id: 0,
    content,
    sequence_number: 2,
    min_sequence_number: 1,
    added_snapshot_id: 2,
    added_files_count: 1,
    existing_files_count: 1,
    deleted_files_count: 1,
    added_rows_count: 3,
    existing_rows_count: 2,
    deleted_rows_count: 4,
    key_metadata: null,
  };
}

function entry(status: number, file: string, records: number, content: number = FileContent.DATA) {
  return {
    status,
    snapshot_id: 2,
    sequence_number: status === EntryStatus.ADDED ? null : 1,
    file_sequence_number: status === EntryStatus.ADDED ? null : 1,
    data_file: {
      content,
      file_path: `${BUCKET}/${file}`,
      file_format: 'PARQUET',
      partition: { reading_date: '2022-06-18' },
      record_count: records,
      file_size_in_bytes: 1024,
      column_sizes: [{ key: 1, value: 100 }],
    },
  };
}

const manifestMeta = (content: 'data' | 'deletes') => ({
  'format-version': '2',
  'partition-spec-id': '0',
  'partition-spec': '[{"name":"reading_date","transform":"identity","source-id":2,"field-id":1000}]',
  content,
});
const listMeta = { 'format-version': '2', 'snapshot-id': '2', 'parent-snapshot-id': '1', 'sequence-number': '2' };

/** Real Parquet data files of `rows` rows each, where the manifests say they are. */
async function writeParquet(files: Record<string, number>) {
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  try {
    for (const [key, rows] of Object.entries(files)) {
      const file = resolve(`${BUCKET}/${key}`);
      mkdirSync(path.dirname(file), { recursive: true });
      await connection.run(
        `copy (select 'user' || i as "user", '2022-06-18' as reading_date from range(${rows}) t(i)) to ${sqlString(file)} (format parquet)`,
      );
    }
  } finally {
    connection.closeSync();
    db.closeSync();
  }
}

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
