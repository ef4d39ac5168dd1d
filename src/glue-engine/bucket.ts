import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, _Object } from '@aws-sdk/client-s3';
import { BatchCreatePartitionCommand, GetPartitionsCommand, GlueClient, Partition } from '@aws-sdk/client-glue';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DATASETS, DERIVED_TABLES, landingPrefix } from '../definition/layout';
import { Lake } from '../lake/lake';
import { LocalStack } from './stack';
import { restoreIcebergTables, saveIcebergTables } from './iceberg-tables';
import { STATE_BUCKET, STATE_DIR, STATE_ICEBERG } from './iceberg-history';

// The Glue engine's data bucket on the moto server (S3 reads and writes) and what it keeps of the bucket and its
// catalog partitions between runs, in the results lake's _bucket-state/ (engine.ts).

/** Inside STATE_DIR, beside the bucket and the Iceberg tables' entries (iceberg-history.ts): catalog partitions. */
const STATE_PARTITIONS = 'partitions.json';

/** The stack's data bucket and Glue database on the moto server, as the engine reads and keeps them. */
export class DataBucket {
  constructor(
    private readonly s3: S3Client,
    private readonly glue: GlueClient,
    private readonly stack: LocalStack,
  ) {}

  async readJson<T>(key: string): Promise<T | undefined> {
    try {
      const { Body } = await this.s3.send(new GetObjectCommand({ Bucket: this.stack.dataBucket, Key: key }));
      return JSON.parse(await Body!.transformToString('utf8')) as T;
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async list(prefix: string): Promise<_Object[]> {
    const objects: _Object[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.stack.dataBucket, Prefix: prefix, ContinuationToken }),
      );
      objects.push(...(page.Contents ?? []));
      ContinuationToken = page.NextContinuationToken;
    } while (ContinuationToken);
    return objects;
  }

  async download(key: string, file: string): Promise<void> {
    const { Body } = await this.s3.send(new GetObjectCommand({ Bucket: this.stack.dataBucket, Key: key }));
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, await Body!.transformToByteArray());
  }

  async upload(key: string, body: Buffer): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.stack.dataBucket, Key: key, Body: body }));
  }

  /** Downloads every object under a prefix of the bucket into a folder, keeping the keys' rest as paths. */
  async downloadPrefix(prefix: string, dir: string): Promise<string[]> {
    const files: string[] = [];
    for (const object of await this.list(prefix)) {
      const file = path.join(dir, ...object.Key!.slice(prefix.length).split('/'));
      await this.download(object.Key!, file);
      files.push(file);
    }
    return files;
  }

  async partitions(table: string): Promise<Partition[]> {
    const list: Partition[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.glue.send(
        new GetPartitionsCommand({ DatabaseName: this.stack.databaseName, TableName: table, NextToken }),
      );
      list.push(...(page.Partitions ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return list;
  }

  /** Puts back the bucket and catalog partitions the previous Glue run on this lake left. */
  async restoreState(lake: Lake): Promise<void> {
    const state = lake.path(STATE_DIR);
    const bucket = path.join(state, STATE_BUCKET);
    if (!existsSync(bucket)) return;
    await restoreIcebergTables(this.glue, this.stack.databaseName, path.join(state, STATE_ICEBERG));
    await inBatches(filesUnder(bucket), (file) =>
      this.upload(path.relative(bucket, file).split(path.sep).join('/'), readFileSync(file)),
    );
    const partitions = JSON.parse(readFileSync(path.join(state, STATE_PARTITIONS), 'utf8')) as Record<
      string,
      Partition[]
    >;
    for (const [table, list] of Object.entries(partitions))
      for (let i = 0; i < list.length; i += 100)
        await this.glue.send(
          new BatchCreatePartitionCommand({
            DatabaseName: this.stack.databaseName,
            TableName: table,
            PartitionInputList: list.slice(i, i + 100).map((p) => ({
              Values: p.Values,
              StorageDescriptor: p.StorageDescriptor,
              Parameters: p.Parameters,
            })),
          }),
        );
  }

  /** Keeps every object of the bucket but landing (the lake has those) and the catalog partitions for the next run. */
  async saveState(lake: Lake): Promise<void> {
    const next = lake.path(`${STATE_DIR}.new-${process.pid}`);
    rmSync(next, { recursive: true, force: true });
    const landing = DATASETS.map(landingPrefix);
    for (const object of await this.list(''))
      if (!landing.some((p) => object.Key!.startsWith(p)))
        await this.download(object.Key!, path.join(next, STATE_BUCKET, ...object.Key!.split('/')));
    const partitions: Record<string, Partition[]> = {};
    for (const table of DERIVED_TABLES) {
      const list = await this.partitions(table);
      if (list.length > 0) partitions[table] = list;
    }
    mkdirSync(next, { recursive: true });
    writeFileSync(path.join(next, STATE_PARTITIONS), `${JSON.stringify(partitions)}\n`);
    await saveIcebergTables(this.glue, this.stack.databaseName, DERIVED_TABLES, path.join(next, STATE_ICEBERG));
    const current = lake.path(STATE_DIR);
    const old = `${current}.old-${process.pid}`;
    if (existsSync(current)) renameSync(current, old);
    renameSync(next, current);
    rmSync(old, { recursive: true, force: true });
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}

export async function inBatches<T>(items: T[], action: (item: T) => Promise<void>, size = 8): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(action));
}
