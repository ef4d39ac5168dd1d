import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { TableInput } from '@aws-sdk/client-glue';
import { IcebergMetadataSource } from '../iceberg/table-metadata';

/**
 * The Glue engine's results lake (`<lake>/_glue`) keeps the bucket the Glue jobs wrote between runs in
 * `_bucket-state/`: every object under `bucket/<key>`, as S3 stored it, and the Iceberg tables' Catalog entries
 * (GetTable's TableInput, with the `metadata_location` parameter Iceberg's GlueCatalog commits to) in
 * `iceberg-tables.json`. So a table's current metadata is read there, with no moto server and no Spark.
 */

/** Inside the results lake: the Glue engine's bucket between runs (every object but landing) and its catalog. */
export const STATE_DIR = '_bucket-state';
export const STATE_ICEBERG = 'iceberg-tables.json';
export const STATE_BUCKET = 'bucket';

/** The current metadata of the Iceberg tables a Glue engine's results lake keeps (see above). */
export class BucketStateMetadataSource implements IcebergMetadataSource {
  constructor(private readonly stateDir: string) {}

  /** The source of a Glue engine's results lake, or undefined when `lakeDir` is not one (no Iceberg tables kept). */
  static of(lakeDir: string): BucketStateMetadataSource | undefined {
    const state = path.join(lakeDir, STATE_DIR);
    return existsSync(path.join(state, STATE_ICEBERG)) ? new BucketStateMetadataSource(state) : undefined;
  }

  currentMetadata(table: string): Promise<string | undefined> {
    return Promise.resolve(table).then((name) => this.read(name));
  }

  /** The kept bucket's folder: every object at `<folder>/<key>`. */
  get bucketDir(): string {
    return path.join(this.stateDir, STATE_BUCKET);
  }

  /** Where the kept bucket holds the object an s3:// location names (a manifest, a data file). */
  localPath(location: string): string {
    const key = objectKey(location);
    if (!key) throw new Error(`not an s3:// address: ${location}`);
    if (key.split('/').includes('..')) throw new Error(`a key with a .. segment: ${location}`);
    return path.join(this.bucketDir, ...key.split('/'));
  }

  private read(table: string): string | undefined {
    const catalog = path.join(this.stateDir, STATE_ICEBERG);
    const entries = JSON.parse(readFileSync(catalog, 'utf8')) as TableInput[];
    const location = entries.find((e) => e.Name === table)?.Parameters?.metadata_location;
    if (location === undefined) return undefined;
    const key = objectKey(location);
    if (!key) throw new Error(`${catalog}: ${table}'s metadata_location is not an s3:// address: ${location}`);
    const file = this.localPath(location);
    if (!existsSync(file))
      throw new Error(`${catalog}: ${table}'s metadata_location ${location} is not in the kept bucket (${file})`);
    const bytes = readFileSync(file);
    // write.metadata.compression-codec=gzip names the file *.gz.metadata.json (Iceberg table properties).
    return (key.endsWith('.gz.metadata.json') ? gunzipSync(bytes) : bytes).toString('utf8');
  }
}

/** The key of an s3:// (or s3a://) location; the bucket is the engine's one data bucket. */
function objectKey(location: string): string | undefined {
  return /^s3a?:\/\/[^/]+\/(.+)$/.exec(location)?.[1];
}
