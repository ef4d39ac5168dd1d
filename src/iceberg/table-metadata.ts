/**
 * A small reader of Iceberg table metadata (the `metadata/*.metadata.json` a commit writes; Iceberg table
 * spec v2, "Table Metadata" and "Snapshots": https://iceberg.apache.org/spec/#table-metadata). It lists
 * the main branch's snapshots: from `refs.main.snapshot-id` (or, in metadata without refs,
 * `current-snapshot-id`) back through each `parent-snapshot-id`, newest first, with the summary's
 * `total-records` and the `stedi.run-id` the pipeline's commits record. Snapshots of other branches (a
 * run's audit branch that failed its checks) and expired ones (no longer in `snapshots`) are not listed.
 *
 * Pure: it takes the metadata's text. Where that text comes from is the engine's business
 * (IcebergMetadataSource), so `stedi tables --history` reads the Glue engine's lake through one port.
 */

export interface IcebergSnapshotInfo {
  /** A long: kept as text, as JSON.parse would round ids beyond 2^53. */
  snapshotId: string;
  parentId: string | null;
  /** When the snapshot was committed (ISO 8601, from timestamp-ms). */
  committedAt: string;
  operation: string | null;
  runId: string | null;
  rows: number | null;
}

/** Metadata that is not an Iceberg table's (the message names the field). */
export class IcebergMetadataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IcebergMetadataError';
  }
}

/** Where a table's current metadata JSON is found: undefined when the table has none (never committed). */
export interface IcebergMetadataSource {
  currentMetadata(table: string): Promise<string | undefined>;
}

const ID_FIELDS = /("(?:snapshot-id|parent-snapshot-id|current-snapshot-id)"\s*:\s*)(-?\d+)/g;

interface RawSnapshot {
  'snapshot-id': string;
  'parent-snapshot-id'?: string;
  'timestamp-ms': number;
  summary?: Record<string, string>;
}

/** The metadata JSON as an object, its snapshot ids as text. */
function parseMetadata(metadataJson: string): Record<string, unknown> {
  let metadata: Record<string, unknown>;
  try {
    metadata = JSON.parse(metadataJson.replace(ID_FIELDS, '$1"$2"')) as Record<string, unknown>;
  } catch (error) {
    throw new IcebergMetadataError(`not JSON: ${(error as Error).message}`);
  }
  if (typeof metadata !== 'object' || metadata === null || typeof metadata['format-version'] !== 'number')
    throw new IcebergMetadataError('no format-version: not Iceberg table metadata');
  return metadata;
}

/** The main branch's snapshots, newest first (empty for a table never committed). */
export function mainBranchSnapshots(metadataJson: string): IcebergSnapshotInfo[] {
  const metadata = parseMetadata(metadataJson);
  const snapshots = (metadata.snapshots ?? []) as RawSnapshot[];
  if (!Array.isArray(snapshots)) throw new IcebergMetadataError('snapshots is not a list');
  const byId = new Map(snapshots.map((s) => [String(s['snapshot-id']), s]));
  const refs = metadata.refs as Record<string, { 'snapshot-id'?: string; type?: string }> | undefined;
  const head = refs ? refs.main?.['snapshot-id'] : (metadata['current-snapshot-id'] as string | undefined);
  const ancestry: IcebergSnapshotInfo[] = [];
  const seen = new Set<string>();
  // -1 was written for "none" by early writers (spec: current-snapshot-id, v1).
  for (let id = head; id !== undefined && id !== '-1' && !seen.has(id);) {
    seen.add(id);
    const snapshot = byId.get(id);
    if (!snapshot) break; // expired: its ancestors are gone from the metadata too
    if (typeof snapshot['timestamp-ms'] !== 'number')
      throw new IcebergMetadataError(`snapshot ${id} has no timestamp-ms`);
    const summary = snapshot.summary ?? {};
    const total = summary['total-records'];
    ancestry.push({
      snapshotId: id,
      parentId: snapshot['parent-snapshot-id'] ?? null,
      committedAt: new Date(snapshot['timestamp-ms']).toISOString(),
      operation: summary.operation ?? null,
      runId: summary['stedi.run-id'] ?? null,
      rows: total !== undefined && /^\d+$/.test(total) ? Number(total) : null,
    });
    id = snapshot['parent-snapshot-id'];
  }
  return ancestry;
}

/** A table's history through the port: undefined when the source has no metadata for it. */
export async function icebergTableHistory(
  source: IcebergMetadataSource,
  table: string,
): Promise<IcebergSnapshotInfo[] | undefined> {
  const text = await source.currentMetadata(table);
  return text === undefined ? undefined : mainBranchSnapshots(text);
}

/** A top-level column of a table schema (spec, "Schemas"). */
export interface IcebergColumn {
  id: number;
  name: string;
  /** The primitive type's name; `struct`, `list` or `map` for a nested type. */
  type: string;
}

/** What reading a snapshot needs: its manifest list and the schema it was written with. */
export interface IcebergSnapshotToRead {
  snapshotId: string;
  manifestList: string;
  columns: IcebergColumn[];
}

interface RawSchema {
  'schema-id'?: number;
  fields?: { id: number; name: string; type: string | { type: string } }[];
}

/**
 * The manifest list and the columns of snapshot `snapshotId` (any snapshot the metadata keeps). The
 * columns are the snapshot's schema's (its `schema-id`), else the table's current schema: time travel
 * reads a snapshot with the schema it was written with.
 */
export function snapshotToRead(metadataJson: string, snapshotId: string): IcebergSnapshotToRead {
  const metadata = parseMetadata(metadataJson);
  const snapshot = (
    (metadata.snapshots ?? []) as (RawSnapshot & { 'manifest-list'?: string; 'schema-id'?: number })[]
  ).find((s) => String(s['snapshot-id']) === snapshotId);
  if (!snapshot) throw new IcebergMetadataError(`no snapshot ${snapshotId} in the metadata (expired?)`);
  const manifestList = snapshot['manifest-list'];
  // v1 metadata could list `manifests` inline instead; the pipeline's tables are format version 2.
  if (typeof manifestList !== 'string')
    throw new IcebergMetadataError(`snapshot ${snapshotId} has no manifest-list (format version 1 metadata?)`);
  const schemas = (metadata.schemas ?? (metadata.schema ? [metadata.schema] : [])) as RawSchema[];
  const schemaId = snapshot['schema-id'] ?? metadata['current-schema-id'];
  const schema = schemas.find((s) => s['schema-id'] === schemaId) ?? (schemaId === undefined ? schemas[0] : undefined);
  if (!schema?.fields)
    throw new IcebergMetadataError(`snapshot ${snapshotId}: no schema ${String(schemaId)} in the metadata`);
  const columns = schema.fields.map((f) => ({
    id: f.id,
    name: f.name,
    type: typeof f.type === 'string' ? f.type : f.type.type,
  }));
  return { snapshotId, manifestList, columns };
}
