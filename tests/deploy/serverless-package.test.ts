import { expect } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CloudFormationClient,
  CreateStackCommand,
  DeleteStackCommand,
  DescribeStackResourceCommand,
  DescribeStacksCommand,
  ListStackResourcesCommand,
  UpdateStackCommand,
} from '@aws-sdk/client-cloudformation';
import { AthenaClient, CreateWorkGroupCommand } from '@aws-sdk/client-athena';
import { CreateDatabaseCommand, CreateTableCommand, GlueClient } from '@aws-sdk/client-glue';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { ListExecutionsCommand, SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { PIPELINE_RESULTS_PREFIX, USER_RESULTS_PREFIX, userResultsLocation } from '../../src/aws/athena';
import { AWS_CALL_LOG_ENV, RecordedAwsCall } from '../../src/aws/clients';
import { DERIVED_TABLES, LANDING_TABLES, LandingTableName } from '../../src/layout';
import { readDerivedTables } from '../../src/derived-tables';
import { JOB_NAMES, loadJobs } from '../../src/pipeline';
import { projectRoot } from '../../src/project';
import { required } from '../../src/required';
import { readLandingTables } from '../../src/sql/ddl';
import { checksFor, loadChecks, loadSavedQueries } from '../../src/checks/definitions';
import { supportTables } from '../../src/support-tables';
import { authorisationsFor, CallContext } from '../helpers/aws-permissions';
import { isAllowed, resolveTemplateString, Statement, TemplateValue } from '../helpers/iam';
import { MotoServer, startMoto } from '../helpers/moto';
import { aSecondLater, until } from '../helpers/wait';

// `serverless package` builds the deploy template offline; these tests read what it generated.
// No AWS account is used: dummy credentials, and IMDS disabled so nothing waits on it.

// The template's parts these tests read, typed as CloudFormation documents them; values compared whole
// (toEqual) stay unknown.
interface Resource<P = unknown> {
  Type: string;
  Properties: P;
  DependsOn?: string | string[];
  Condition?: string;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}
interface Template {
  Parameters: Record<string, { Default?: string }>;
  Conditions: Record<string, unknown>;
  Resources: Record<string, Resource>;
  Outputs: Record<string, { Value: unknown }>;
}
type Conditions = Record<string, Record<string, unknown>>;
interface PolicyDocument {
  Statement: RawStatement | RawStatement[];
}
interface RawStatement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: TemplateValue | TemplateValue[];
  Condition?: Conditions;
  Principal?: '*' | { Service?: string | string[] };
}
interface Bucket {
  BucketName: TemplateValue;
  BucketEncryption: {
    ServerSideEncryptionConfiguration: { ServerSideEncryptionByDefault: { SSEAlgorithm: string } }[];
  };
  PublicAccessBlockConfiguration: unknown;
  VersioningConfiguration: unknown;
  LifecycleConfiguration: { Rules: unknown[] };
  NotificationConfiguration: {
    QueueConfigurations: {
      Event: string;
      Queue: unknown;
      Filter: { S3Key: { Rules: { Name: string; Value: string }[] } };
    }[];
  };
}
interface Queue {
  SqsManagedSseEnabled?: boolean;
  RedrivePolicy?: { deadLetterTargetArn: unknown; maxReceiveCount: number };
  VisibilityTimeout?: number;
  MessageRetentionPeriod?: number;
}
interface LambdaFunction {
  Timeout: number;
  ReservedConcurrentExecutions?: number;
  Environment: { Variables: Record<string, unknown> };
  Code: { S3Key: string };
}
interface Alarm {
  Namespace?: string;
  MetricName?: string;
  Dimensions?: unknown;
  AlarmActions: unknown;
  AlarmDescription?: string;
  AlarmName: TemplateValue;
  Metrics?: {
    MetricStat?: { Metric: { Namespace: string; MetricName?: string; Dimensions: unknown } };
    ReturnData?: boolean;
    Expression?: string;
  }[];
}
interface GlueJob {
  Name: unknown;
  Timeout: number;
  Command: { ScriptLocation: TemplateValue };
  DefaultArguments: Record<string, unknown>;
}
interface GlueTable {
  DatabaseName: unknown;
  OpenTableFormatInput?: unknown;
  TableInput: {
    Name: string;
    StorageDescriptor: {
      Columns: { Name: string; Type?: string }[];
      Location: unknown;
      SerdeInfo: { SerializationLibrary: string };
    };
  };
}
interface StateMachine {
  DefinitionString: string;
  DefinitionSubstitutions: Record<string, unknown>;
  LoggingConfiguration: { Destinations: unknown; Level: string };
  TracingConfiguration: unknown;
  RoleArn: unknown;
}
interface EventRule {
  State: string;
  EventPattern: unknown;
  Targets: unknown[];
}
/** The dashboard body: widgets whose metrics are [namespace, name, dimension, value, ..., options?]. */
interface DashboardBody {
  widgets: { type: string; properties: { metrics?: unknown[][]; alarms?: unknown } }[];
}
interface EventSourceMapping {
  MaximumBatchingWindowInSeconds?: number;
  ScalingConfig?: unknown;
}

/** The text of a { "Fn::Sub": text } value (the only form the template uses), else undefined. */
const subOf = (value: unknown): string | undefined =>
  typeof value === 'object' && value !== null && 'Fn::Sub' in value && typeof value['Fn::Sub'] === 'string'
    ? value['Fn::Sub']
    : undefined;

const ROOT = projectRoot();
const SERVERLESS = path.join(ROOT, 'node_modules', '.bin', 'serverless');
const STAGE = 'test';
// The framework and serverless-esbuild leave work folders in the temporary directory: give them one of
// ours, removed after the tests.
const SCRATCH = mkdtempSync(path.join(tmpdir(), 'stedi-sls-tmp-'));
const OFFLINE_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  TMPDIR: SCRATCH,
  AWS_ACCESS_KEY_ID: 'offline',
  AWS_SECRET_ACCESS_KEY: 'offline',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_PROFILE: '',
  SLS_TELEMETRY_DISABLED: '1',
  SLS_NOTIFICATIONS_MODE: 'off',
};

/** Actions that have no resource-level permissions, so Resource "*" is the only form IAM accepts. */
const STAR_RESOURCE_ACTIONS = new Set([
  'cloudwatch:PutMetricData',
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'xray:GetSamplingRules',
  'xray:GetSamplingTargets',
  'lakeformation:GetDataAccess',
]);

const LANDING_PREFIXES = ['customer/landing/', 'accelerometer/landing/', 'step_trainer/landing/'];
const ref = (id: string) => ({ Ref: id });
const arnOf = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const list = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];
const pascal = (name: string) =>
  name
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');

let outDir: string;
let templateFile: string;
let template: Template;

/** The resource with this logical id, its properties read as `P`. */
const resource = <P = unknown>(id: string): Resource<P> => {
  const found = template.Resources[id];
  if (!found) throw new Error(`the template has no resource ${id}`);
  return found as Resource<P>;
};
const ofType = <P = unknown>(type: string): [string, Resource<P>][] =>
  Object.entries(template.Resources).filter(([, r]) => r.Type === type) as [string, Resource<P>][];

interface PolicyStatement {
  owner: string;
  Effect: 'Allow' | 'Deny';
  Action: string[];
  Resource: TemplateValue[];
  Condition?: Conditions;
  Principal?: RawStatement['Principal'];
}

/** Every statement of every IAM role, managed policy and resource policy in the template. */
function policyStatements(): PolicyStatement[] {
  const out: PolicyStatement[] = [];
  const add = (owner: string, document: PolicyDocument | undefined) => {
    for (const s of list(document?.Statement))
      out.push({ ...s, owner, Action: list(s.Action), Resource: list(s.Resource) });
  };
  for (const [id, r] of Object.entries(template.Resources)) {
    const properties = r.Properties as {
      Policies?: { PolicyDocument: PolicyDocument }[];
      PolicyDocument?: PolicyDocument;
    };
    if (r.Type === 'AWS::IAM::Role') for (const p of list(properties.Policies)) add(id, p.PolicyDocument);
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') add(id, properties.PolicyDocument);
    if (['AWS::S3::BucketPolicy', 'AWS::SQS::QueuePolicy', 'AWS::SNS::TopicPolicy'].includes(r.Type))
      add(id, properties.PolicyDocument);
  }
  return out;
}

/** The dashboard's body, the JSON text of its Fn::Sub. */
const dashboardBody = () =>
  JSON.parse(
    String(subOf(resource<{ DashboardBody: unknown }>('PipelineDashboard').Properties.DashboardBody)),
  ) as DashboardBody;

const statementsOf = (owner: string) => policyStatements().filter((s) => s.owner === owner && s.Effect === 'Allow');

