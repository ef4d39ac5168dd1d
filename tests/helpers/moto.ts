import {
  CreateBucketCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketVersioningCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateStateMachineCommand, SFNClient } from '@aws-sdk/client-sfn';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DATASETS, landingPrefix } from '../../src/definition/layout';
import { readAslText, substitute, substitutionNames } from '../../src/statemachine/definition';
import { MotoServer, startMoto as startMotoServer } from '../../src/aws/moto-server';

export type { MotoServer } from '../../src/aws/moto-server';

/** A moto server on a free loopback port (src/aws/moto-server.ts), with the python3 on the tests' PATH. */
export function startMoto(): Promise<MotoServer> {
  return startMotoServer();
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
