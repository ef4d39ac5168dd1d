import { expect } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStacksCommand,
  UpdateStackCommand,
} from '@aws-sdk/client-cloudformation';
import { AthenaClient, CreateWorkGroupCommand } from '@aws-sdk/client-athena';
import { CreateDatabaseCommand, CreateTableCommand, GlueClient } from '@aws-sdk/client-glue';
import { PutBucketVersioningCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ListExecutionsCommand, SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { PIPELINE_RESULTS_PREFIX, USER_RESULTS_PREFIX, userResultsLocation } from '../../src/aws/athena';
import { AWS_CALL_LOG_ENV, RecordedAwsCall } from '../../src/aws/clients';
import { required } from '../../src/required';
import { authorisationsFor, CallContext } from '../helpers/aws-permissions';
import { isAllowed, resolveTemplateString, Statement } from '../helpers/iam';
import { MotoServer, startMoto } from '../helpers/moto';
import { aSecondLater, until } from '../helpers/wait';
import {
  GlueTable,
  LambdaFunction,
  ROOT,
  STAGE,
  Template,
  ofType,
  outDir,
  resource,
  statementsOf,
  subOf,
  template,
} from './template';

describe("serverless package: the CLI user's policy against the calls the CLI makes", () => {
  // Every `--stage` command runs against the packaged template deployed on moto, with STEDI_AWS_CALL_LOG set:
  // src/aws/clients.ts, through which the CLI creates its AWS clients, records each command they send. Each
  // is mapped to the IAM actions and resources the Service Authorization Reference and the API references
  // give for it (tests/helpers/aws-permissions.ts), and the packaged CliUserPolicy must allow every one
  // (tests/helpers/iam.ts). moto enforces no IAM: that check is this test's.
  const StackName = `stedi-lakehouse-${STAGE}`;
  const BIN = path.join(ROOT, 'bin', 'stedi.js');
  let calls: RecordedAwsCall[] = [];
  let context: CallContext;
  let values: Record<string, string>;
  let moto: MotoServer;
  let work: string;

  type MotoClientConfig = {
    endpoint: string;
    region: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
    forcePathStyle: boolean;
  };

  /** What moto does not do of the template, done as CloudFormation would, so the CLI finds the stack as on AWS. */
  async function deploy(config: MotoClientConfig) {
    const cfn = new CloudFormationClient(config);
    const s3 = new S3Client(config);
    await cfn.send(
      new CreateStackCommand({
        StackName,
        TemplateBody: readFileSync(path.join(outDir, 'cloudformation-template-create-stack.json'), 'utf8'),
      }),
    );
    const created = required((await cfn.send(new DescribeStacksCommand({ StackName }))).Stacks?.[0], 'the stack');
    const deploymentBucket = created.Outputs?.find(
      (o) => o.OutputKey === 'ServerlessDeploymentBucketName',
    )?.OutputValue;
    await s3.send(
      new PutObjectCommand({
        Bucket: deploymentBucket,
        Key: resource<LambdaFunction>('OnLandingLambdaFunction').Properties.Code.S3Key,
        Body: readFileSync(path.join(outDir, 'stedi-lakehouse.zip')),
      }),
    );
    // moto creates no Glue database or Athena workgroup from a template, and drops the outputs that name
    // them: they get the names the template gives them, the outputs those names.
    const database = resource<{ DatabaseInput: { Name: string } }>('GlueDatabase').Properties.DatabaseInput.Name;
    const forMoto = JSON.parse(JSON.stringify(template)) as Template;
    forMoto.Outputs.GlueDatabaseName = { Value: database };
    forMoto.Outputs.AthenaWorkGroupName = { Value: StackName };
    await cfn.send(
      new UpdateStackCommand({
        StackName,
        TemplateBody: JSON.stringify(forMoto),
        Capabilities: ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM'],
      }),
    );
    const stack = required((await cfn.send(new DescribeStacksCommand({ StackName }))).Stacks?.[0], 'the stack');
    const outputs = Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
    const bucket = required(outputs.DataBucketName, 'the DataBucketName output');
    // moto leaves the bucket unversioned; the template versions it, so S3 gives each upload a VersionId.
    await s3.send(
      new PutBucketVersioningCommand({
        Bucket: bucket,
        VersioningConfiguration: resource<{ VersioningConfiguration: { Status: 'Enabled' } }>('DataBucket').Properties
          .VersioningConfiguration,
      }),
    );
    const glue = new GlueClient(config);
    await glue.send(new CreateDatabaseCommand({ DatabaseInput: { Name: database } }));
    for (const [, table] of ofType<GlueTable>('AWS::Glue::Table')) {
      const input = table.Properties.TableInput;
      await glue.send(
        new CreateTableCommand({
          DatabaseName: database,
          TableInput: {
            ...input,
            StorageDescriptor: {
              ...input.StorageDescriptor,
              Location: required(subOf(input.StorageDescriptor.Location), `${input.Name}'s location`).replace(
                '${DataBucket}',
                bucket,
              ),
            },
          },
        }),
      );
    }
    await new AthenaClient(config).send(
      new CreateWorkGroupCommand({
        Name: StackName,
        Configuration: { ResultConfiguration: { OutputLocation: `s3://${bucket}/${PIPELINE_RESULTS_PREFIX}` } },
      }),
    );
    // The CLI puts its results under its caller's aws:userid, which STS gives it (moto's caller here).
    const userId = required((await new STSClient(config).send(new GetCallerIdentityCommand({}))).UserId, 'UserId');
    const resultsLocation = userResultsLocation(bucket, userId);
    // One build record, so that `tables` reads one that exists and others that do not.
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'checks/table_builds/customer_curated.json',
        Body: JSON.stringify({ table_name: 'customer_curated', run_id: 's3-1', built_at: '2026-11-28T05:35:12.000Z' }),
      }),
    );
    return { outputs, database, resultsLocation, userId };
  }

  /** A CLI child process, its output and exit awaitable. */
  function stedi(args: string[], env: NodeJS.ProcessEnv) {
    const child = spawn(process.execPath, [BIN, ...args], { env });
    const output = { stdout: '', stderr: '' };
    child.stdout.on('data', (c) => (output.stdout += c));
    child.stderr.on('data', (c) => (output.stderr += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const printed = async (what: RegExp) => {
      await until(() => what.test(output.stdout + output.stderr), `${what}`, { timeoutMs: 20_000 }).catch(() => {
        throw new Error(`stedi ${args.join(' ')}: no ${what} in\n${output.stdout}\n${output.stderr}`);
      });
    };
    return { child, output, exited, until: printed };
  }

  beforeAll(async () => {
    moto = await startMoto();
    work = mkdtempSync(path.join(tmpdir(), 'stedi-cli-calls-'));
    const config: MotoClientConfig = {
      endpoint: moto.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      forcePathStyle: true,
    };
    const { outputs, database, resultsLocation, userId } = await deploy(config);
    const stateMachineArn = required(outputs.StateMachineArn, 'the StateMachineArn output');
    values = {
      'AWS::Partition': 'aws',
      'AWS::Region': 'us-east-1',
      'AWS::AccountId': '123456789012',
      'AWS::StackName': StackName,
      DataBucket: required(outputs.DataBucketName, 'the DataBucketName output'),
      PipelineStateMachine: stateMachineArn,
      'PipelineStateMachine.Name': required(stateMachineArn.split(':').pop(), 'the state machine name'),
      AthenaWorkGroup: required(outputs.AthenaWorkGroupName, 'the AthenaWorkGroupName output'),
      GlueDatabase: database,
    };
    context = {
      partition: 'aws',
      region: 'us-east-1',
      account: '123456789012',
      workGroup: StackName,
      resultsLocation,
      userId,
    };

    const log = path.join(work, 'aws-calls.jsonl');
    const env = { ...process.env, ...moto.env, STEDI_POLL_MS: '50', [AWS_CALL_LOG_ENV]: log };
    const sfn = new SFNClient(config);
    const stopRunning = async () => {
      for (const e of (await sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING' })))
        .executions ?? [])
        await sfn.send(new StopExecutionCommand({ executionArn: e.executionArn }));
    };
    const run = async (args: string[], expected: (number | null)[] = [0]) => {
      const cli = stedi(args, env);
      const code = await cli.exited;
      if (!expected.includes(code))
        throw new Error(`stedi ${args.join(' ')} exited ${code}:\n${cli.output.stdout}\n${cli.output.stderr}`);
    };
    const stage = ['--stage', STAGE];

    await run(['start', ...stage, '--from', 'step_trainer']);
    await run(['status', ...stage]);
    await stopRunning();
    // run --stage: starts an execution and follows it (moto never ends one: the test stops it).
    const followed = stedi(['run', ...stage, '--from', 'customer'], env);
    await followed.until(/started arn:/);
    await followed.until(/→ /);
    await stopRunning();
    expect(await followed.exited).toBe(1);
    // drop --wait: uploads, then follows the execution that picks the file up, started here as the landing
    // Lambda would (moto runs no Lambda).
    const file = path.join(work, 'customers-9.json');
    writeFileSync(file, '{"email":"a@example.com"}\n');
    await aSecondLater(); // S3 dates an upload to the second: after the executions before
    const drop = stedi(['drop', file, '--dataset', 'customer', ...stage, '--wait', '--wait-timeout', '30'], env);
    await drop.until(/uploaded .* \(version /);
    await sfn.send(
      new StartExecutionCommand({
        stateMachineArn,
        name: 's3-picks-up-customers-9',
        input: JSON.stringify({ from: 'customer', reason: 's3', files: ['customer/landing/customers-9.json'] }),
      }),
    );
    await drop.until(/picked it up/);
    await stopRunning();
    expect(await drop.exited).toBe(1);
    await run(['generate', '--customers', '3', ...stage]);
    await run(['tables', ...stage]);
    await run(['query', ...stage, 'select 1 as one']);
    await run(['quarantine', ...stage]);
    await run(['check', ...stage], [0, 1]); // moto's Athena returns whatever it has: pass or fail
    const listings = () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"ListExecutionsCommand"')).length;
    const listedBefore = listings();
    const watch = stedi(['watch', ...stage], env);
    await watch.until(/watching the executions/);
    await until(() => listings() >= listedBefore + 2, 'the watch to poll again after its first listing');
    watch.child.kill('SIGINT');
    expect(await watch.exited).toBe(0);

    calls = readFileSync(log, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as RecordedAwsCall);
  }, 180_000);

  afterAll(async () => {
    await moto?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('records every AWS command the CLI source sends (so the check below sees them all)', () => {
    // The CLI's AWS code: src/cli/ (every folder of it) and the src/aws/ modules it uses.
    // step-functions-port.ts is the landing Lambda's, whose role is checked in least-privilege.test.ts.
    const files = [
      ...readdirSync(path.join(ROOT, 'src', 'cli'), { recursive: true, encoding: 'utf8' }).map((f) =>
        path.join(ROOT, 'src', 'cli', f),
      ),
      ...readdirSync(path.join(ROOT, 'src', 'aws'))
        .filter((f) => f !== 'step-functions-port.ts')
        .map((f) => path.join(ROOT, 'src', 'aws', f)),
    ].filter((f) => f.endsWith('.ts'));
    const sent = new Set<string>();
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/new (\w+Command)\(/g)) sent.add(required(m[1], 'a command name'));
      for (const m of text.matchAll(/\bpaginate(\w+)\(/g)) sent.add(`${m[1]}Command`);
    }
    expect(sent.size).toBeGreaterThan(5);
    expect([...sent].filter((c) => !calls.some((call) => call.command === c)).sort()).toEqual([]);
  });

  it('allows every call the CLI makes, on the resource it names (Service Authorization Reference; S3 GetObject/HeadObject: s3:GetObjectVersion with a VersionId)', () => {
    const statements: Statement[] = statementsOf('CliUserPolicy').map((s) => ({
      ...s,
      Resource: s.Resource.map((r) => resolveTemplateString(r, values)),
      // iam.ts evaluates conditions of plain strings; the CLI user's statements have none today.
      Condition: s.Condition as Statement['Condition'],
    }));
    for (const call of calls.filter((c) => c.command === 'StartQueryExecutionCommand')) {
      expect(call.input.WorkGroup).toBe(context.workGroup); // GetQueryExecution/Results are checked on it
      // Each query's results under the caller's own prefix (GetQueryResults is checked on it).
      expect(call.input.ResultConfiguration).toEqual({
        OutputLocation: context.resultsLocation,
        EncryptionConfiguration: { EncryptionOption: 'SSE_S3' },
      });
    }
    const denied = calls
      .flatMap((call) => authorisationsFor(call, context))
      .filter((need) => !isAllowed(statements, need))
      .map((need) => `${need.action} on ${need.resource} (${need.why})`);
    expect([...new Set(denied)]).toEqual([]);
  });

  it("keeps query results with their owner: a CLI user reads and writes only their own results, never another user's nor the pipeline's, and the pipeline never a user's (IAM User Guide, \"IAM policy elements: Variables and tags\": aws:userid)", () => {
    const resolve = (owner: string): Statement[] =>
      statementsOf(owner).map((st) => ({
        ...st,
        Resource: st.Resource.map((r) => resolveTemplateString(r, values)),
        Condition: st.Condition as Statement['Condition'],
      }));
    const bucket = values.DataBucket!;
    const results = (key: string) => `arn:aws:s3:::${bucket}/${key}`;
    const asUser = (userId: string, action: string, key: string) => ({
      action,
      resource: results(key),
      context: { 'aws:userid': userId },
    });
    const cli = resolve('CliUserPolicy');
    const alice = 'AIDAALICEEXAMPLE';
    const bobSession = 'AROABOBEXAMPLE:bob@example.com'; // an assumed role: role-id:session-name
    for (const action of ['s3:GetObject', 's3:PutObject']) {
      expect(isAllowed(cli, asUser(alice, action, `${USER_RESULTS_PREFIX}${alice}/q-1.csv`))).toBe(true);
      expect(isAllowed(cli, asUser(bobSession, action, `${USER_RESULTS_PREFIX}${bobSession}/q-2.csv`))).toBe(true);
      expect(isAllowed(cli, asUser(alice, action, `${USER_RESULTS_PREFIX}${bobSession}/q-2.csv`))).toBe(false);
      expect(isAllowed(cli, asUser(bobSession, action, `${USER_RESULTS_PREFIX}${alice}/q-1.csv`))).toBe(false);
      expect(isAllowed(cli, asUser(alice, action, `${PIPELINE_RESULTS_PREFIX}q-3.csv`))).toBe(false);
      expect(isAllowed(cli, asUser(alice, action, 'athena-results/q-4.csv'))).toBe(false);
    }
    const pipeline = resolve('PipelineChecksPolicy');
    const role = 'AROAPIPELINEROLE:states-session';
    expect(isAllowed(pipeline, asUser(role, 's3:GetObject', `${PIPELINE_RESULTS_PREFIX}q-3.csv`))).toBe(true);
    expect(isAllowed(pipeline, asUser(role, 's3:GetObject', `${USER_RESULTS_PREFIX}${alice}/q-1.csv`))).toBe(false);
  });
});