beforeAll(() => {
  outDir = mkdtempSync(path.join(tmpdir(), 'stedi-sls-package-'));
  const result = spawnSync(SERVERLESS, ['package', '--stage', STAGE, '--package', outDir], {
    cwd: ROOT,
    env: OFFLINE_ENV,
    encoding: 'utf8',
    timeout: 170_000,
  });
  if (result.status !== 0) {
    throw new Error(
      `serverless package failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  templateFile = path.join(outDir, 'cloudformation-template-update-stack.json');
  template = JSON.parse(readFileSync(templateFile, 'utf8')) as Template;
}, 180_000);

afterAll(() => {
  if (outDir) rmSync(outDir, { recursive: true, force: true });
  rmSync(SCRATCH, { recursive: true, force: true });
});

describe('serverless package: the data bucket and the landing queue', () => {
  it('encrypts, blocks public access, keeps versions and expires quarantine and old versions', () => {
    const bucket = resource<Bucket>('DataBucket').Properties;
    expect(
      bucket.BucketEncryption.ServerSideEncryptionConfiguration[0]?.ServerSideEncryptionByDefault.SSEAlgorithm,
    ).toMatch(/^(AES256|aws:kms)$/);
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    const rules = bucket.LifecycleConfiguration.Rules as { Prefix?: string; ExpirationInDays?: number }[];
    // A quarantine or validated batch lives as long as its landing files: no rule expires one by age.
    for (const dataset of ['customer', 'accelerometer', 'step_trainer'])
      for (const zone of ['quarantine', 'validated', 'landing'])
        expect(
          rules.filter((r) => r.ExpirationInDays !== undefined && `${dataset}/${zone}/`.startsWith(r.Prefix ?? '')),
        ).toEqual([]);
    expect(rules).toContainEqual(
      expect.objectContaining({
        Status: 'Enabled',
        NoncurrentVersionExpiration: { NoncurrentDays: expect.any(Number) },
      }),
    );
  });

  it('keeps the data bucket when the stack is removed or the bucket replaced (CloudFormation User Guide, "DeletionPolicy attribute" and "UpdateReplacePolicy attribute": Retain)', () => {
    expect(resource('DataBucket')).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    // Only the lake is kept, TLS-only as it was (its policy): everything else (queues, tables, the lock, logs)
    // goes with the stack. (The framework keeps its Lambda versions, AWS::Lambda::Version, Retain of its own.)
    const retained = Object.entries(template.Resources)
      .filter(([, r]) => r.Type !== 'AWS::Lambda::Version')
      .filter(([, r]) => r.DeletionPolicy === 'Retain' || r.UpdateReplacePolicy === 'Retain')
      .map(([id]) => id);
    expect(retained.sort()).toEqual(['DataBucket', 'DataBucketPolicy']);
    expect(resource('DataBucketPolicy')).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });

  it('refuses every request without TLS', () => {
    const deny = policyStatements().find(
      (s) => s.owner === 'DataBucketPolicy' && s.Effect === 'Deny' && s.Condition?.Bool,
    );
    expect(deny).toMatchObject({
      Principal: '*',
      Action: ['s3:*'],
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
    expect(deny!.Resource).toEqual([arnOf('DataBucket'), { 'Fn::Sub': '${DataBucket.Arn}/*' }]);
  });

  it('sends ObjectCreated and ObjectRemoved (Delete, DeleteMarkerCreated) of .json files under the three landing prefixes to the landing queue (Amazon S3 User Guide, "Event notification types and destinations")', () => {
    const bucket = resource<Bucket>('DataBucket');
    const configs = bucket.Properties.NotificationConfiguration.QueueConfigurations;
    expect(configs).toHaveLength(6);
    const filters = configs.map((c) => {
      expect(c.Queue).toEqual(arnOf('LandingQueue'));
      const rules = Object.fromEntries(c.Filter.S3Key.Rules.map((r) => [r.Name, r.Value]));
      return [c.Event, rules.prefix, rules.suffix];
    });
    expect(filters.sort()).toEqual(
      LANDING_PREFIXES.flatMap((p) => [
        ['s3:ObjectCreated:*', p, '.json'],
        ['s3:ObjectRemoved:*', p, '.json'],
      ]).sort(),
    );
    // S3 checks it may send to the queue when the notification is set: the policy must exist first.
    expect(list(bucket.DependsOn)).toContain('LandingQueuePolicy');
  });

  it('lets only this bucket send to the queue', () => {
    const statements = policyStatements().filter((s) => s.owner === 'LandingQueuePolicy');
    expect(statements).toHaveLength(1);
    const statement = required(statements[0], 'the landing queue policy statement');
    expect(statement).toMatchObject({
      Effect: 'Allow',
      Principal: { Service: 's3.amazonaws.com' },
      Action: ['sqs:SendMessage'],
    });
    expect(statement.Resource).toEqual([arnOf('LandingQueue')]);
    const bucketName = String(subOf(resource<Bucket>('DataBucket').Properties.BucketName));
    expect(statement.Condition?.ArnEquals?.['aws:SourceArn']).toEqual({
      'Fn::Sub': `arn:\${AWS::Partition}:s3:::${bucketName}`,
    });
    expect(statement.Condition?.StringEquals?.['aws:SourceAccount']).toEqual(ref('AWS::AccountId'));
  });

  it('encrypts both queues and moves a message that keeps failing to the dead-letter queue', () => {
    const queue = resource<Queue>('LandingQueue').Properties;
    const dlq = resource<Queue>('LandingDeadLetterQueue').Properties;
    expect(queue.SqsManagedSseEnabled).toBe(true);
    expect(dlq.SqsManagedSseEnabled).toBe(true);
    expect(queue.RedrivePolicy?.deadLetterTargetArn).toEqual(arnOf('LandingDeadLetterQueue'));
    expect(queue.RedrivePolicy?.maxReceiveCount).toBeGreaterThan(1);
    // Lambda refuses an SQS source whose visibility timeout is below the function's timeout.
    expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(
      resource<LambdaFunction>('OnLandingLambdaFunction').Properties.Timeout,
    );
  });

  it('keeps a deferred batch until any execution has ended: its receives, one per visibility timeout, outlast the execution timeout (SQS guide, "Using dead-letter queues": moved once the receive count exceeds maxReceiveCount)', () => {
    // The landing handler hands a batch back while an execution runs; the message comes back after the
    // visibility timeout, a receive each time. An execution ends by its TimeoutSeconds at the latest.
    const queue = resource<Queue>('LandingQueue').Properties;
    const definition = JSON.parse(resource<StateMachine>('PipelineStateMachine').Properties.DefinitionString) as {
      TimeoutSeconds: number;
    };
    expect(definition.TimeoutSeconds).toBeGreaterThan(0);
    const deferredFor =
      required(queue.RedrivePolicy, 'RedrivePolicy').maxReceiveCount * (queue.VisibilityTimeout ?? 30);
    expect(deferredFor).toBeGreaterThan(definition.TimeoutSeconds);
    expect(queue.MessageRetentionPeriod).toBeGreaterThan(deferredFor);
  });
});

describe('serverless package: Glue', () => {
  it('creates the database, the three landing tables from the DDL in glue/tables/ and their validated copies', () => {
    expect(resource('GlueDatabase').Type).toBe('AWS::Glue::Database');
    const ddl = readLandingTables(path.join(ROOT, 'glue'));
    const validatedName = (landing: string) => landing.replace(/_landing$/, '_validated');
    // Besides them the five derived tables (below), the validated copies, and the quarantine and build-log
    // tables (with Athena below).
    const all = ofType<GlueTable>('AWS::Glue::Table');
    expect(all.map(([, t]) => t.Properties.TableInput.Name).sort()).toEqual(
      [
        ...LANDING_TABLES,
        ...LANDING_TABLES.map(validatedName),
        ...DERIVED_TABLES,
        ...supportTables().map((t) => t.name),
      ].sort(),
    );
    // <dataset>_validated: Parquet at <dataset>/validated/, the DDL's columns after the source file's key.
    for (const landing of LANDING_TABLES) {
      const [, table] = all.find(([, t]) => t.Properties.TableInput.Name === validatedName(landing))!;
      const input = table.Properties.TableInput;
      const dataset = landing.replace(/_landing$/, '');
      expect(input.StorageDescriptor.Columns.map((c) => [c.Name, c.Type])).toEqual([
        ['source_file', 'string'],
        ...ddl[landing].columns.map((c) => [c.name, c.type]),
      ]);
      expect(input.StorageDescriptor.Location).toEqual({ 'Fn::Sub': `s3://\${DataBucket}/${dataset}/validated/` });
      expect(input.StorageDescriptor.SerdeInfo.SerializationLibrary).toBe(
        'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe',
      );
    }
    const tables = all.filter(([, t]) => (LANDING_TABLES as readonly string[]).includes(t.Properties.TableInput.Name));
    for (const [, table] of tables) {
      const input = table.Properties.TableInput;
      const definition = ddl[input.Name as LandingTableName];
      expect(table.Properties.DatabaseName).toEqual(ref('GlueDatabase'));
      expect(input.StorageDescriptor.Columns).toEqual(
        definition.columns.map((c) => ({ Name: c.name, Type: c.type, Comment: c.comment })),
      );
      expect(input.StorageDescriptor.Location).toEqual({
        'Fn::Sub': definition.location.replace('${bucket}', '${DataBucket}'),
      });
      expect(input.StorageDescriptor.SerdeInfo.SerializationLibrary).toBe('org.openx.data.jsonserde.JsonSerDe');
    }
  });

  it('defines each table a job writes before any job runs as an Apache Iceberg table, format version 2, with the columns it writes and identity partitions on its partition keys (CloudFormation, AWS::Glue::Table IcebergInput: MetadataOperation CREATE, IcebergTableInput)', () => {
    const icebergType: Record<string, string> = { string: 'string', bigint: 'long', int: 'int', double: 'double' };
    for (const table of readDerivedTables()) {
      const job = required(
        loadJobs().find((j) => j.target === table.name),
        `the job that writes ${table.name}`,
      );
      const { Properties } = resource<GlueTable>(`${pascal(table.name)}Table`);
      const all = [...table.columns, ...table.partitionKeys];
      const location = { 'Fn::Sub': `s3://\${DataBucket}/${job.location}` };
      expect(Properties.DatabaseName).toEqual(ref('GlueDatabase'));
      // Hidden partitioning: no Hive PartitionKeys (Glue refuses them on an Iceberg table).
      expect(Properties.TableInput).toEqual({
        Name: table.name,
        Description: expect.any(String),
        TableType: 'EXTERNAL_TABLE',
        StorageDescriptor: { Columns: all.map((c) => ({ Name: c.name, Type: c.type })), Location: location },
      });
      const fields = all.map((c, i) => ({ Id: i + 1, Name: c.name, Type: icebergType[c.type], Required: false }));
      expect(Properties.OpenTableFormatInput).toEqual({
        IcebergInput: {
          MetadataOperation: 'CREATE',
          Version: '2',
          IcebergTableInput: {
            Location: location,
            Schema: { Type: 'struct', Fields: fields },
            PartitionSpec: {
              SpecId: 0,
              Fields: job.partitionKeys.map((k, i) => ({
                SourceId: fields.find((f) => f.Name === k)!.Id,
                FieldId: 1000 + i,
                Name: k,
                Transform: 'identity',
              })),
            },
            Properties: { 'format-version': '2' },
          },
        },
      });
      expect(resource<GlueJob>(`${pascal(job.name)}Job`).Properties.DefaultArguments['--target_table']).toBe(
        table.name,
      );
    }
  });

  it('enables Iceberg on every job as AWS documents it for Glue 5.1: --datalake-formats iceberg and one --conf of the Glue catalog glue_catalog with S3FileIO (AWS Glue guide, "Using the Iceberg framework in AWS Glue")', () => {
    for (const job of loadJobs()) {
      const args = resource<GlueJob>(`${pascal(job.name)}Job`).Properties.DefaultArguments;
      expect(args['--datalake-formats']).toBe('iceberg');
      expect(args['--conf']).toEqual({
        'Fn::Sub': [
          'spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions',
          'spark.sql.catalog.glue_catalog=org.apache.iceberg.spark.SparkCatalog',
          'spark.sql.catalog.glue_catalog.warehouse=s3://${DataBucket}/',
          'spark.sql.catalog.glue_catalog.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog',
          'spark.sql.catalog.glue_catalog.io-impl=org.apache.iceberg.aws.s3.S3FileIO',
        ].join(' --conf '),
      });
    }
  });

  it('creates five jobs that run glue/run_sql_job.py with their own SQL, target and partitions', () => {
    // The runner and the SQL at keys of their content's hash in the deployment bucket (deploy/glue-assets.js).
    const key = (file: string) =>
      `glue-assets/${createHash('sha256').update(readFileSync(file)).digest('hex')}/${path.basename(file)}`;
    const jobs = ofType('AWS::Glue::Job');
    expect(jobs).toHaveLength(JOB_NAMES.length);
    for (const job of loadJobs()) {
      const p = resource<GlueJob>(`${pascal(job.name)}Job`).Properties;
      expect(p.Name).toEqual({ 'Fn::Sub': `\${AWS::StackName}-${job.name}` });
      expect(p).toMatchObject({
        GlueVersion: '5.1',
        WorkerType: 'G.1X',
        NumberOfWorkers: 2,
        Timeout: 30,
        ExecutionProperty: { MaxConcurrentRuns: 1 },
        JobRunQueuingEnabled: true,
        Role: arnOf('GlueJobRole'),
        Command: {
          Name: 'glueetl',
          PythonVersion: '3',
          ScriptLocation: {
            'Fn::Sub': `s3://\${ServerlessDeploymentBucket}/${key(path.join(ROOT, 'glue', 'run_sql_job.py'))}`,
          },
        },
      });
      const args = p.DefaultArguments;
      expect(args).toMatchObject({
        '--job-language': 'python',
        '--enable-observability-metrics': 'true',
        '--enable-glue-datacatalog': 'true',
        '--sql_bucket': ref('ServerlessDeploymentBucket'),
        '--sql_key': key(path.join(ROOT, 'glue', 'jobs', `${job.name}.sql`)),
        '--database': ref('GlueDatabase'),
        '--bucket': ref('DataBucket'),
        '--target_table': job.target,
        '--target_prefix': job.location,
        '--pii_salt_parameter': ref('PiiSaltParameterName'),
        '--consent_policy': ref('ConsentPolicy'),
      });
      expect(args['--partition_keys']).toBe(job.partitionKeys.length ? job.partitionKeys.join(',') : undefined);
      // The queries its "-- Diagnostics:" header names, which the runner counts after the SQL.
      const diagnostics = job.diagnostics.map((d) => key(path.join(ROOT, 'glue', 'queries', `${d.name}.sql`)));
      expect(args['--diagnostic_keys']).toBe(diagnostics.length ? diagnostics.join(',') : undefined);
      // Glue 5 logs in real time without them: the continuous-logging options are for Glue 4.0 and earlier.
      expect(Object.keys(args).filter((a) => /continuous/.test(a))).toEqual([]);
    }
  });

  it('packages the runner and each SQL file under the key the jobs name, for the deploy to upload', () => {
    const manifest = JSON.parse(readFileSync(path.join(outDir, 'glue-assets', 'manifest.json'), 'utf8')) as {
      key: string;
      file: string;
    }[];
    const named = ofType<GlueJob>('AWS::Glue::Job').flatMap(([, j]) => [
      String(subOf(j.Properties.Command.ScriptLocation)).replace('s3://${ServerlessDeploymentBucket}/', ''),
      j.Properties.DefaultArguments['--sql_key'] as string,
      ...((j.Properties.DefaultArguments['--diagnostic_keys'] as string | undefined) ?? '').split(',').filter(Boolean),
    ]);
    expect(manifest.map((a) => a.key).sort()).toEqual([...new Set(named)].sort());
    expect(manifest.map((a) => a.key)).toContainEqual(expect.stringMatching(/\/email_case_mismatches\.sql$/));
    for (const { key, file } of manifest) {
      const name = key.split('/').pop()!;
      const folder = JOB_NAMES.some((j) => `${j}.sql` === name) ? 'jobs' : 'queries';
      const source = name.endsWith('.py') ? path.join(ROOT, 'glue', name) : path.join(ROOT, 'glue', folder, name);
      expect(readFileSync(path.join(outDir, 'glue-assets', file), 'utf8')).toBe(readFileSync(source, 'utf8'));
    }
  });

  it('takes the PII salt parameter by name: no salt value anywhere in the template', () => {
    expect(template.Parameters.PiiSaltParameterName?.Default).toBe(`/stedi-lakehouse/${STAGE}/pii-salt`);
    expect(JSON.stringify(template)).not.toMatch(/pii_salt"?\s*:\s*"[^$]/i);
  });
});

