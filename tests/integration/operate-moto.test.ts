import {
  AthenaClient,
  CreateWorkGroupCommand,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  ListQueryExecutionsCommand,
} from '@aws-sdk/client-athena';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { CreateDatabaseCommand, CreateTableCommand, GlueClient } from '@aws-sdk/client-glue';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { lambdaContext } from '../helpers/events';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { checksFor } from '../../src/checks/definitions';
import { quarantineSql } from '../../src/cli/actions/quarantine-command';
import type { TableListing } from '../../src/cli/actions/tables-command';
import { projectRoot } from '../../src/project';
import { required } from '../../src/required';
import { queueAthenaResults } from '../helpers/athena-results';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { removeDir, tempDir } from '../helpers/lake';
import { MotoServer, createLandingBucket, createPipelineStateMachine, startMoto } from '../helpers/moto';
import { aSecondLater, until } from '../helpers/wait';

// `--stage` against a deployed stack: here a moto server with the stack's outputs, its Glue Data
// Catalog, its Athena (which runs no SQL: each test queues the result sets Athena would return, and
// checks what was asked of it), and its bucket notifying the landing queue.

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const STAGE = 'test';
const BUCKET = 'stedi-lakehouse-test-data';
const DATABASE = 'stedi_lakehouse_test';
const WORKGROUP = 'stedi-lakehouse-test';

