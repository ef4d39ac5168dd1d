import { expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { JOB_NAMES } from '../../src/definition/pipeline';
import { required } from '../../src/required';
import { MotoServer, startMoto } from '../helpers/moto';
import {
  GlueJob,
  LambdaFunction,
  OFFLINE_ENV,
  ROOT,
  SERVERLESS,
  STAGE,
  outDir,
  pascal,
  resource,
  subOf,
  template,
} from './template';

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