describe('serverless package: the state machine', () => {
  it('deploys statemachines/pipeline.asl.json as it is, every placeholder substituted', () => {
    const machine = resource<StateMachine>('PipelineStateMachine').Properties;
    const fileText = readFileSync(path.join(ROOT, 'statemachines', 'pipeline.asl.json'), 'utf8');
    expect(typeof machine.DefinitionString).toBe('string');
    expect(JSON.parse(machine.DefinitionString)).toEqual(JSON.parse(fileText));

    const placeholders = [...new Set([...machine.DefinitionString.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1]))].sort();
    // CloudFormation fills in only the names it is given; cfn-lint (E1029) and moto refuse any other ${...}.
    expect(placeholders).toEqual(Object.keys(machine.DefinitionSubstitutions).sort());
    for (const job of JOB_NAMES)
      expect(machine.DefinitionSubstitutions[`${pascal(job)}JobName`]).toEqual(ref(`${pascal(job)}Job`));
    expect(machine.DefinitionSubstitutions.AlertsTopicArn).toEqual(ref('AlertsTopic'));
    expect(machine.DefinitionSubstitutions.ConsentPolicy).toEqual(ref('ConsentPolicy'));
    expect(machine.DefinitionSubstitutions.LockTableName).toEqual(ref('PipelineLockTable'));
  });

  it("queues a job's runs, one at a time, each with the job's own Glue timeout (the task passes none), and room in the task's timeout for one queued run ahead", () => {
    const definition = JSON.parse(resource<StateMachine>('PipelineStateMachine').Properties.DefinitionString) as {
      States: Record<string, { Resource?: string; TimeoutSeconds?: number; Parameters?: { Timeout?: number } }>;
    };
    for (const job of JOB_NAMES) {
      const task = definition.States[pascal(job)];
      const p = resource<GlueJob>(`${pascal(job)}Job`).Properties;
      expect(p).toMatchObject({
        JobRunQueuingEnabled: true,
        ExecutionProperty: { MaxConcurrentRuns: 1 },
        MaxRetries: 0,
      });
      expect(task?.Parameters).not.toHaveProperty('Timeout'); // one number: the job's
      expect(task?.TimeoutSeconds).toBeGreaterThanOrEqual(2 * p.Timeout * 60);
    }
  });

  it("lets the state machine list, stop and read only the five jobs' runs (the timeout path: GetJobRuns, BatchStopJobRun, GetJobRun)", () => {
    const glue = statementsOf('PipelineStateMachineRole').filter((st) =>
      list(st.Action).some((a) => a.startsWith('glue:')),
    );
    const allowed = glue.flatMap((st) => list(st.Action));
    expect(allowed).toEqual(expect.arrayContaining(['glue:GetJobRuns', 'glue:BatchStopJobRun', 'glue:GetJobRun']));
    for (const st of glue)
      expect(list(st.Resource)).toEqual(
        JOB_NAMES.map((j) => ({
          'Fn::Sub': `arn:\${AWS::Partition}:glue:\${AWS::Region}:\${AWS::AccountId}:job/\${${pascal(j)}Job}`,
        })),
      );
  });

  it('logs to the stack log group, traces with X-Ray and runs as its own role', () => {
    const machine = resource<StateMachine>('PipelineStateMachine').Properties;
    expect(machine.LoggingConfiguration.Destinations).toEqual([
      { CloudWatchLogsLogGroup: { LogGroupArn: arnOf('PipelineLogGroup') } },
    ]);
    expect(machine.LoggingConfiguration.Level).not.toBe('OFF');
    expect(machine.TracingConfiguration).toEqual({ Enabled: true });
    expect(machine.RoleArn).toEqual(arnOf('PipelineStateMachineRole'));
    expect(resource('PipelineLogGroup').Type).toBe('AWS::Logs::LogGroup');
  });

  it('alarms on failed, timed-out, aborted and throttled executions, and on a failed lock cleanup', () => {
    const alarms = ofType<Alarm>('AWS::CloudWatch::Alarm').filter(([, a]) => a.Properties.Namespace === 'AWS/States');
    const metricsOf = (machine: string) =>
      alarms
        .filter(
          ([, a]) =>
            JSON.stringify(a.Properties.Dimensions) ===
            JSON.stringify([{ Name: 'StateMachineArn', Value: ref(machine) }]),
        )
        .map(([, a]) => a.Properties.MetricName)
        .sort();
    expect(metricsOf('PipelineStateMachine')).toEqual([
      'ExecutionThrottled',
      'ExecutionsAborted',
      'ExecutionsFailed',
      'ExecutionsTimedOut',
    ]);
    expect(metricsOf('LockCleanupStateMachine')).toEqual(['ExecutionsFailed']);
    expect(alarms).toHaveLength(5);
  });
});

