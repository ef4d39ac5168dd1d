import { expect } from '@jest/globals';
import { required } from '../../src/required';
import {
  Bucket,
  EventSourceMapping,
  LANDING_PREFIXES,
  LambdaFunction,
  Queue,
  StateMachine,
  arnOf,
  list,
  ofType,
  policyStatements,
  ref,
  resource,
  subOf,
  template,
} from './template';

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
