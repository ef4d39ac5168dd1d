import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  CreateDatabaseCommand,
  CreateJobCommand,
  CreateTableCommand,
  GlueClient,
  TableInput,
} from '@aws-sdk/client-glue';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { JOB_NAMES, JobName } from '../definition/pipeline';
import { projectRoot } from '../project';

/**
 * The names the stack would have on AWS for a stage "local" (serverless.yml, deploy/resources/): the
 * Glue engine creates these on the moto server, so the jobs run with the arguments a deployed stack gives them.
 */
export const LOCAL_STACK = {
  stage: 'local',
  stackName: 'stedi-lakehouse-local',
  accountId: '123456789012', // moto's default account
  region: 'us-east-1',
  databaseName: 'stedi_lakehouse_local',
  piiSaltParameterName: '/stedi-lakehouse/local/pii-salt',
  /** The framework's deployment bucket, where the runner and the jobs' SQL live at content-addressed keys. */
  deploymentBucket: 'stedi-lakehouse-local-serverlessdeploymentbucket',
} as const;

/** deploy/resources/data.yml: BucketName !Sub '${AWS::StackName}-data-${AWS::AccountId}-${AWS::Region}'. */
export const LOCAL_DATA_BUCKET = `${LOCAL_STACK.stackName}-data-${LOCAL_STACK.accountId}-${LOCAL_STACK.region}`;

/** What createStackOnMoto made: each job's Glue name and its DefaultArguments, resolved. */
export interface LocalStack {
  dataBucket: string;
  databaseName: string;
  jobs: Record<JobName, { glueName: string; defaultArguments: Record<string, string> }>;
  /** The catalog tables created, by name. */
  tables: string[];
  /** The TableInputs of its Iceberg tables as created (stackTableInput), to create them again on reset. */
  icebergTables: TableInput[];
}

type Resource = { Type: string; Properties: Record<string, unknown> };

/** The stack's deploy/*.js generators (CommonJS, reading the compiled project in dist/). */
function deployModule<T>(name: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(projectRoot(), 'deploy', name)) as T;
}

/**
 * Resolves the CloudFormation intrinsics the generated resources use (Ref, Fn::Sub, Fn::GetAtt) against
 * the local stack's values, as CloudFormation does at deploy time. A name it does not know is an error.
 */
export function resolveIntrinsics(value: unknown, refs: Record<string, string>): unknown {
  const lookup = (name: string) => {
    const v = refs[name];
    if (v === undefined) throw new Error(`the local stack has no value for ${name} (a Ref or Fn::Sub of deploy/*.js)`);
    return v;
  };
  if (Array.isArray(value)) return value.map((v) => resolveIntrinsics(v, refs));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 1) {
    const [[key, arg]] = entries as [[string, unknown]];
    if (key === 'Ref') return lookup(String(arg));
    if (key === 'Fn::Sub' && typeof arg === 'string')
      return arg.replace(/\$\{([A-Za-z0-9_:.]+)\}/g, (_, name: string) => lookup(name));
    if (key === 'Fn::GetAtt' && Array.isArray(arg)) return lookup(arg.join('.'));
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, resolveIntrinsics(v, refs)]));
}

/**
 * Creates on a moto server what the stack deploys for the Glue jobs, from the stack's own definitions:
 * the data bucket, the Glue database, the catalog tables and the Glue jobs of deploy/glue-resources.js
 * (the landing tables from their DDL, the validated copies' and the derived tables), the SSM
 * SecureString holding the PII salt, and the jobs' SQL at the content-addressed keys of
 * deploy/glue-assets.js in the deployment bucket. Needs the compiled project (dist/): `npm run build`.
 */