describe('serverless package: the pipeline lock', () => {
  it('is an item of its own DynamoDB table, keyed by LockName', () => {
    expect(resource('PipelineLockTable')).toMatchObject({
      Type: 'AWS::DynamoDB::Table',
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'LockName', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'LockName', AttributeType: 'S' }],
      },
    });
  });

  it('deploys statemachines/release-lock.asl.json as the lock cleanup, on the lock table, as its own role', () => {
    const machine = resource<StateMachine>('LockCleanupStateMachine').Properties;
    const fileText = readFileSync(path.join(ROOT, 'statemachines', 'release-lock.asl.json'), 'utf8');
    expect(JSON.parse(machine.DefinitionString)).toEqual(JSON.parse(fileText));
    expect(machine.DefinitionSubstitutions).toEqual({ LockTableName: ref('PipelineLockTable') });
    expect(machine.RoleArn).toEqual(arnOf('LockCleanupStateMachineRole'));
  });

  it('runs the cleanup for every pipeline execution that fails, times out or is aborted (EventBridge, Step Functions Execution Status Change)', () => {
    const rule = resource<EventRule>('LockCleanupRule').Properties;
    expect(rule.State).toBe('ENABLED');
    expect(rule.EventPattern).toEqual({
      source: ['aws.states'],
      'detail-type': ['Step Functions Execution Status Change'],
      detail: { stateMachineArn: [ref('PipelineStateMachine')], status: ['FAILED', 'TIMED_OUT', 'ABORTED'] },
    });
    expect(rule.Targets).toEqual([
      {
        Id: 'lock-cleanup',
        Arn: ref('LockCleanupStateMachine'),
        RoleArn: arnOf('LockCleanupRuleRole'),
        RetryPolicy: { MaximumEventAgeInSeconds: 900, MaximumRetryAttempts: 20 },
        DeadLetterConfig: { Arn: arnOf('LockCleanupDeadLetterQueue') },
      },
    ]);
  });

  it('keeps an event the rule cannot deliver in a dead-letter queue only that rule may send to (EventBridge User Guide, "Event retry policy and using dead-letter queues", "Granting permissions to the dead-letter queue")', () => {
    const rule = resource<EventRule>('LockCleanupRule').Properties;
    const target = required(rule.Targets[0], 'the cleanup target') as {
      RetryPolicy: { MaximumEventAgeInSeconds: number; MaximumRetryAttempts: number };
    };
    // The documented bounds: 60 s to 24 h of event age, 0 to 185 retries; well under the execution timeout,
    // so the alarm below speaks long before a waiting execution gives up.
    expect(target.RetryPolicy.MaximumEventAgeInSeconds).toBeGreaterThanOrEqual(60);
    expect(target.RetryPolicy.MaximumEventAgeInSeconds).toBeLessThanOrEqual(3600);
    expect(target.RetryPolicy.MaximumRetryAttempts).toBeLessThanOrEqual(185);
    const queue = resource<Queue>('LockCleanupDeadLetterQueue').Properties;
    expect(queue).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
    const sends = policyStatements().filter((st) => st.owner === 'LockCleanupDeadLetterQueuePolicy');
    expect(sends).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: ['sqs:SendMessage'],
        Resource: [arnOf('LockCleanupDeadLetterQueue')],
        Condition: { ArnEquals: { 'aws:SourceArn': arnOf('LockCleanupRule') } },
      }),
    ]);
  });

  it('alarms when the rule could not start the cleanup: FailedInvocations, and what it leaves out, InvocationsSentToDlq and InvocationsFailedToBeSentToDlq (EventBridge User Guide, "Monitoring Amazon EventBridge", RuleName on the default bus)', () => {
    const alarm = resource<Alarm>('LockCleanupNotStartedAlarm').Properties;
    const series = (alarm.Metrics ?? []).filter((m) => m.MetricStat);
    expect(series.map((m) => m.MetricStat?.Metric.MetricName).sort()).toEqual(
      ['FailedInvocations', 'InvocationsFailedToBeSentToDlq', 'InvocationsSentToDlq'].sort(),
    );
    for (const m of series)
      expect(m.MetricStat).toMatchObject({
        Metric: { Namespace: 'AWS/Events', Dimensions: [{ Name: 'RuleName', Value: ref('LockCleanupRule') }] },
        Stat: 'Sum',
      });
    expect(alarm.Metrics?.find((m) => m.ReturnData)).toMatchObject({ Expression: 'SUM(METRICS())' });
    expect(alarm).toMatchObject({
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching', // sent only when not zero
      AlarmActions: [ref('AlertsTopic')],
    });
  });
});

describe('serverless package: alerting and the dashboard', () => {
  it('subscribes the alert e-mail only when one is given', () => {
    expect(resource('AlertsTopic').Type).toBe('AWS::SNS::Topic');
    const subscription = resource('AlertsEmailSubscription');
    expect(subscription.Condition).toBe('HasAlertEmail');
    expect(subscription.Properties).toMatchObject({
      Protocol: 'email',
      Endpoint: ref('AlertEmail'),
      TopicArn: ref('AlertsTopic'),
    });
    expect(template.Conditions.HasAlertEmail).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [ref('AlertEmail'), ''] }] });
    expect(template.Parameters.AlertEmail?.Default).toBe('');
  });

  it('sends failed, timed-out and stopped runs of the five jobs to the topic, which lets only that rule publish', () => {
    const rule = resource<EventRule>('GlueJobFailedRule').Properties;
    expect(rule.EventPattern).toEqual({
      source: ['aws.glue'],
      'detail-type': ['Glue Job State Change'],
      detail: { jobName: JOB_NAMES.map((j) => ref(`${pascal(j)}Job`)), state: ['FAILED', 'TIMEOUT', 'STOPPED'] },
    });
    expect(rule.Targets).toEqual([expect.objectContaining({ Arn: ref('AlertsTopic') })]);
    const events = policyStatements().find(
      (s) =>
        s.owner === 'AlertsTopicPolicy' &&
        typeof s.Principal === 'object' &&
        s.Principal.Service === 'events.amazonaws.com',
    );
    expect(events).toMatchObject({ Effect: 'Allow', Action: ['sns:Publish'], Resource: [ref('AlertsTopic')] });
    expect(events?.Condition?.ArnEquals?.['aws:SourceArn']).toEqual(arnOf('GlueJobFailedRule'));
  });

  it('alarms on the landing Lambda errors and throttles and on any dead letter, all to the topic', () => {
    const alarm = (id: string) => resource<Alarm>(id).Properties;
    expect(alarm('OnLandingErrorsAlarm')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: ref('OnLandingLambdaFunction') }],
    });
    expect(alarm('OnLandingThrottlesAlarm')).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Throttles' });
    // With no reserved concurrency a normal burst is not throttled: only a sustained one alarms.
    expect(alarm('OnLandingThrottlesAlarm')).toMatchObject({ EvaluationPeriods: 3, DatapointsToAlarm: 3 });
    expect(alarm('OnLandingThrottlesAlarm').AlarmDescription).not.toMatch(/reserved/i);
    expect(alarm('LandingDeadLetterAlarm')).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['LandingDeadLetterQueue', 'QueueName'] } }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    const alarms = ofType<Alarm>('AWS::CloudWatch::Alarm');
    expect(alarms.length).toBe(12); // 9 on failures, 3 on the data (below)
    for (const [, a] of alarms) expect(a.Properties.AlarmActions).toEqual([ref('AlertsTopic')]);
  });

  it('has a dashboard of executions, files received and removed, batches deferred and the Glue jobs', () => {
    const body = dashboardBody();
    const metrics = body.widgets.flatMap((w) => w.properties.metrics ?? []);
    const names = metrics.map((m) => m.filter((x) => typeof x === 'string')[1]);
    expect(names).toEqual(
      expect.arrayContaining([
        'ExecutionsStarted',
        'ExecutionsFailed',
        'ExecutionTime',
        'glue.driver.workerUtilization',
        'FilesReceived',
        'FilesRemoved',
        'BatchesDeferred',
      ]),
    );
    expect(metrics).toContainEqual(['StediLakehouse', 'FilesReceived', 'service', 'on-landing']);
  });

  it('shows only Glue metrics that Glue 5 publishes, under the dimensions it publishes them with (AWS Glue guide, "Monitoring with AWS Glue Observability metrics", Glue 4.0 and later)', () => {
    // From that page: each metric's Type and ObservabilityGroup; JobName and JobRunId (ALL: every run) besides.
    const documented: Record<string, { Type: string; ObservabilityGroup: string }> = {
      'glue.driver.workerUtilization': { Type: 'gauge', ObservabilityGroup: 'resource_utilization' },
      'glue.ALL.memory.total.used.percentage': { Type: 'gauge', ObservabilityGroup: 'resource_utilization' },
      'glue.succeed.ALL': { Type: 'count', ObservabilityGroup: 'error' },
      'glue.error.ALL': { Type: 'count', ObservabilityGroup: 'error' },
    };
    const glue = dashboardBody()
      .widgets.flatMap((w) => w.properties.metrics ?? [])
      .filter((m) => m[0] === 'Glue');
    expect(glue.length).toBeGreaterThanOrEqual(2 * JOB_NAMES.length);
    for (const m of glue) {
      const name = String(m[1]);
      // The legacy job-profiling names (--enable-metrics), such as glue.driver.aggregate.elapsedTime: not Glue 5's.
      expect(name).not.toMatch(
        /^glue\.(driver|ALL|\d+)\.(aggregate|jvm|s3|system|BlockManager|ExecutorAllocationManager)\./,
      );
      const words = m.slice(2).filter((x): x is string => typeof x === 'string');
      const dims: Record<string, string | undefined> = {};
      for (let i = 0; i < words.length; i += 2) dims[words[i]!] = words[i + 1];
      expect({ name, ...dims }).toEqual({
        name,
        ...required(documented[name], `${name} in the observability metrics`),
        JobName: expect.stringMatching(/^\$\{\w+Job\}$/),
        JobRunId: 'ALL',
      });
    }
    expect(new Set(glue.map((m) => m[3]))).toEqual(new Set(JOB_NAMES.map((j) => `\${${pascal(j)}Job}`)));
    // Glue publishes them only for a job run with the flag (same page, "Getting started").
    for (const job of JOB_NAMES)
      expect(resource<GlueJob>(`${pascal(job)}Job`).Properties.DefaultArguments['--enable-observability-metrics']).toBe(
        'true',
      );
  });
});

