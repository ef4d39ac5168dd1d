import { existsSync } from 'node:fs';
import { FieldIds, readAvroFile } from './avro-file';

/**
 * The data files of one Iceberg snapshot, read as the spec plans a scan (Iceberg table spec v2,
 * https://iceberg.apache.org/spec/, "Manifest Lists", "Manifests" and "Scan Planning"): the snapshot's
 * manifest list names its manifests (`manifest_file`: 500 manifest_path, 517 content 0 data / 1 deletes);
 * each manifest lists files (`manifest_entry`: 0 status 0 EXISTING / 1 ADDED / 2 DELETED, 2 data_file with
 * 134 content 0 DATA / 1 POSITION DELETES / 2 EQUALITY DELETES, 100 file_path, 101 file_format,
 * 103 record_count). The live data files are the entries ADDED or EXISTING; a DELETED entry only records
 * what the snapshot removed ("Deletes are informational only and not used in scans").
 *
 * Row-level deletes are refused, not applied: the pipeline's writer only overwrites (copy-on-write) and
 * appends, so a delete file means a table this reader does not understand. So is a missing file.
 */

/** An entry's status (manifest_entry field 0). */
export const EntryStatus = { EXISTING: 0, ADDED: 1, DELETED: 2 } as const;
/** What a manifest (manifest_file 517) or a file (data_file 134) holds. */
export const FileContent = { DATA: 0, POSITION_DELETES: 1, EQUALITY_DELETES: 2 } as const;

/** A snapshot this reader cannot read: the message names the table and the file. */
export class IcebergScanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IcebergScanError';
  }
}

export interface LiveDataFile {
  /** As the manifest names it (s3://bucket/key). */
  uri: string;
  /** Where it is read from (the resolver's answer). */
  file: string;
  records: number;
}

/** Where a file an Iceberg location names is found (e.g. s3://bucket/key to a local copy of the bucket). */
export type FileResolver = (uri: string) => string;

/**
 * The live data files of the snapshot whose manifest list `manifestList` names, in manifest order.
 * Throws IcebergScanError for delete files or manifests, a format other than Parquet, or a file that is
 * not where the resolver says.
 */
export async function snapshotDataFiles(
  table: string,
  manifestList: string,
  resolve: FileResolver,
): Promise<LiveDataFile[]> {
  const list = await readAvro(table, present(table, 'manifest list', manifestList, resolve));
  const listFields = new FieldIds(list.schema, `table ${table}: manifest list ${manifestList}`);
  const files: LiveDataFile[] = [];
  for (const manifest of list.records) {
    const path = String(listFields.value(manifest, 500, 'manifest_path'));
    // v1 manifest lists have no content field: every v1 manifest holds data (spec, 517).
    const content = listFields.has(517) ? Number(listFields.value(manifest, 517, 'content')) : FileContent.DATA;
    if (content !== FileContent.DATA)
      throw new IcebergScanError(
        `table ${table}: manifest ${path} (in ${manifestList}) holds delete files (content ${content}): ` +
          'row-level deletes are not read here (the pipeline writes copy-on-write overwrites and appends only)',
      );
    files.push(...(await manifestDataFiles(table, path, resolve)));
  }
  return files;
}

async function manifestDataFiles(table: string, manifest: string, resolve: FileResolver): Promise<LiveDataFile[]> {
  const avro = await readAvro(table, present(table, 'manifest', manifest, resolve));
  if (avro.meta.content !== undefined && avro.meta.content !== 'data')
    throw new IcebergScanError(`table ${table}: manifest ${manifest} holds ${avro.meta.content}, not data files`);
  const entry = new FieldIds(avro.schema, `table ${table}: manifest ${manifest}`);
  const dataFile = entry.nested(2, 'data_file');
  const live: LiveDataFile[] = [];
  for (const record of avro.records) {
    const status = Number(entry.value(record, 0, 'status'));
    const file = entry.value(record, 2, 'data_file') as Record<string, unknown>;
    const uri = String(dataFile.value(file, 100, 'file_path'));
    const content = dataFile.has(134) ? Number(dataFile.value(file, 134, 'content')) : FileContent.DATA;
    if (content !== FileContent.DATA)
      throw new IcebergScanError(
        `table ${table}: manifest ${manifest} lists the delete file ${uri} (content ${content}): ` +
          'row-level deletes are not read here (the pipeline writes copy-on-write overwrites and appends only)',
      );
    if (status === EntryStatus.DELETED) continue;
    if (status !== EntryStatus.EXISTING && status !== EntryStatus.ADDED)
      throw new IcebergScanError(`table ${table}: manifest ${manifest}: ${uri} has an unknown status ${status}`);
    const format = String(dataFile.value(file, 101, 'file_format'));
    if (format.toLowerCase() !== 'parquet')
      throw new IcebergScanError(`table ${table}: data file ${uri} is ${format}, not Parquet`);
    live.push({
      uri,
      file: present(table, 'data file', uri, resolve),
      records: Number(dataFile.value(file, 103, 'record_count')),
    });
  }
  return live;
}

function readAvro(table: string, file: string) {
  return readAvroFile(file).catch((error: unknown) => {
    throw new IcebergScanError(`table ${table}: ${(error as Error).message}`);
  });
}

/** The local file of an Iceberg location, which must exist. */
function present(table: string, what: string, uri: string, resolve: FileResolver): string {
  let file: string;
  try {
    file = resolve(uri);
  } catch (error) {
    throw new IcebergScanError(`table ${table}: ${what} ${uri}: ${(error as Error).message}`);
  }
  if (!existsSync(file)) throw new IcebergScanError(`table ${table}: ${what} ${uri} is missing (no ${file})`);
  return file;
}
