import { DuckDBInstance } from '@duckdb/node-api';
import { Schema, streams } from 'avsc';
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { EntryStatus, FileContent } from '../../src/iceberg/manifests';
import { sqlString } from '../../src/sql/quote';

// Iceberg-shaped Avro files, written with avsc as Iceberg's writers lay them out (table spec v2,
// https://iceberg.apache.org/spec/, "Manifest Lists" and "Manifests"): the writer's schema with its
// field-id attributes in the header's avro.schema, deflate blocks, Iceberg's keys in the file metadata.

export const BUCKET = 's3://stedi-data-bucket';

/** manifest_file (spec, "Manifest Lists", v2): the fields a v2 writer writes. */
export const MANIFEST_FILE: Schema = {
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
export const MANIFEST_ENTRY: Schema = {
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

/** A local folder standing for the data bucket: each object at <dir>/<key>. */
export class IcebergBucket {
  constructor(readonly dir: string) {}

  /** The local copy of an s3:// location. */
  resolve(uri: string): string {
    return path.join(this.dir, ...uri.slice(BUCKET.length + 1).split('/'));
  }

  /** Writes an Avro object container file at the key, as Iceberg does (deflate, its metadata keys); its s3:// URI. */
  async writeAvro(key: string, schema: Schema, records: object[], meta: Record<string, string>): Promise<string> {
    const file = this.resolve(`${BUCKET}/${key}`);
    mkdirSync(path.dirname(file), { recursive: true });
    const metadata = Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, Buffer.from(v)]));
    const encoder = new streams.BlockEncoder(schema, { codec: 'deflate', metadata } as object);
    const out = encoder.pipe(createWriteStream(file));
    for (const record of records) encoder.write(record);
    encoder.end();
    await finished(out);
    return `${BUCKET}/${key}`;
  }

  /** Real Parquet data files of `rows` rows each (columns user, reading_date) at the keys. */
  async writeParquet(files: Record<string, number>): Promise<void> {
    const db = await DuckDBInstance.create(':memory:');
    const connection = await db.connect();
    try {
      for (const [key, rows] of Object.entries(files)) {
        const file = this.resolve(`${BUCKET}/${key}`);
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
}

export function manifestFile(manifestPath: string, content: number) {
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

export function entry(status: number, file: string, records: number, content: number = FileContent.DATA) {
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

export const manifestMeta = (content: 'data' | 'deletes') => ({
  'format-version': '2',
  'partition-spec-id': '0',
  'partition-spec': '[{"name":"reading_date","transform":"identity","source-id":2,"field-id":1000}]',
  content,
});
export const listMeta = {
  'format-version': '2',
  'snapshot-id': '2',
  'parent-snapshot-id': '1',
  'sequence-number': '2',
};