describe('serverless package: the landing Lambda', () => {
  it('runs on nodejs22.x, fed by the landing queue with partial batch failures, capped by the queue, not by reserved concurrency', () => {
    const fn = resource<LambdaFunction>('OnLandingLambdaFunction').Properties;
    expect(fn).toMatchObject({
      Runtime: 'nodejs22.x',
      Handler: 'functions/on-landing.handler',
    });
    // Reserved concurrency cannot be deployed on accounts whose concurrency quota is 10; the event
    // source's maximum concurrency (2 at least) caps the invocations instead, without throttling.
    expect(fn.ReservedConcurrentExecutions).toBeUndefined();
    expect(fn.Environment.Variables).toMatchObject({
      STATE_MACHINE_ARN: ref('PipelineStateMachine'),
      POWERTOOLS_SERVICE_NAME: 'on-landing',
      POWERTOOLS_METRICS_NAMESPACE: 'StediLakehouse',
    });
    const mappings = ofType<EventSourceMapping>('AWS::Lambda::EventSourceMapping');
    expect(mappings).toHaveLength(1);
    const [, mapping] = required(mappings[0], 'the event source mapping');
    expect(mapping.Properties).toMatchObject({
      EventSourceArn: arnOf('LandingQueue'),
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      MaximumBatchingWindowInSeconds: expect.any(Number),
      BatchSize: expect.any(Number),
    });
    expect(mapping.Properties.MaximumBatchingWindowInSeconds).toBeGreaterThan(0);
    expect(mapping.Properties.ScalingConfig).toEqual({ MaximumConcurrency: 2 });
  });
});

