import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import {
  CreateBucketCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketVersioningCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateStateMachineCommand, SFNClient } from '@aws-sdk/client-sfn';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DATASETS, landingPrefix } from '../../src/layout';
import { readAslText, substitute, substitutionNames } from '../../src/statemachine/definition';

/** A moto server on a free loopback port: the local AWS APIs (S3, SQS, Step Functions, CloudFormation). */
export interface MotoServer {
  endpoint: string;
  /** The environment an AWS SDK client or the CLI needs to talk to it. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startMoto(): Promise<MotoServer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`the moto server exited (is the python package moto installed?): ${stderr.slice(-500)}`);
    try {
      const response = await fetch(`${endpoint}/moto-api/`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the moto server did not answer on ${endpoint} within 20 s: ${stderr.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const env = {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
  return { endpoint, env, stop };
}

/** The pipeline state machine (its ASL, every substitution a placeholder) created on a moto Step Functions. */
export async function createPipelineStateMachine(sfn: SFNClient, name: string): Promise<string> {
  const text = readAslText();
  const definition = substitute(text, Object.fromEntries(substitutionNames(text).map((n) => [n, `test-${n}`])));
  const { stateMachineArn } = await sfn.send(
    new CreateStateMachineCommand({
      name,
      definition: JSON.stringify(definition),
      roleArn: 'arn:aws:iam::123456789012:role/stedi-pipeline',
    }),
  );
  if (!stateMachineArn) throw new Error(`moto created no state machine ${name}`);
  return stateMachineArn;
}

/**
 * A versioned bucket whose landing prefixes notify a new SQS queue of each `*.json` object created or removed,
 * as deploy/resources/data.yml configures the data bucket. Returns the queue's URL.
 */
export async function createLandingBucket(s3: S3Client, sqs: SQSClient, bucket: string, queueName: string) {
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: queueName }))).QueueUrl;
  if (!queueUrl) throw new Error(`moto created no queue ${queueName}`);
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  await s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      NotificationConfiguration: {
        QueueConfigurations: DATASETS.map((dataset) => ({
          QueueArn: Attributes?.QueueArn,
          Events: ['s3:ObjectCreated:*', 's3:ObjectRemoved:*'],
          Filter: {
            Key: {
              FilterRules: [
                { Name: 'prefix', Value: landingPrefix(dataset) },
                { Name: 'suffix', Value: '.json' },
              ],
            },
          },
        })),
      },
    }),
  );
  return { queueUrl };
}
