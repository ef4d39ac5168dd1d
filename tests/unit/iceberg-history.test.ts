import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  IcebergSnapshot,
  TableNotYetMadeError,
  UnknownRunError,
  parseSnapshots,
  rewriteAsOf,
  snapshotsAsOf,
  snapshotsSql,
} from '../../src/aws/iceberg-history';
import {
  IcebergMetadataError,
  IcebergMetadataSource,
  icebergTableHistory,
  mainBranchSnapshots,
} from '../../src/iceberg/table-metadata';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'iceberg', 'customer_trusted.metadata.json');

// Iceberg table spec v2, "Table Metadata", "Snapshots" and "Snapshot References": the main branch is
// refs.main, its history the chain of parent-snapshot-id; a snapshot of another branch is not on it.
describe('Iceberg table metadata (spec v2)', () => {
  it("lists the main branch's ancestry newest first, with run id and total-records, leaving out another branch's snapshot", () => {
    const snapshots = mainBranchSnapshots(readFileSync(FIXTURE, 'utf8'));
    expect(snapshots).toEqual([
      {
        snapshotId: '8744736658442914487', // beyond 2^53: kept exact, as text
        parentId: '7269112233445566771',
        committedAt: '2025-12-07T05:45:00.000Z',
        operation: 'append',
        runId: 's3-third',
        rows: 490,
      },
      expect.objectContaining({ snapshotId: '7269112233445566771', runId: 's3-second', rows: 482 }),
      expect.objectContaining({ snapshotId: '3051729675574597004', parentId: null, runId: 's3-first', rows: 480 }),
    ]);
  });

  it('stops at an expired ancestor, reads current-snapshot-id when there are no refs, and lists none for a table never committed', () => {
    const metadata = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, unknown>;
    const text = (m: Record<string, unknown>) => JSON.stringify(m);
    const expired = { ...metadata, snapshots: (metadata.snapshots as { 'snapshot-id': number }[]).slice(1) };
    // JSON.stringify writes the rounded ids: this checks the chain, not the digits.
    expect(mainBranchSnapshots(text(expired)).map((s) => s.runId)).toEqual(['s3-third', 's3-second']);
    const { refs: _refs, ...v1Style } = metadata;
    expect(mainBranchSnapshots(text(v1Style)).map((s) => s.runId)).toEqual(['s3-third', 's3-second', 's3-first']);
    expect(mainBranchSnapshots(text({ 'format-version': 2, 'current-snapshot-id': -1, snapshots: [] }))).toEqual([]);
    expect(mainBranchSnapshots(text({ 'format-version': 2, refs: {}, snapshots: [] }))).toEqual([]);
  });

  it('refuses text that is not Iceberg table metadata, naming why', () => {
    expect(() => mainBranchSnapshots('{')).toThrow(IcebergMetadataError);
    expect(() => mainBranchSnapshots('{"snapshots": []}')).toThrow(/no format-version/);
  });

  it('reads a table through the metadata port: undefined when the source has none', async () => {
    const source: IcebergMetadataSource = {
      currentMetadata: (table) =>
        Promise.resolve(table === 'customer_trusted' ? readFileSync(FIXTURE, 'utf8') : undefined),
    };
    expect((await icebergTableHistory(source, 'customer_trusted'))?.map((s) => s.rows)).toEqual([490, 482, 480]);
    expect(await icebergTableHistory(source, 'customer_curated')).toBeUndefined();
  });
});

describe('history and time travel on Athena', () => {
  it('lists the main-branch snapshots of each table from $snapshots joined to $history', () => {
    const sql = snapshotsSql('stedi_lakehouse_dev', ['customer_trusted', 'customer_curated']);
    expect(sql).toContain('from "stedi_lakehouse_dev"."customer_trusted$snapshots" s');
    expect(sql).toContain('join "stedi_lakehouse_dev"."customer_trusted$history" h on h.snapshot_id = s.snapshot_id');
    expect(sql).toContain("element_at(s.summary, 'stedi.run-id') as run_id");
    expect(sql).toContain("element_at(s.summary, 'total-records') as total_records");
    expect(sql.match(/where h\.is_current_ancestor/g)).toHaveLength(2);
    expect(sql).toMatch(/union all[\s\S]*"customer_curated\$snapshots"[\s\S]*order by committed_at desc/);
  });

  const rows = [
    ['customer_trusted', '7269112233445566771', '2025-12-06T17:20:00.000Z', 's3-second', '482'],
    ['customer_trusted', '8744736658442914487', '2025-12-07T05:45:00.000Z', 's3-third', '490'],
    ['customer_curated', '1111111111111111111', '2025-12-06T17:21:00.000Z', 's3-second', '470'],
    ['customer_trusted', '3051729675574597004', '2025-12-06T05:46:40.000Z', null, null],
  ].map(([table_name, snapshot_id, committed_at, run_id, total_records]) => ({
    table_name,
    snapshot_id,
    committed_at,
    run_id,
    total_records,
  }));

  it('parses the rows newest first, a snapshot without the run id or record count giving null', () => {
    const snapshots = parseSnapshots(rows);
    expect(snapshots.map((s) => s.snapshotId)).toEqual([
      '8744736658442914487',
      '1111111111111111111',
      '7269112233445566771',
      '3051729675574597004',
    ]);
    expect(snapshots[0]).toEqual({
      table: 'customer_trusted',
      snapshotId: '8744736658442914487',
      committedAt: '2025-12-07T05:45:00.000Z',
      runId: 's3-third',
      rows: 490,
    });
    expect(snapshots[3]).toMatchObject({ runId: null, rows: null });
  });

  it("picks each table's snapshot of the run, or its newest before the run's end; an unknown run throws", () => {
    const snapshots: IcebergSnapshot[] = parseSnapshots(rows);
    const tables = ['customer_trusted', 'customer_curated', 'machine_learning_curated'];
    expect(snapshotsAsOf(snapshots, tables, 's3-second')).toEqual(
      new Map([
        ['customer_trusted', '7269112233445566771'],
        ['customer_curated', '1111111111111111111'],
        ['machine_learning_curated', null],
      ]),
    );
    // s3-third skipped customer_curated: it reads the snapshot s3-second left.
    expect(snapshotsAsOf(snapshots, tables, 's3-third').get('customer_curated')).toBe('1111111111111111111');
    expect(() => snapshotsAsOf(snapshots, tables, 's3-never')).toThrow(UnknownRunError);
    expect(() => snapshotsAsOf(snapshots, tables, 's3-never')).toThrow(/run s3-never.*stedi tables --history/);
  });

  it('puts FOR VERSION AS OF after each table reference, before its alias, leaving columns, strings and comments', () => {
    const versions = new Map<string, string | null>([
      ['customer_trusted', '7269112233445566771'],
      ['machine_learning_curated', null],
    ]);
    const sql = `select customer_trusted.email, 'customer_trusted' as label -- customer_trusted
from stedi_lakehouse_dev.customer_trusted t join "Customer_Trusted" as u on t.email = u.email
where customer_trusted_count(1) > 0`;
    expect(rewriteAsOf(sql, versions, 's3-second'))
      .toBe(`select customer_trusted.email, 'customer_trusted' as label -- customer_trusted
from stedi_lakehouse_dev.customer_trusted FOR VERSION AS OF 7269112233445566771 t join "Customer_Trusted" FOR VERSION AS OF 7269112233445566771 as u on t.email = u.email
where customer_trusted_count(1) > 0`);
    expect(() => rewriteAsOf('select * from machine_learning_curated', versions, 's3-second')).toThrow(
      TableNotYetMadeError,
    );
  });
});