describe('serverless package: least privilege', () => {
  it('allows no wildcard action anywhere; "*" actions appear only in Deny statements (TLS only)', () => {
    for (const s of policyStatements()) {
      const wildcards = s.Action.filter((a) => typeof a !== 'string' || a.includes('*'));
      if (s.Effect === 'Allow') {
        expect({ owner: s.owner, wildcards }).toEqual({ owner: s.owner, wildcards: [] });
      } else {
        // A Deny takes access away: the bucket policies' TLS-only statements deny every action.
        expect(JSON.stringify(s.Condition)).toMatch(/aws:SecureTransport|s3:TlsVersion/);
      }
    }
  });

  it('uses Resource "*" only for actions that have no resource-level permissions', () => {
    const offenders = policyStatements()
      .filter((s) => s.Effect === 'Allow' && s.Resource.includes('*'))
      .flatMap((s) => s.Action.filter((a) => !STAR_RESOURCE_ACTIONS.has(a)).map((a) => `${s.owner}: ${a}`));
    expect(offenders).toEqual([]);
  });

  it('lets the Lambda only start and list executions of this state machine (plus its logs and queue)', () => {
    const statements = statementsOf('IamRoleLambdaExecution');
    const states = statements.filter((s) => s.Action.some((a) => a.startsWith('states:')));
    expect(states).toHaveLength(1);
    expect(states[0]?.Action.sort()).toEqual(['states:ListExecutions', 'states:StartExecution']);
    expect(states[0]?.Resource).toEqual([ref('PipelineStateMachine')]);
    const services = new Set(statements.flatMap((s) => s.Action.map((a) => a.split(':')[0])));
    expect([...services].sort()).toEqual(['logs', 'sqs', 'states']);
    const sqs = statements.find((s) => s.Action.includes('sqs:ReceiveMessage'))!;
    expect(sqs.Resource).toEqual([arnOf('LandingQueue')]);
  });

  it('lets the state machine run only the five jobs, publish only to the alerts topic and only read and update the lock table', () => {
    const statements = statementsOf('PipelineStateMachineRole');
    const dynamodb = statements.filter((s) => s.Action.some((a) => a.startsWith('dynamodb:')));
    expect(dynamodb).toHaveLength(1);
    expect(dynamodb[0]?.Action.sort()).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(dynamodb[0]?.Resource).toEqual([arnOf('PipelineLockTable')]);
    const glue = statements.filter((s) => s.Action.some((a) => a.startsWith('glue:')));
    expect(glue).toHaveLength(1);
    expect(glue[0]?.Resource).toEqual(
      JOB_NAMES.map((j) => ({
        'Fn::Sub': `arn:\${AWS::Partition}:glue:\${AWS::Region}:\${AWS::AccountId}:job/\${${pascal(j)}Job}`,
      })),
    );
    const sns = statements.find((s) => s.Action.includes('sns:Publish'))!;
    expect(sns.Resource).toEqual([ref('AlertsTopic')]);
  });

  it('lets the lock cleanup only update the lock table, and its rule only start the lock cleanup', () => {
    const cleanup = statementsOf('LockCleanupStateMachineRole');
    expect(cleanup.map((s) => [s.Action, s.Resource])).toEqual([
      [['dynamodb:UpdateItem'], [arnOf('PipelineLockTable')]],
    ]);
    const rule = statementsOf('LockCleanupRuleRole');
    expect(rule.map((s) => [s.Action, s.Resource])).toEqual([
      [['states:StartExecution'], [ref('LockCleanupStateMachine')]],
    ]);
    for (const [role, service] of [
      ['LockCleanupStateMachineRole', 'states.amazonaws.com'],
      ['LockCleanupRuleRole', 'events.amazonaws.com'],
    ] as const)
      expect(
        resource<{ AssumeRolePolicyDocument: PolicyDocument }>(role).Properties.AssumeRolePolicyDocument.Statement,
      ).toEqual([
        {
          Effect: 'Allow',
          Principal: { Service: service },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'aws:SourceAccount': ref('AWS::AccountId') } },
        },
      ]);
  });

  it('lets Glue read landing, trusted and curated, write only trusted, curated, validated and quarantine, and change only this database', () => {
    const statements = statementsOf('GlueJobRole');
    const keysFor = (action: string) =>
      statements
        .filter((s) => s.Action.includes(action))
        .flatMap((s) => s.Resource)
        .map((r) => {
          const sub = subOf(r);
          return sub ? sub.replace('${DataBucket.Arn}/', '') : JSON.stringify(r);
        });
    // Each grant is checked against the jobs' real S3A requests by tests/python/test_glue_jobs_on_spark.py; here:
    // writes are never in landing or the runner's code, and are whole prefixes (<prefix>/*) or S3A's directory
    // markers (<dir>/).
    const writes = [...keysFor('s3:PutObject'), ...keysFor('s3:DeleteObject')];
    expect(writes.length).toBeGreaterThan(0);
    for (const key of writes) expect(key).toMatch(/^[a-z_]+(\/[a-z_]+)*\/\*?$/);
    expect(writes.join(' ')).not.toMatch(/landing|glue\//);

    const glueResources = statements
      .filter((s) => s.Action.some((a) => a.startsWith('glue:')))
      .flatMap((s) => s.Resource);
    for (const r of glueResources)
      expect(subOf(r)).toMatch(
        /:(catalog|database\/default|database\/\$\{GlueDatabase\}|table\/\$\{GlueDatabase\}\/\*)$/,
      );
    // Spark's Data Catalog metastore looks up "default" and creates it in an account without one: only that.
    const creates = statements.filter((s) => s.Action.includes('glue:CreateDatabase'));
    expect(creates.flatMap((s) => s.Resource)).toEqual([
      { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog' },
      { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/default' },
    ]);
    const lookups = statements.filter((s) => s.Action.includes('glue:GetDatabase')).flatMap((s) => s.Resource);
    expect(lookups).toContainEqual({
      'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/default',
    });
    const ssm = statements.find((s) => s.Action.includes('ssm:GetParameter'))!;
    expect(ssm.Resource).toEqual([
      { 'Fn::Sub': 'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PiiSaltParameterName}' },
    ]);
    // Glue 5's two log groups, and no other.
    const logs = statements.filter((s) => s.Action.some((a) => a.startsWith('logs:'))).flatMap((s) => s.Resource);
    expect(logs.map((r) => String(subOf(r)).replace(/^.*:log-group:/, '')).sort()).toEqual([
      '/aws-glue/jobs/error',
      '/aws-glue/jobs/error:*',
      '/aws-glue/jobs/output',
      '/aws-glue/jobs/output:*',
    ]);
    const kms = statements.find((s) => s.Action.includes('kms:Decrypt'))!;
    expect(kms.Condition?.StringEquals?.['kms:ViaService']).toEqual({ 'Fn::Sub': 'ssm.${AWS::Region}.amazonaws.com' });
  });
});

describe('serverless package: Athena, the data checks and the CLI user', () => {
  const workgroupArn = {
    'Fn::Sub': 'arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}:workgroup/${AthenaWorkGroup}',
  };
  const databaseResources = [
    { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog' },
    { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/${GlueDatabase}' },
    { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:table/${GlueDatabase}/*' },
  ];
  // Athena's guide: GetDatabase, GetDatabases and CreateDatabase on the catalog and the default database.
  const athenaDefaults = [
    { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog' },
    { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/default' },
  ];
  const glueResourcesOf = (statements: PolicyStatement[], action: string) =>
    statements.filter((s) => s.Action.includes(action)).flatMap((s) => s.Resource);
  const keysOf = (statements: PolicyStatement[], action: string) =>
    statements
      .filter((s) => s.Action.includes(action))
      .flatMap((s) => s.Resource)
      .map((r) => {
        const sub = subOf(r);
        return sub ? sub.replace('${DataBucket.Arn}/', '') : JSON.stringify(r);
      })
      .sort();

  it("gives the state machine each check's SQL and the workgroup and database as definition substitutions", () => {
    const machine = resource<StateMachine>('PipelineStateMachine').Properties;
    const subs = machine.DefinitionSubstitutions;
    expect(subs.AthenaWorkGroupName).toEqual(ref('AthenaWorkGroup'));
    expect(subs.GlueDatabaseName).toEqual(ref('GlueDatabase'));
    // CloudFormation writes each value into the definition's text as it is: the SQL must arrive JSON-escaped.
    // A check that names the database gets its name through Fn::Sub, ${GlueDatabaseName} bound to the database.
    const database = resource<{ DatabaseInput: { Name: string } }>('GlueDatabase').Properties.DatabaseInput.Name;
    const valueOf = (name: string, value: unknown): string => {
      if (typeof value === 'string') return value;
      const sub = (value as { 'Fn::Sub'?: [string, Record<string, unknown>] })['Fn::Sub'];
      if (!sub) return `resolved-${name}`;
      expect(sub[1]).toEqual({ GlueDatabaseName: ref('GlueDatabase') });
      return sub[0].replace(/\$\{GlueDatabaseName\}/g, database);
    };
    const filled = machine.DefinitionString.replace(/\$\{(\w+)\}/g, (_: string, name: string) =>
      valueOf(name, subs[name]),
    );
    const definition = JSON.parse(filled) as { States: Record<string, { Result?: unknown }> };
    expect(definition.States.ListChecks?.Result).toEqual(
      checksFor(database).map((c) => ({ check: c.name, sql: c.sql })),
    );
    const piiColumns = checksFor(database).find((c) => c.name === 'curated_no_pii_columns')!;
    expect(piiColumns.sql).toContain(`table_schema = '${database}'`);
  });

  it('has a workgroup whose results go encrypted under athena-results/ of the data bucket, the pipeline\'s by default and each user\'s where the client puts them (Athena guide, "Override client-side settings"), with a scan limit per query', () => {
    const workgroup = resource<{ Name: unknown; WorkGroupConfiguration: unknown }>('AthenaWorkGroup').Properties;
    expect(workgroup.Name).toEqual(ref('AWS::StackName'));
    expect(workgroup.WorkGroupConfiguration).toMatchObject({
      // Not enforced: the client's results location is used, the workgroup's where it gives none.
      EnforceWorkGroupConfiguration: false,
      BytesScannedCutoffPerQuery: ref('AthenaScanLimitBytes'),
      EngineVersion: { SelectedEngineVersion: 'Athena engine version 3' },
      ResultConfiguration: {
        OutputLocation: { 'Fn::Sub': `s3://\${DataBucket}/${PIPELINE_RESULTS_PREFIX}` },
        EncryptionConfiguration: { EncryptionOption: 'SSE_S3' },
      },
    });
    // The checks give no ResultConfiguration: theirs is the workgroup's.
    const definition = JSON.parse(resource<StateMachine>('PipelineStateMachine').Properties.DefinitionString) as {
      States: { RunChecks: { ItemProcessor: { States: { StartCheckQuery: { Parameters: object } } } } };
    };
    expect(definition.States.RunChecks.ItemProcessor.States.StartCheckQuery.Parameters).not.toHaveProperty(
      'ResultConfiguration',
    );
    expect(Number(template.Parameters.AthenaScanLimitBytes?.Default)).toBeGreaterThanOrEqual(10_000_000);
    const rules = resource<Bucket>('DataBucket').Properties.LifecycleConfiguration.Rules;
    expect(rules).toContainEqual(
      expect.objectContaining({ Status: 'Enabled', Prefix: 'athena-results/', ExpirationInDays: expect.any(Number) }),
    );
    expect(template.Outputs.AthenaWorkGroupName?.Value).toEqual(ref('AthenaWorkGroup'));
  });

  it('saves every data check and the per-zone counts as a named query of the workgroup, with the text of its SQL file', () => {
    const queries = ofType<{ Name: string; QueryString: unknown; Database: unknown; WorkGroup: unknown }>(
      'AWS::Athena::NamedQuery',
    ).map(([, q]) => q.Properties);
    const expected = [...loadChecks(), ...loadSavedQueries()];
    expect(queries.map((q) => q.Name).sort()).toEqual(expected.map((c) => c.name).sort());
    expect(queries.map((q) => q.Name)).toContain('row_counts_by_zone');
    for (const q of queries) {
      const sql = expected.find((c) => c.name === q.Name)!.sql;
      // The database a check names, filled in by CloudFormation (Fn::Sub) as in the state machine.
      if (sql.includes('${GlueDatabaseName}'))
        expect(q.QueryString).toEqual({ 'Fn::Sub': [sql, { GlueDatabaseName: ref('GlueDatabase') }] });
      else expect(q.QueryString).toBe(sql);
      expect(q.Database).toEqual(ref('GlueDatabase'));
      expect(q.WorkGroup).toEqual(ref('AthenaWorkGroup'));
    }
  });

  it('puts the quarantine of each dataset and the build log in the Catalog, so Athena reads them', () => {
    const tables = Object.fromEntries(
      ofType<GlueTable>('AWS::Glue::Table').map(([, t]) => [t.Properties.TableInput.Name, t.Properties.TableInput]),
    );
    for (const table of supportTables()) {
      expect(tables[table.name]?.StorageDescriptor.Location).toEqual({
        'Fn::Sub': `s3://\${DataBucket}/${table.location}`,
      });
      expect(tables[table.name]?.StorageDescriptor.Columns.map((c) => c.Name)).toEqual(
        table.columns.map((c) => c.name),
      );
      expect(tables[table.name]?.StorageDescriptor.SerdeInfo.SerializationLibrary).toBe(
        'org.openx.data.jsonserde.JsonSerDe',
      );
    }
    expect(Object.keys(tables)).toEqual(
      expect.arrayContaining([
        'customer_quarantine',
        'accelerometer_quarantine',
        'step_trainer_quarantine',
        'table_builds',
      ]),
    );
  });

  it('lets the state machine run queries only in the workgroup, on this database, reading only what the checks read', () => {
    const policy = resource<{ Roles: unknown }>('PipelineChecksPolicy');
    expect(policy.Properties.Roles).toEqual([ref('PipelineStateMachineRole')]);
    const statements = statementsOf('PipelineChecksPolicy');
    const athena = statements.filter((s) => s.Action.some((a) => a.startsWith('athena:')));
    expect(athena.flatMap((s) => s.Action).sort()).toEqual([
      'athena:GetDataCatalog',
      'athena:GetQueryExecution',
      'athena:GetQueryResults',
      'athena:StartQueryExecution',
      'athena:StopQueryExecution',
    ]);
    expect(athena.find((s) => s.Action.includes('athena:StartQueryExecution'))!.Resource).toEqual([workgroupArn]);
    const glue = statements.filter((s) => s.Action.some((a) => a.startsWith('glue:')));
    expect(
      glue.flatMap((s) => s.Action).every((a) => /^glue:(Get|BatchGet)/.test(a) || a === 'glue:CreateDatabase'),
    ).toBe(true);
    expect(glueResourcesOf(statements, 'glue:GetTables')).toEqual(databaseResources);
    expect(glueResourcesOf(statements, 'glue:CreateDatabase')).toEqual(athenaDefaults);
    expect(keysOf(statements, 's3:GetObject')).toEqual(
      [
        `${PIPELINE_RESULTS_PREFIX}*`,
        'checks/table_builds/*',
        'customer/trusted/*',
        'accelerometer/trusted/*',
        'step_trainer/trusted/*',
        'customer/curated/*',
        'machine_learning/curated/*',
      ].sort(),
    );
    expect(keysOf(statements, 's3:PutObject')).toEqual([`${PIPELINE_RESULTS_PREFIX}*`]);
  });

  it('has a CLI user policy: this stack, this state machine, the landing prefixes, this workgroup and database', () => {
    expect(resource('CliUserPolicy').Type).toBe('AWS::IAM::ManagedPolicy');
    expect(template.Outputs.CliPolicyArn?.Value).toEqual(ref('CliUserPolicy'));
    const statements = statementsOf('CliUserPolicy');
    const services = new Set(statements.flatMap((s) => s.Action.map((a) => a.split(':')[0])));
    expect([...services].sort()).toEqual(['athena', 'cloudformation', 'glue', 'lakeformation', 's3', 'states']);
    const of = (action: string) => statements.filter((s) => s.Action.includes(action)).flatMap((s) => s.Resource);
    expect(of('cloudformation:DescribeStacks')).toEqual([
      { 'Fn::Sub': 'arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${AWS::StackName}/*' },
    ]);
    expect(of('states:StartExecution')).toEqual([ref('PipelineStateMachine')]);
    expect(of('states:DescribeExecution')).toEqual([
      {
        'Fn::Sub':
          'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${PipelineStateMachine.Name}:*',
      },
    ]);
    expect(statements.flatMap((s) => s.Action)).not.toContain('states:StopExecution');
    expect(keysOf(statements, 's3:PutObject')).toEqual(
      // ${!aws:userid}: Fn::Sub's escape for IAM's own ${aws:userid}.
      [`${USER_RESULTS_PREFIX}\${!aws:userid}/*`, ...LANDING_PREFIXES.map((p) => `${p}*`)].sort(),
    );
    expect(keysOf(statements, 's3:GetObject').join(' ')).not.toMatch(/glue\//);
    // Athena reads a table's data as the caller: the CLI user may read every table the stack defines.
    const readable = keysOf(statements, 's3:GetObject');
    for (const [, table] of ofType<GlueTable>('AWS::Glue::Table')) {
      const location = JSON.stringify(table.Properties.TableInput.StorageDescriptor.Location);
      const prefix = /\$\{DataBucket\}\/([^"]*)/.exec(location)?.[1];
      expect({ table: table.Properties.TableInput.Name, readable: readable.includes(`${prefix}*`) }).toEqual({
        table: table.Properties.TableInput.Name,
        readable: true,
      });
    }
    expect(statements.flatMap((s) => s.Action)).not.toContain('s3:DeleteObject');
    expect(of('athena:StartQueryExecution')).toEqual([workgroupArn]);
    expect(of('glue:GetTables')).toEqual(databaseResources);
    expect(glueResourcesOf(statements, 'glue:CreateDatabase')).toEqual(athenaDefaults);
  });

  it('lets every principal that reads the lake through Glue or Athena call lakeformation:GetDataAccess, on "*" (Athena guide, "Manage Lake Formation and Athena user permissions"; Glue guide, "Working with AWS Lake Formation-protected data")', () => {
    // Without it, a Lake Formation-registered location is unreadable whatever Lake Formation grants.
    for (const owner of ['GlueJobRole', 'PipelineChecksPolicy', 'CliUserPolicy'])
      expect({ owner, resources: glueResourcesOf(statementsOf(owner), 'lakeformation:GetDataAccess') }).toEqual({
        owner,
        resources: ['*'],
      });
    const elsewhere = policyStatements().filter(
      (st) =>
        st.Action.some((a) => a.startsWith('lakeformation:')) &&
        !['GlueJobRole', 'PipelineChecksPolicy', 'CliUserPolicy'].includes(st.owner),
    );
    expect(elsewhere).toEqual([]);
    for (const st of policyStatements().filter((x) => x.Action.some((a) => a.startsWith('lakeformation:'))))
      expect(st.Action).toEqual(['lakeformation:GetDataAccess']);
  });

  it("lets the Glue jobs publish metrics only in Glue's namespace and the runner's, the one the alarms watch", () => {
    const runnerNamespace = required(
      /^METRICS_NAMESPACE = "(\w+)"$/m.exec(readFileSync(path.join(ROOT, 'glue', 'run_sql_job.py'), 'utf8'))?.[1],
      'METRICS_NAMESPACE of glue/run_sql_job.py',
    );
    const metrics = statementsOf('GlueJobRole').filter((s) => s.Action.includes('cloudwatch:PutMetricData'));
    expect(metrics).toHaveLength(1);
    expect(metrics[0]?.Condition).toEqual({ StringEquals: { 'cloudwatch:namespace': ['Glue', runnerNamespace] } });
    for (const [, alarm] of ofType<Alarm>('AWS::CloudWatch::Alarm')) {
      const namespaces = [
        alarm.Properties.Namespace,
        ...(alarm.Properties.Metrics ?? []).map((m) => m.MetricStat?.Metric.Namespace),
      ].filter((n) => n && !String(n).startsWith('AWS/'));
      for (const n of namespaces) expect(n).toBe(runnerNamespace);
    }
  });

  it('shows rows in, rows out, quarantined lines and the data alarms on the dashboard', () => {
    const body = dashboardBody();
    const metrics = body.widgets.flatMap((w) => w.properties.metrics ?? []);
    const of = (name: string) => metrics.filter((m) => m[0] === 'StediLakehouse' && m[1] === name);
    expect(of('RowsOut').map((m) => [m[3], m[5]])).toEqual(
      loadJobs().map((j) => [`\${${pascal(j.name)}Job}`, j.target]),
    );
    expect(of('RowsIn').map((m) => m[5])).toEqual(loadJobs().flatMap((j) => j.reads));
    expect(of('QuarantinedLines').map((m) => m[5])).toEqual(['customer', 'accelerometer', 'step_trainer']);
    expect(of('NewQuarantinedLines').map((m) => m[5])).toEqual(['customer', 'accelerometer', 'step_trainer']);
    const alarms = body.widgets.find((w) => w.type === 'alarm');
    const arnOfAlarm = (id: string) =>
      `arn:\${AWS::Partition}:cloudwatch:\${AWS::Region}:\${AWS::AccountId}:alarm:${String(subOf(resource<Alarm>(id).Properties.AlarmName))}`;
    expect(alarms?.properties.alarms).toEqual(
      ['QuarantinedLinesAlarm', 'CustomerCuratedEmptyAlarm', 'MachineLearningCuratedEmptyAlarm'].map(arnOfAlarm),
    );
  });

  it('alarms when a run quarantines lines of the files it checked (NewQuarantinedLines: not the total, which one old bad line keeps above zero) and when a curated table is written empty', () => {
    const quarantine = resource<Alarm>('QuarantinedLinesAlarm').Properties;
    const series = (quarantine.Metrics ?? []).filter((m) => m.MetricStat);
    expect(series.map((m) => m.MetricStat?.Metric.Dimensions)).toEqual([
      [
        { Name: 'Job', Value: ref('CustomerLandingToTrustedJob') },
        { Name: 'Dataset', Value: 'customer' },
      ],
      [
        { Name: 'Job', Value: ref('AccelerometerLandingToTrustedJob') },
        { Name: 'Dataset', Value: 'accelerometer' },
      ],
      [
        { Name: 'Job', Value: ref('StepTrainerLandingToTrustedJob') },
        { Name: 'Dataset', Value: 'step_trainer' },
      ],
    ]);
    for (const m of series)
      expect(m.MetricStat).toMatchObject({
        Metric: { Namespace: 'StediLakehouse', MetricName: 'NewQuarantinedLines' },
        Stat: 'Sum',
      });
    // The runner publishes it under that name (tests/python/test_job_data.py checks what it counts).
    expect(readFileSync(path.join(ROOT, 'glue', 'run_sql_job.py'), 'utf8')).toContain('datum("NewQuarantinedLines"');
    expect(quarantine).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    for (const [id, job, table] of [
      ['CustomerCuratedEmptyAlarm', 'CustomerTrustedToCuratedJob', 'customer_curated'],
      ['MachineLearningCuratedEmptyAlarm', 'MachineLearningCuratedJob', 'machine_learning_curated'],
    ] as const) {
      expect(resource(id).Properties).toMatchObject({
        Namespace: 'StediLakehouse',
        MetricName: 'RowsOut',
        Dimensions: [
          { Name: 'Job', Value: ref(job) },
          { Name: 'Table', Value: table },
        ],
        Statistic: 'Minimum',
        Threshold: 0,
        ComparisonOperator: 'LessThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
    }
  });
});

describe('serverless package: outputs and lint', () => {
  it('outputs what `stedi start` and `stedi status` read', () => {
    expect(template.Outputs.DataBucketName?.Value).toEqual(ref('DataBucket'));
    expect(template.Outputs.StateMachineArn?.Value).toEqual(ref('PipelineStateMachine'));
    expect(template.Outputs.AlertsTopicArn?.Value).toEqual(ref('AlertsTopic'));
    expect(subOf(template.Outputs.DashboardUrl?.Value)).toMatch(
      /^https:\/\/\$\{AWS::Region\}\.console\.aws\.amazon\.com\/cloudwatch\/.*\$\{PipelineDashboard\}$/,
    );
  });

  it('passes cfn-lint without errors', () => {
    const lint = spawnSync('cfn-lint', ['--format', 'json', templateFile], { encoding: 'utf8', timeout: 120_000 });
    if (lint.error && (lint.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('cfn-lint is not on PATH: install it (pip install cfn-lint) to lint the deploy template');
    }
    const findings = JSON.parse(lint.stdout || '[]') as {
      Level: string;
      Rule: { Id: string };
      Location: { Path: (string | number)[] };
      Message: string;
    }[];
    const errors = findings
      .filter((f) => f.Level === 'Error')
      .map((f) => `${f.Rule.Id} ${f.Location.Path.join('/')}: ${f.Message}`);
    expect(errors).toEqual([]);
  }, 130_000);
});

describe('serverless package: the template in the moto server', () => {
  // moto's CloudFormation checks the template (with cfn-lint) and references, and creates what it
  // knows (buckets, queues, roles, the Lambda, the state machine, the topic); Glue and alarm
  // resources it accepts without creating them. Skipped, with a warning, when moto cannot start.
  // A moto server that cannot start fails the test, as in the other moto suites: never a pass that checked nothing.
  const withMoto = async (check: (moto: MotoServer) => Promise<void>) => {
    const moto = await startMoto();
    try {
      await check(moto);
    } finally {
      await moto.stop();
    }
  };
  const clientConfig = (moto: MotoServer) => ({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    forcePathStyle: true,
  });
  const StackName = `stedi-lakehouse-${STAGE}`;

  /** As `serverless deploy` does: the create template (the deployment bucket), the code, the stack. */
  async function createStack(cfn: CloudFormationClient, s3: S3Client) {
    await cfn.send(
      new CreateStackCommand({
        StackName,
        TemplateBody: readFileSync(path.join(outDir, 'cloudformation-template-create-stack.json'), 'utf8'),
      }),
    );
    const created = required((await cfn.send(new DescribeStacksCommand({ StackName }))).Stacks?.[0], 'the stack');
    const deploymentBucket = created.Outputs!.find(
      (o) => o.OutputKey === 'ServerlessDeploymentBucketName',
    )!.OutputValue;
    const code = resource<LambdaFunction>('OnLandingLambdaFunction').Properties.Code;
    await s3.send(
      new PutObjectCommand({
        Bucket: deploymentBucket,
        Key: code.S3Key,
        Body: readFileSync(path.join(outDir, 'stedi-lakehouse.zip')),
      }),
    );
    await cfn.send(
      new UpdateStackCommand({
        StackName,
        TemplateBody: JSON.stringify(template),
        Capabilities: ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM'],
      }),
    );
  }

  it('creates the stack and gives the outputs `stedi start` and `stedi status` read', async () => {
    await withMoto(async (moto) => {
      const cfn = new CloudFormationClient(clientConfig(moto));
      await createStack(cfn, new S3Client(clientConfig(moto)));

      const stack = required((await cfn.send(new DescribeStacksCommand({ StackName }))).Stacks?.[0], 'the stack');
      expect(stack.StackStatus).toBe('UPDATE_COMPLETE');
      expect(Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]))).toMatchObject({
        DataBucketName: `stedi-lakehouse-${STAGE}-data-123456789012-us-east-1`,
        StateMachineArn: `arn:aws:states:us-east-1:123456789012:stateMachine:stedi-lakehouse-${STAGE}-pipeline`,
        AlertsTopicArn: `arn:aws:sns:us-east-1:123456789012:stedi-lakehouse-${STAGE}-alerts`,
        DashboardUrl: `https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards/dashboard/stedi-lakehouse-${STAGE}`,
      });
    });
  }, 90_000);

  it('`serverless remove` (DeleteStack) leaves the data bucket and every object in it (DeletionPolicy Retain; moto deletes only resources without it, as CloudFormation does)', async () => {
    await withMoto(async (moto) => {
      const cfn = new CloudFormationClient(clientConfig(moto));
      const s3 = new S3Client(clientConfig(moto));
      await createStack(cfn, s3);
      const bucket = `stedi-lakehouse-${STAGE}-data-123456789012-us-east-1`;
      const key = 'customer/landing/customers-1.json';
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{"email":"a@example.com"}\n' }));
      await cfn.send(new DeleteStackCommand({ StackName }));

      const stacks = (await cfn.send(new DescribeStacksCommand({}))).Stacks ?? [];
      expect(stacks.filter((st) => st.StackName === StackName && st.StackStatus !== 'DELETE_COMPLETE')).toEqual([]);
      const kept = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(kept.ContentLength).toBe(26);
      // The queue the bucket notified went with the stack: the retained bucket is data only.
      const queues = (await new SQSClient(clientConfig(moto)).send(new ListQueuesCommand({}))).QueueUrls ?? [];
      expect(queues.filter((q) => q.includes(`stedi-lakehouse-${STAGE}-landing`))).toEqual([]);
    });
  }, 90_000);

  /** The deployment bucket, looked up as osls does (its logical id in the stack). */
  const deployBucketOf = async (cfn: CloudFormationClient) =>
    (await cfn.send(new DescribeStackResourceCommand({ StackName, LogicalResourceId: 'ServerlessDeploymentBucket' })))
      .StackResourceDetail!.PhysicalResourceId!;

  it('`serverless deploy` of the package uploads the runner and the SQL to the deployment bucket at the keys the jobs name', async () => {
    await withMoto(async (moto) => {
      const deploy = spawnSync(SERVERLESS, ['deploy', '--stage', STAGE, '--package', outDir], {
        cwd: ROOT,
        env: { ...OFFLINE_ENV, ...moto.env },
        encoding: 'utf8',
        timeout: 170_000,
      });
      expect({
        status: deploy.status,
        output: deploy.status === 0 ? '' : `${deploy.stdout}\n${deploy.stderr}`,
      }).toEqual({ status: 0, output: '' });
      const s3 = new S3Client(clientConfig(moto));
      const bucket = await deployBucketOf(new CloudFormationClient(clientConfig(moto)));
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'glue-assets/' }));
      const script = String(subOf(resource<GlueJob>('CustomerLandingToTrustedJob').Properties.Command.ScriptLocation));
      const keys = [
        script.replace('s3://${ServerlessDeploymentBucket}/', ''),
        ...JOB_NAMES.flatMap((j) => {
          const args = resource<GlueJob>(`${pascal(j)}Job`).Properties.DefaultArguments;
          return [
            args['--sql_key'] as string,
            ...((args['--diagnostic_keys'] as string | undefined) ?? '').split(',').filter(Boolean),
          ];
        }),
      ];
      expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(keys.sort());
      const uploaded = await s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: keys.find((k) => k.endsWith('.py')) }),
      );
      expect(await uploaded.Body!.transformToString()).toBe(
        readFileSync(path.join(ROOT, 'glue', 'run_sql_job.py'), 'utf8'),
      );
      // No longer anything of the runner's in the data bucket.
      const data = await s3.send(
        new ListObjectsV2Command({ Bucket: `stedi-lakehouse-${STAGE}-data-123456789012-us-east-1`, Prefix: 'glue' }),
      );
      expect(data.Contents ?? []).toEqual([]);
    });
  }, 180_000);

  it('a package whose SQL does not match its key fails the deploy before the stack update: nothing changes', async () => {
    await withMoto(async (moto) => {
      const bad = mkdtempSync(path.join(tmpdir(), 'stedi-sls-bad-package-'));
      try {
        cpSync(outDir, bad, { recursive: true });
        const manifest = JSON.parse(readFileSync(path.join(bad, 'glue-assets', 'manifest.json'), 'utf8')) as {
          file: string;
        }[];
        const sql = manifest.find((a) => a.file.endsWith('.sql'))!.file;
        appendFileSync(path.join(bad, 'glue-assets', sql), '\n-- changed after packaging\n');
        const deploy = spawnSync(SERVERLESS, ['deploy', '--stage', STAGE, '--package', bad], {
          cwd: ROOT,
          env: { ...OFFLINE_ENV, ...moto.env },
          encoding: 'utf8',
          timeout: 170_000,
        });
        expect(deploy.status).not.toBe(0);
        expect(`${deploy.stdout}${deploy.stderr}`).toContain(`glue-assets/${sql} does not match its key`);
        // The stack is as the create step left it (the deployment bucket only), and no asset was uploaded.
        const cfn = new CloudFormationClient(clientConfig(moto));
        const resources = await cfn.send(new ListStackResourcesCommand({ StackName }));
        const ids = (resources.StackResourceSummaries ?? []).map((r) => r.LogicalResourceId);
        expect(ids).toContain('ServerlessDeploymentBucket');
        const added = Object.keys(template.Resources).filter((id) => !id.startsWith('ServerlessDeploymentBucket'));
        expect(added.filter((id) => ids.includes(id))).toEqual([]); // DataBucket, the jobs...: not created
        const listed = await new S3Client(clientConfig(moto)).send(
          new ListObjectsV2Command({ Bucket: await deployBucketOf(cfn), Prefix: 'glue-assets/' }),
        );
        expect(listed.Contents ?? []).toEqual([]);
      } finally {
        rmSync(bad, { recursive: true, force: true });
      }
    });
  }, 180_000);
});

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
    // The CLI's AWS code: src/cli/ and the src/aws/ modules it uses. step-functions-port.ts is the landing
    // Lambda's, whose role is checked above.
    const files = [
      ...readdirSync(path.join(ROOT, 'src', 'cli')).map((f) => path.join(ROOT, 'src', 'cli', f)),
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