export async function createStackOnMoto(
  clients: { s3: S3Client; glue: GlueClient; ssm: SSMClient },
  options: { piiSalt: string; consentPolicy: string },
): Promise<LocalStack> {
  const { resources } = deployModule<{ resources: () => { Resources: Record<string, Resource> } }>('glue-resources.js');
  const { glueAssets } = deployModule<{ glueAssets: () => { file: string; key: string }[] }>('glue-assets.js');
  const refs: Record<string, string> = {
    'AWS::StackName': LOCAL_STACK.stackName,
    'AWS::AccountId': LOCAL_STACK.accountId,
    'AWS::Region': LOCAL_STACK.region,
    'AWS::Partition': 'aws',
    DataBucket: LOCAL_DATA_BUCKET,
    'DataBucket.Arn': `arn:aws:s3:::${LOCAL_DATA_BUCKET}`,
    GlueDatabase: LOCAL_STACK.databaseName,
    ServerlessDeploymentBucket: LOCAL_STACK.deploymentBucket,
    PiiSaltParameterName: LOCAL_STACK.piiSaltParameterName,
    ConsentPolicy: options.consentPolicy,
    'GlueJobRole.Arn': `arn:aws:iam::${LOCAL_STACK.accountId}:role/${LOCAL_STACK.stackName}-glue`,
  };
  const { s3, glue, ssm } = clients;
  await s3.send(new CreateBucketCommand({ Bucket: LOCAL_DATA_BUCKET }));
  await s3.send(new CreateBucketCommand({ Bucket: LOCAL_STACK.deploymentBucket }));
  for (const asset of glueAssets())
    await s3.send(
      new PutObjectCommand({ Bucket: LOCAL_STACK.deploymentBucket, Key: asset.key, Body: readFileSync(asset.file) }),
    );
  await glue.send(new CreateDatabaseCommand({ DatabaseInput: { Name: LOCAL_STACK.databaseName } }));
  await ssm.send(
    new PutParameterCommand({ Name: LOCAL_STACK.piiSaltParameterName, Type: 'SecureString', Value: options.piiSalt }),
  );
  const tables: string[] = [];
  const icebergTables: TableInput[] = [];
  const jobs: Partial<LocalStack['jobs']> = {};
  for (const resource of Object.values(resources().Resources)) {
    const properties = resolveIntrinsics(resource.Properties, refs) as Record<string, unknown>;
    if (resource.Type === 'AWS::Glue::Table') {
      const input = stackTableInput(properties);
      await glue.send(new CreateTableCommand({ DatabaseName: String(properties.DatabaseName), TableInput: input }));
      tables.push(String(input.Name));
      if (input.Parameters?.[STACK_ICEBERG_INPUT]) icebergTables.push(input);
    } else if (resource.Type === 'AWS::Glue::Job') {
      const job = properties as {
        Name: string;
        Role: string;
        Command: { Name: string; PythonVersion: string; ScriptLocation: string };
        DefaultArguments: Record<string, string>;
        GlueVersion: string;
        WorkerType: 'G.1X';
        NumberOfWorkers: number;
        Timeout: number;
        MaxRetries: number;
      };
      await glue.send(
        new CreateJobCommand({
          Name: job.Name,
          Role: job.Role,
          Command: job.Command,
          DefaultArguments: job.DefaultArguments,
          GlueVersion: job.GlueVersion,
          WorkerType: job.WorkerType,
          NumberOfWorkers: job.NumberOfWorkers,
          Timeout: job.Timeout,
          MaxRetries: job.MaxRetries,
        }),
      );
      const name = JOB_NAMES.find((j) => job.Name.endsWith(`-${j}`));
      if (!name) throw new Error(`deploy/glue-resources.js defines a Glue job ${job.Name} of no pipeline job`);
      jobs[name] = { glueName: job.Name, defaultArguments: job.DefaultArguments };
    } else {
      throw new Error(`deploy/glue-resources.js: no local stand-in for a ${resource.Type}`);
    }
  }
  for (const job of JOB_NAMES)
    if (!jobs[job]) throw new Error(`deploy/glue-resources.js defines no Glue job for ${job}`);
  return {
    dataBucket: LOCAL_DATA_BUCKET,
    databaseName: LOCAL_STACK.databaseName,
    jobs: jobs as LocalStack['jobs'],
    tables,
    icebergTables,
  };
}

/**
 * The arguments a Glue job run's script gets (sys.argv after the script): those Glue adds itself
 * (--JOB_ID, --JOB_RUN_ID, --JOB_NAME), the job's DefaultArguments, and the run's Arguments, which
 * replace a default of the same name ("Job parameters used by AWS Glue", AWS Glue developer guide).
 */
export function jobRunArgv(
  glueName: string,
  jobRunId: string,
  defaultArguments: Record<string, string>,
  runArguments: Record<string, string>,
): string[] {
  const merged = { ...defaultArguments, ...runArguments };
  return [
    '--JOB_ID',
    `j_${glueName}`,
    '--JOB_RUN_ID',
    jobRunId,
    '--JOB_NAME',
    glueName,
    ...Object.entries(merged).flatMap(([name, value]) => [name, value]),
  ];
}

/**
 * The TableInput given moto for an AWS::Glue::Table: the template's, and for an Iceberg table (OpenTableFormatInput)
 * its IcebergTableInput kept in a parameter. moto writes no Iceberg metadata for CloudFormation's CREATE; the worker
 * creates the table from that parameter through Iceberg's GlueCatalog before a run (glue_local/iceberg.py, the same
 * function in Python: stack_table_input).
 */
export function stackTableInput(properties: Record<string, unknown>): TableInput {
  const input = properties.TableInput as TableInput;
  const iceberg = (properties.OpenTableFormatInput as { IcebergInput?: Record<string, unknown> } | undefined)
    ?.IcebergInput;
  if (!iceberg) return input;
  const spec = { ...(iceberg.IcebergTableInput as object), Version: (iceberg.Version as string | undefined) ?? '2' };
  return {
    ...input,
    Parameters: {
      ...(input.Parameters ?? {}),
      table_type: 'ICEBERG',
      [STACK_ICEBERG_INPUT]: JSON.stringify(spec),
    },
  };
}

/** The table parameter with a stack Iceberg table's IcebergTableInput (glue_local/iceberg.py). */
export const STACK_ICEBERG_INPUT = 'glue_local.iceberg_table_input';
