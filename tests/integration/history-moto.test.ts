import {
  AthenaClient,
  CreateWorkGroupCommand,
  GetQueryExecutionCommand,
  ListQueryExecutionsCommand,
} from '@aws-sdk/client-athena';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { snapshotsSql } from '../../src/aws/iceberg-history';
import { DERIVED_TABLES } from '../../src/definition/layout';
import { projectRoot } from '../../src/project';
import { AthenaResultSet, queueAthenaResults } from '../helpers/athena-results';
import { MotoServer, startMoto } from '../helpers/moto';

// `stedi tables --history --stage` and `stedi query --as-of --stage` against a deployed stack: a moto
// server with the stack's outputs and its Athena workgroup. moto's Athena runs no SQL: each test queues
// the result sets Athena would return for the Iceberg metadata tables and checks the SQL it was asked.

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const STAGE = 'hist';
const BUCKET = 'stedi-lakehouse-hist-data';
const DATABASE = 'stedi_lakehouse_hist';
const WORKGROUP = 'stedi-lakehouse-hist';

/** The rows of snapshotsSql as Athena gives them: every value as text, NULL for a missing summary key. */
function snapshotRows(rows: (string | null)[][]): AthenaResultSet {
  return {
    columns: [
      ['table_name', 'varchar'],
      ['snapshot_id', 'varchar'],
      ['committed_at', 'varchar'],
      ['run_id', 'varchar'],
      ['total_records', 'varchar'],
    ],
    rows,
  };
}

describe('history and time travel on a deployed stack (moto)', () => {
  let moto: MotoServer;
  let athena: AthenaClient;

  const stedi = (args: string[]) =>
    spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...moto.env, STEDI_POLL_MS: '50' },
    });
  const knownQueries = async () =>
    new Set((await athena.send(new ListQueryExecutionsCommand({ WorkGroup: WORKGROUP }))).QueryExecutionIds ?? []);
  async function queriesSince(before: Set<string>): Promise<string[]> {
    const ids = (await athena.send(new ListQueryExecutionsCommand({ WorkGroup: WORKGROUP }))).QueryExecutionIds ?? [];
    const asked = await Promise.all(
      ids
        .filter((id) => !before.has(id))
        .map(async (id) => (await athena.send(new GetQueryExecutionCommand({ QueryExecutionId: id }))).QueryExecution!),
    );
    // Sorted by text: the second query of --as-of is made from the first one's rows, so order is implied.
    return asked.map((q) => q.Query ?? '').sort();
  }

  beforeAll(async () => {
    moto = await startMoto();
    const config = {
      endpoint: moto.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    athena = new AthenaClient(config);
    await new S3Client({ ...config, forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: BUCKET }));
    await athena.send(
      new CreateWorkGroupCommand({
        Name: WORKGROUP,
        Configuration: { ResultConfiguration: { OutputLocation: `s3://${BUCKET}/athena-results/pipeline/` } },
      }),
    );
    await new CloudFormationClient(config).send(
      new CreateStackCommand({
        StackName: `stedi-lakehouse-${STAGE}`,
        TemplateBody: JSON.stringify({
          Resources: { Queue: { Type: 'AWS::SQS::Queue' } },
          Outputs: {
            DataBucketName: { Value: BUCKET },
            GlueDatabaseName: { Value: DATABASE },
            AthenaWorkGroupName: { Value: WORKGROUP },
          },
        }),
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await moto?.stop();
  });

  it("stedi tables --history --stage lists a table's main-branch snapshots from $snapshots and $history", async () => {
    const before = await knownQueries();
    await queueAthenaResults(moto.endpoint, [
      snapshotRows([
        ['customer_trusted', '8744736658442914487', '2026-12-07T05:45:00.000Z', 's3-third', '490'],
        ['customer_trusted', '3051729675574597004', '2026-12-06T05:46:40.000Z', null, null],
        ['customer_trusted', '7269112233445566771', '2026-12-06T17:20:00.000Z', 's3-second', '482'],
      ]),
    ]);
    const listed = stedi(['tables', '--history', 'customer_trusted', '--stage', STAGE, '--json']);
    expect(listed.stderr).toBe('');
    expect(listed.status).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      {
        runId: 's3-third',
        committedAt: '2026-12-07T05:45:00.000Z',
        rows: 490,
        snapshotId: '8744736658442914487',
        current: true,
      },
      {
        runId: 's3-second',
        committedAt: '2026-12-06T17:20:00.000Z',
        rows: 482,
        snapshotId: '7269112233445566771',
        current: false,
      },
      {
        runId: null,
        committedAt: '2026-12-06T05:46:40.000Z',
        rows: null,
        snapshotId: '3051729675574597004',
        current: false,
      },
    ]);
    expect(await queriesSince(before)).toEqual([snapshotsSql(DATABASE, ['customer_trusted'])]);
  });

  it('stedi query --as-of --stage reads each Iceberg table at the snapshot the run left (FOR VERSION AS OF)', async () => {
    const before = await knownQueries();
    await queueAthenaResults(moto.endpoint, [
      snapshotRows([
        ['customer_trusted', '8744736658442914487', '2026-12-07T05:45:00.000Z', 's3-third', '490'],
        ['customer_curated', '1111111111111111111', '2026-12-06T17:21:00.000Z', 's3-second', '470'],
        ['customer_trusted', '7269112233445566771', '2026-12-06T17:20:00.000Z', 's3-second', '482'],
      ]),
      { columns: [['n', 'bigint']], rows: [['482']] },
    ]);
    const sql = 'select count(*) as n from customer_trusted t join customer_curated c on t.email = c.email';
    const read = stedi(['query', '--as-of', 's3-second', '--stage', STAGE, '--json', sql]);
    expect(read.status).toBe(0);
    expect(JSON.parse(read.stdout)).toEqual([{ n: 482 }]);
    expect(read.stderr).toMatch(/as run s3-second left them/);
    expect(await queriesSince(before)).toEqual(
      [
        snapshotsSql(DATABASE, [...DERIVED_TABLES]),
        'select count(*) as n from customer_trusted FOR VERSION AS OF 7269112233445566771 t ' +
          'join customer_curated FOR VERSION AS OF 1111111111111111111 c on t.email = c.email',
      ].sort(),
    );
  });

  it('refuses a run no snapshot records with exit code 2, naming it and how to list the runs', async () => {
    await queueAthenaResults(moto.endpoint, [
      snapshotRows([['customer_trusted', '8744736658442914487', '2026-12-07T05:45:00.000Z', 's3-third', '490']]),
    ]);
    const refused = stedi(['query', '--as-of', 's3-expired', '--stage', STAGE, 'select 1']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(
      /no snapshot of the Iceberg tables records run s3-expired .*stedi tables --history TABLE --stage NAME/,
    );
    const notIceberg = stedi(['tables', '--history', 'customer_landing', '--stage', STAGE]);
    expect(notIceberg.status).toBe(2);
    expect(notIceberg.stderr).toMatch(/not a table with snapshots; give one of customer_trusted/);
  });
});