describe('the CLI against a deployed stack (moto)', () => {
  let moto: MotoServer;
  let athena: AthenaClient;
  let s3: S3Client;
  let sqs: SQSClient;
  let sfn: SFNClient;
  let queueUrl: string;
  let stateMachineArn: string;
  let dir: string;
  const saved = { ...process.env };

  const env = () => ({ ...process.env, ...moto.env, STEDI_POLL_MS: '50' });
  const stedi = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: env() });

  /** The queries Athena ran in the workgroup since `before` (ids), oldest first, with their context. */
  async function queriesSince(before: Set<string>) {
    const ids = (await athena.send(new ListQueryExecutionsCommand({ WorkGroup: WORKGROUP }))).QueryExecutionIds ?? [];
    const fresh = ids.filter((id) => !before.has(id));
    return Promise.all(
      fresh.map(
        async (id) => (await athena.send(new GetQueryExecutionCommand({ QueryExecutionId: id }))).QueryExecution!,
      ),
    );
  }
  const knownQueries = async () =>
    new Set((await athena.send(new ListQueryExecutionsCommand({ WorkGroup: WORKGROUP }))).QueryExecutionIds ?? []);

  beforeAll(async () => {
    moto = await startMoto();
    Object.assign(process.env, moto.env);
    dir = tempDir('operate-moto');
    const config = {
      endpoint: moto.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    athena = new AthenaClient(config);
    s3 = new S3Client({ ...config, forcePathStyle: true });
    sqs = new SQSClient(config);
    sfn = new SFNClient(config);
    const glue = new GlueClient(config);

    stateMachineArn = await createPipelineStateMachine(sfn, 'stedi-lakehouse-test-pipeline');
    ({ queueUrl } = await createLandingBucket(s3, sqs, BUCKET, 'stedi-lakehouse-test-landing'));

    await glue.send(new CreateDatabaseCommand({ DatabaseInput: { Name: DATABASE } }));
    const json = {
      InputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
      OutputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
      SerdeInfo: { SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe' },
    };
    const parquet = {
      InputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
      OutputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
      SerdeInfo: { SerializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
    };
    const tables = [
      {
        Name: 'customer_landing',
        Parameters: { classification: 'json' },
        StorageDescriptor: {
          ...json,
          Location: `s3://${BUCKET}/customer/landing/`,
          Columns: [
            { Name: 'email', Type: 'string' },
            { Name: 'serialNumber', Type: 'string' },
          ],
        },
      },
      {
        Name: 'customer_curated',
        StorageDescriptor: {
          ...parquet,
          Location: `s3://${BUCKET}/customer/curated/`,
          Columns: [
            { Name: 'customerid', Type: 'string' },
            { Name: 'birthyear', Type: 'int' },
          ],
        },
      },
      {
        Name: 'machine_learning_curated',
        Parameters: { classification: 'parquet' },
        PartitionKeys: [{ Name: 'reading_date', Type: 'string' }],
        StorageDescriptor: {
          ...parquet,
          Location: `s3://${BUCKET}/machine_learning/curated/`,
          Columns: [{ Name: 'customerid', Type: 'string' }],
        },
      },
      {
        Name: 'customer_quarantine',
        Parameters: { classification: 'json' },
        StorageDescriptor: {
          ...json,
          Location: `s3://${BUCKET}/customer/quarantine/`,
          Columns: [
            { Name: 'source_file', Type: 'string' },
            { Name: 'line_number', Type: 'bigint' },
            { Name: 'reason', Type: 'string' },
            { Name: 'line', Type: 'string' },
            { Name: 'line_encoding', Type: 'string' },
          ],
        },
      },
    ];
    for (const TableInput of tables)
      await glue.send(
        new CreateTableCommand({ DatabaseName: DATABASE, TableInput: { TableType: 'EXTERNAL_TABLE', ...TableInput } }),
      );
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 'checks/table_builds/customer_curated.json',
        Body: JSON.stringify({
          table_name: 'customer_curated',
          run_id: 's3-abc',
          rows_before: 480,
          rows_after: 482,
          consent_policy: null,
          built_at: '2026-11-28T05:35:12.000Z',
        }),
      }),
    );

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
            StateMachineArn: { Value: stateMachineArn },
            DataBucketName: { Value: BUCKET },
            GlueDatabaseName: { Value: DATABASE },
            AthenaWorkGroupName: { Value: WORKGROUP },
          },
        }),
      }),
    );
  }, 60_000);

  afterAll(async () => {
    process.env = saved;
    await moto?.stop();
    if (dir) removeDir(dir);
  });

  it('stedi query --stage runs the SQL on Athena in the stack workgroup and database, printing rows as locally', async () => {
    const before = await knownQueries();
    const result = {
      columns: [
        ['reading_date', 'varchar'],
        ['readings', 'bigint'],
        ['mean_distance', 'double'],
      ] as [string, string][],
      rows: [
        ['2022-06-18', '40981', '655.5'],
        [null, '3', null],
      ],
    };
    await queueAthenaResults(moto.endpoint, [result, result]);
    const sql = 'select reading_date, count(*) as readings from machine_learning_curated group by 1';
    const json = stedi(['query', '--stage', STAGE, '--json', sql]);
    expect(json.stderr).toBe('');
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      { reading_date: '2022-06-18', readings: 40981, mean_distance: 655.5 },
      { reading_date: null, readings: 3, mean_distance: null },
    ]);
    const table = stedi(['query', '--stage', STAGE, sql]);
    expect(table.stdout).toMatch(
      /^reading_date\s+readings\s+mean_distance\n-+\s+-+\s+-+\n2022-06-18\s+40981\s+655.5\nNULL\s+3\s+NULL\n\(2 rows\)\n$/,
    );

    const asked = await queriesSince(before);
    expect(asked).toHaveLength(2);
    // The results under the caller's own prefix, named by its aws:userid (STS GetCallerIdentity's UserId).
    const userId = (await new STSClient({}).send(new GetCallerIdentityCommand({}))).UserId!;
    for (const q of asked) {
      expect(q.Query).toBe(sql);
      expect(q.WorkGroup).toBe(WORKGROUP);
      expect(q.QueryExecutionContext).toMatchObject({ Database: DATABASE });
      expect(q.ResultConfiguration).toMatchObject({
        // As GetQueryExecution gives it: the results file, <OutputLocation><query id>.csv.
        OutputLocation: `s3://${BUCKET}/athena-results/users/${userId}/${q.QueryExecutionId}.csv`,
        EncryptionConfiguration: { EncryptionOption: 'SSE_S3' },
      });
    }
  });

  it('stedi tables --stage lists the Glue Data Catalog with row counts from Athena and the build log', async () => {
    const before = await knownQueries();
    await queueAthenaResults(moto.endpoint, [
      {
        columns: [
          ['table_name', 'varchar'],
          ['row_count', 'bigint'],
        ],
        rows: [
          ['customer_curated', '482'],
          ['customer_landing', '956'],
          ['customer_quarantine', '2'],
          ['machine_learning_curated', '43681'],
        ],
      },
    ]);
    const listed = stedi(['tables', '--stage', STAGE, '--json']);
    expect(listed.stderr).toBe('');
    expect(listed.status).toBe(0);
    const tables = JSON.parse(listed.stdout) as TableListing[];
    expect(tables.map((t) => t.name)).toEqual([
      'customer_curated',
      'customer_landing',
      'customer_quarantine',
      'machine_learning_curated',
    ]);
    expect(tables[0]).toEqual({
      name: 'customer_curated',
      location: `s3://${BUCKET}/customer/curated/`,
      format: 'parquet',
      columns: [
        { name: 'customerid', type: 'string' },
        { name: 'birthyear', type: 'int' },
      ],
      partitionKeys: [],
      rows: 482,
      rowsFrom: 'data',
      updatedAt: '2026-11-28T05:35:12.000Z',
      runId: 's3-abc',
    });
    expect(tables[1]).toMatchObject({ name: 'customer_landing', format: 'json', rows: 956 });
    expect(tables[1]?.updatedAt).toEqual(expect.stringMatching(/^\d{4}-/)); // the Catalog's UpdateTime
    expect(tables[3]).toMatchObject({ partitionKeys: ['reading_date'], rows: 43681 });
    const count = required((await queriesSince(before))[0], 'the row-count query');
    for (const t of tables) expect(count.Query).toContain(`count(*) as row_count from "${t.name}"`);

    const plain = stedi(['tables', '--stage', STAGE, '--no-rows']);
    expect(plain.status).toBe(0);
    expect(plain.stdout).toMatch(/^machine_learning_curated {2}\(parquet\)\n {2}location +s3:\/\/.*\n {2}rows +\?\n/m);
    expect(plain.stdout).toMatch(/partitioned by +reading_date/);
    expect(await queriesSince(before)).toHaveLength(1); // --no-rows asked Athena nothing
  });

  it('stedi quarantine --stage reads the quarantine Catalog tables through Athena', async () => {
    const before = await knownQueries();
    await queueAthenaResults(moto.endpoint, [
      {
        columns: [
          ['dataset', 'varchar'],
          ['source_file', 'varchar'],
          ['line_number', 'bigint'],
          ['reason', 'varchar'],
          ['line', 'varchar'],
          ['line_encoding', 'varchar'],
        ],
        rows: [
          ['customer', 'customer/landing/customer-1.json', '7', 'not valid JSON', '{"email": ', 'text'],
          ['customer', 'customer/landing/customer-1.json', '8', 'not valid UTF-8 text', 'eyJlIjoi6SJ9', 'base64'],
        ],
      },
    ]);
    const shown = stedi(['quarantine', '--stage', STAGE, '--dataset', 'customer']);
    expect(shown.stderr).toBe('');
    expect(shown.status).toBe(0);
    expect(shown.stdout).toMatch(/customer\s+customer\/landing\/customer-1.json\s+7\s+not valid JSON\s+\{"email":\n/);
    // A line that is not UTF-8 comes as base64 (line_encoding): shown as the line, its bad byte named.
    expect(shown.stdout).toMatch(/8\s+not valid UTF-8 text\s+\{"e":"\\xe9"\}\n/);
    expect(shown.stdout).toMatch(/\(2 rejected lines\)/);
    const asked = required((await queriesSince(before))[0], 'the quarantine query');
    expect(asked.Query).toBe(quarantineSql(['customer']));
    expect(asked.Query).toMatch(/from customer_quarantine as q/);
  });

  it("stedi check --stage runs every check on Athena, each naming the stack's database where it reads information_schema, and fails naming the check whose query returned rows", async () => {
    const checks = checksFor(DATABASE);
    expect(checks.map((c) => c.sql).join('\n')).toContain(`table_schema = '${DATABASE}'`);
    const before = await knownQueries();
    const passing = { columns: [['x', 'varchar']] as [string, string][], rows: [] };
    const violating = {
      columns: [
        ['customerId', 'varchar'],
        ['row_count', 'bigint'],
      ] as [string, string][],
      rows: [['ab12', '2']],
    };
    // Athena hands the queued results out in the order the queries reach it: the violating one is
    // the fourth to arrive, whichever check that is.
    await queueAthenaResults(moto.endpoint, [passing, passing, passing, violating, passing, passing, passing]);
    const run = stedi(['check', '--stage', STAGE, '--json']);
    expect(run.status).toBe(1);
    const results = JSON.parse(run.stdout) as { name: string; status: string; rows: unknown[] }[];

    const asked = await queriesSince(before);
    expect(asked.map((q) => q.Query).sort()).toEqual(checks.map((c) => c.sql).sort());
    const failedQuery = (
      await Promise.all(
        asked.map(async (q) => ({
          q,
          rows: (await athena.send(new GetQueryResultsCommand({ QueryExecutionId: q.QueryExecutionId }))).ResultSet!
            .Rows!.length,
        })),
      )
    ).find((x) => x.rows > 1)!.q;
    const failedCheck = checks.find((c) => c.sql === failedQuery.Query)!.name;
    expect(results.filter((r) => r.status !== 'pass')).toEqual([
      expect.objectContaining({ name: failedCheck, status: 'fail', rows: [{ customerId: 'ab12', row_count: 2 }] }),
    ]);
    for (const q of asked)
      expect(q).toMatchObject({ WorkGroup: WORKGROUP, QueryExecutionContext: { Database: DATABASE } });
  });

  /** The landing Lambda's logic over what the queue holds now, as its SQS event source would run it. */
  async function deliverQueue(handler: (event: SQSEvent) => Promise<SQSBatchResponse>): Promise<number> {
    const records: SQSRecord[] = [];
    for (;;) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
      );
      if (Messages.length === 0) break;
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
      records.push(
        ...Messages.map(
          (m) => ({ messageId: m.MessageId!, receiptHandle: m.ReceiptHandle!, body: m.Body! }) as SQSRecord,
        ),
      );
    }
    if (records.length > 0) await handler({ Records: records });
    return records.length;
  }

  it('stedi drop --stage uploads to the landing prefix; --wait follows the execution that picks the file up', async () => {
    const file = path.join(dir, 'customers-7.json');
    writeFileSync(file, '{"email":"a@example.com"}\n');
    const plain = stedi(['drop', file, '--dataset', 'customer', '--stage', STAGE]);
    expect(plain.stderr).toBe('');
    expect(plain.status).toBe(0);
    expect(plain.stdout).toMatch(
      new RegExp(`uploaded .*customers-7.json to s3://${BUCKET}/customer/landing/customers-7.json \\(version `),
    );
    const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'customer/landing/customers-7.json' }));
    expect(await object.Body!.transformToString()).toBe('{"email":"a@example.com"}\n');

    process.env.STATE_MACHINE_ARN = stateMachineArn;
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const { handler: handle } = await import('../../functions/on-landing');
    const handler = (event: SQSEvent) => handle(event, lambdaContext());
    expect(await deliverQueue(handler)).toBeGreaterThan(0); // the plain drop's notification: its own execution
    for (const e of (await sfn.send(new ListExecutionsCommand({ stateMachineArn }))).executions ?? [])
      if (e.status === 'RUNNING') await sfn.send(new StopExecutionCommand({ executionArn: e.executionArn }));
    // moto's S3 events carry no versionId or sequencer, so a second drop of the same key would get the
    // same execution name from the handler (real S3 events differ): the waited-for drop is another file.
    const waited = path.join(dir, 'customers-8.json');
    writeFileSync(waited, '{"email":"b@example.com"}\n');
    // An older execution that holds the same key must not be taken for the one the drop starts.
    await sfn.send(
      new StartExecutionCommand({
        stateMachineArn,
        name: 'older-run',
        input: JSON.stringify({ from: 'customer', reason: 's3', files: ['customer/landing/customers-8.json'] }),
      }),
    );
    await sfn.send(
      new StopExecutionCommand({
        executionArn: `${stateMachineArn.replace(':stateMachine:', ':execution:')}:older-run`,
      }),
    );
    await aSecondLater(); // S3 dates the upload to the second: after the stopped execution

    const child = spawn(process.execPath, [BIN, 'drop', waited, '--dataset', 'customer', '--stage', STAGE, '--wait'], {
      env: env(),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      // The landing Lambda takes the notification and starts an execution; moto never ends one by
      // itself, so the test stops it once the CLI follows it, as an operator would.
      let delivered = 0;
      await until(async () => (delivered = await deliverQueue(handler)) > 0, 'the notification', { everyMs: 100 });
      expect(delivered).toBe(1);
      await until(() => /picked it up/.test(stdout), 'the drop to name its execution', { everyMs: 100 });
      const running = (await sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING' })))
        .executions!;
      expect(running).toHaveLength(1);
      const execution = required(running[0], 'the running execution');
      expect(stdout).toContain(`execution ${execution.name} picked it up`);
      await sfn.send(new StopExecutionCommand({ executionArn: execution.executionArn }));
      expect(await exited).toBe(1);
      expect(stderr).toMatch(/waiting for the execution that picks up customer\/landing\/customers-8.json/);
      expect(stdout).toMatch(new RegExp(`execution ${execution.name}: ABORTED`));
      expect(stdout).not.toMatch(/older-run/);
    } finally {
      child.kill();
    }
  }, 30_000);

  it('refuses --lake with --stage, a missing file and a file the bucket would not notify', () => {
    const both = stedi(['tables', '--lake', dir, '--stage', STAGE]);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--lake DIR or --stage NAME, not both/);
    const notJson = path.join(dir, 'notes.txt');
    writeFileSync(notJson, 'x');
    const drop = stedi(['drop', notJson, '--dataset', 'customer', '--stage', STAGE]);
    expect(drop.status).toBe(2);
    expect(drop.stderr).toMatch(/only for \.json files/);
    const missing = stedi(['query', '--stage', 'nope', 'select 1']);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/cannot read stack stedi-lakehouse-nope/);
  });

  /** A CLI child process whose output the test can wait on. */
  function startStedi(args: string[]) {
    const child = spawn(process.execPath, [BIN, ...args], { env: env() });
    const output = { stdout: '', stderr: '' };
    child.stdout.on('data', (c) => (output.stdout += c));
    child.stderr.on('data', (c) => (output.stderr += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const printed = async (what: RegExp) => {
      await until(() => what.test(output.stdout), `${what}`, { timeoutMs: 10_000 }).catch(() => undefined);
      expect(output.stdout).toMatch(what);
    };
    return { child, output, exited, until: printed };
  }

  async function stopRunning() {
    for (const e of (await sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING' })))
      .executions ?? [])
      await sfn.send(new StopExecutionCommand({ executionArn: e.executionArn }));
  }

  it('stedi run --stage starts an execution from --from and follows it, as start --wait does', async () => {
    await stopRunning();
    const run = startStedi(['run', '--stage', STAGE, '--from', 'step_trainer']);
    try {
      await run.until(/started arn:aws:states:.*:execution:stedi-lakehouse-test-pipeline:manual-\d{17}/);
      const running = required(
        (await sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING' }))).executions?.[0],
        'the running execution',
      );
      const described = await sfn.send(new DescribeExecutionCommand({ executionArn: running.executionArn }));
      expect(JSON.parse(described.input!)).toEqual({ from: 'step_trainer', reason: 'manual', files: [] });
      await sfn.send(new StopExecutionCommand({ executionArn: running.executionArn }));
      expect(await run.exited).toBe(1);
      expect(run.output.stdout).toMatch(new RegExp(`execution ${running.name}: ABORTED`));
    } finally {
      run.child.kill();
    }
  }, 30_000);

  it('stedi run --landing DIR --stage uploads every file and follows the execution that picks them all up', async () => {
    await stopRunning();
    const landing = path.join(dir, 'landing-for-stage');
    mkdirSync(path.join(landing, 'customer'), { recursive: true });
    mkdirSync(path.join(landing, 'step_trainer'), { recursive: true });
    writeFileSync(path.join(landing, 'customer', 'run-c1.json'), '{"email":"c@example.com"}\n');
    writeFileSync(path.join(landing, 'step_trainer', 'run-s1.json'), '{"serialNumber":"S-1"}\n');
    writeFileSync(path.join(landing, 'customer', 'notes.txt'), 'not a landing file');
    process.env.STATE_MACHINE_ARN = stateMachineArn;
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const { handler: handle } = await import('../../functions/on-landing');
    await aSecondLater(); // S3 dates an upload to the second
    const run = startStedi(['run', '--landing', landing, '--stage', STAGE, '--wait-timeout', '30']);
    try {
      await run.until(/uploaded .*run-s1.json/);
      let delivered = 0;
      await until(
        async () => (delivered = await deliverQueue((event) => handle(event, lambdaContext()))) > 0,
        'the notifications',
        { everyMs: 100 },
      );
      expect(delivered).toBe(2); // one notification per file; notes.txt was not uploaded
      await run.until(/picked 2 files up/);
      await stopRunning();
      expect(await run.exited).toBe(1);
      expect(run.output.stdout).toMatch(/customer\/landing\/run-c1.json/);
      expect(run.output.stdout).toMatch(/: ABORTED/);
    } finally {
      run.child.kill();
    }
  }, 30_000);

  it('stedi generate --stage uploads the generated files to the landing prefixes', async () => {
    const generated = stedi(['generate', '--customers', '12', '--stage', STAGE]);
    expect(generated.stderr).toBe('');
    expect(generated.status).toBe(0);
    for (const dataset of ['customer', 'accelerometer', 'step_trainer']) {
      const { Contents = [] } = await s3.send(
        new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${dataset}/landing/${dataset}-` }),
      );
      expect(Contents.length).toBeGreaterThan(0);
      for (const { Key } of Contents) expect(generated.stdout).toContain(`to s3://${BUCKET}/${Key}`);
    }
    await deliverQueue(() => Promise.resolve({ batchItemFailures: [] })); // leave the queue empty for later tests
  });

  it('stedi watch --stage follows the executions of the deployed pipeline as they start and end', async () => {
    await stopRunning();
    const watch = startStedi(['watch', '--stage', STAGE]);
    try {
      await watch.until(/watching the executions of stedi-lakehouse-test/);
      await sfn.send(
        new StartExecutionCommand({
          stateMachineArn,
          name: 'watched-run',
          input: JSON.stringify({ from: 'accelerometer', reason: 's3', files: ['accelerometer/landing/a.json'] }),
        }),
      );
      await watch.until(/execution watched-run started: from accelerometer, 1 file\(s\)/);
      await stopRunning();
      await watch.until(/execution watched-run ABORTED/);
      watch.child.kill('SIGINT');
      expect(await watch.exited).toBe(0);
    } finally {
      watch.child.kill();
    }
  }, 30_000);

  it('refuses local-only options with --stage, naming why', () => {
    const fail = stedi(['run', '--stage', STAGE, '--fail', 'machine_learning_curated']);
    expect(fail.status).toBe(2);
    expect(fail.stderr).toMatch(/--fail applies to local runs, not with --stage/);
    const rebuild = stedi(['run', '--stage', STAGE, '--rebuild']);
    expect(rebuild.status).toBe(2);
    expect(rebuild.stderr).toMatch(/--rebuild applies to local runs.*every run checks the landing files that changed/);
    const window = stedi(['watch', '--stage', STAGE, '--batch-window', '10']);
    expect(window.status).toBe(2);
    expect(window.stderr).toMatch(/--batch-window applies to local runs.*notifications start the runs/);
    const both = stedi(['generate', '--out', dir, '--stage', STAGE]);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/exactly one of --out DIR, --lake DIR or --stage NAME/);
  });
});
