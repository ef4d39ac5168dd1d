import type { SQSRecord } from 'aws-lambda';
import { s3Message, s3Removal, s3TestEventBody, sqsRecord } from '../helpers/events';
import { readOnLandingConfig } from '../../src/aws/on-landing-config';
import { ConfigError } from '../../src/config';
import { readBatch } from '../../src/landing-trigger/s3-records';
import {
  PipelineRunInput,
  StepFunctionsPort,
  TriggerMetric,
  executionNameFor,
  handleLandingBatch,
} from '../../src/landing-trigger/trigger';

class FakeStepFunctions implements StepFunctionsPort {
  running = false;
  readonly started: { name: string; input: PipelineRunInput }[] = [];
  failWith?: Error;
  hasRunningExecution() {
    return Promise.resolve(this.running);
  }
  startExecution(name: string, input: PipelineRunInput) {
    if (this.failWith) return Promise.reject(this.failWith);
    if (this.started.some((s) => s.name === name)) return Promise.resolve('duplicate' as const);
    this.started.push({ name, input });
    return Promise.resolve('started' as const);
  }
}

function harness() {
  const stepFunctions = new FakeStepFunctions();
  const logs: { message: string; extra: Record<string, unknown> }[] = [];
  const metrics: Partial<Record<TriggerMetric, number>> = {};
  const log = (message: string, extra: Record<string, unknown>) => logs.push({ message, extra });
  const deps = {
    stepFunctions,
    logger: { info: log, error: log },
    metrics: { count: (m: TriggerMetric, n: number) => (metrics[m] = (metrics[m] ?? 0) + n) },
  };
  return { stepFunctions, logs, metrics, handle: (records: SQSRecord[]) => handleLandingBatch(records, deps) };
}

describe('the landing trigger', () => {
  it('starts one execution for a burst, from the earliest affected dataset', async () => {
    const { stepFunctions, metrics, handle } = harness();
    const response = await handle([
      s3Message('m1', { key: 'step_trainer/landing/s1.json' }),
      s3Message('m2', { key: 'accelerometer/landing/a1.json' }, { key: 'accelerometer/landing/a2.json' }),
    ]);
    expect(response).toEqual({ batchItemFailures: [] });
    expect(stepFunctions.started).toHaveLength(1);
    expect(stepFunctions.started[0]?.input).toEqual({
      from: 'accelerometer',
      reason: 's3',
      files: ['accelerometer/landing/a1.json', 'accelerometer/landing/a2.json', 'step_trainer/landing/s1.json'],
    });
    expect(stepFunctions.started[0]?.name).toMatch(/^s3-[0-9a-f]{40}$/);
    expect(metrics).toMatchObject({ FilesReceived: 3, FilesIgnored: 0, ExecutionsStarted: 1 });
  });

  it('defers the whole batch while an execution runs', async () => {
    const { stepFunctions, metrics, handle } = harness();
    stepFunctions.running = true;
    const response = await handle([
      s3Message('m1', { key: 'customer/landing/c.json' }),
      s3Message('m2', { key: 'other/x.json' }),
    ]);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]); // m2 holds nothing to run
    expect(stepFunctions.started).toEqual([]);
    expect(metrics.BatchesDeferred).toBe(1);
  });

  it('starts nothing new for a redelivered batch', async () => {
    const { stepFunctions, logs, handle } = harness();
    const message = s3Message('m1', { key: 'customer/landing/c.json', versionId: 'v7' });
    await handle([message]);
    const again = await handle([{ ...message, messageId: 'm1-redelivered' }]);
    expect(again).toEqual({ batchItemFailures: [] });
    expect(stepFunctions.started).toHaveLength(1);
    expect(logs.map((l) => l.message)).toContain('execution already exists: a redelivered batch');
  });

  it('names a batch from its keys and versions, whatever their order', () => {
    const a = readBatch([s3Message('1', { key: 'customer/landing/a.json' }, { key: 'customer/landing/b.json' })]).files;
    const b = readBatch([
      s3Message('2', { key: 'customer/landing/b.json' }),
      s3Message('3', { key: 'customer/landing/a.json' }),
    ]).files;
    const newer = readBatch([
      s3Message('1', { key: 'customer/landing/a.json', versionId: 'v2' }, { key: 'customer/landing/b.json' }),
    ]).files;
    expect(executionNameFor(a)).toBe(executionNameFor(b));
    expect(executionNameFor(newer)).not.toBe(executionNameFor(a));
  });

  it('returns the batch for a retry when Step Functions cannot be reached', async () => {
    const { stepFunctions, logs, handle } = harness();
    stepFunctions.failWith = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    const response = await handle([s3Message('m1', { key: 'customer/landing/c.json' })]);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
    const failure = logs.find((l) => l.message.startsWith('could not start'));
    // The error itself, not its string: the logger keeps its name and stack.
    expect(failure?.extra.error).toBe(stepFunctions.failWith);
  });

  it('ignores every kind of record that should not start a run, with a reason, without failing the batch', async () => {
    const { stepFunctions, logs, metrics, handle } = harness();
    const response = await handle([
      sqsRecord('test', s3TestEventBody()),
      sqsRecord('garbage', 'not json {'),
      s3Message('outside', { key: 'customer/trusted/part-0.parquet' }),
      s3Message('folder', { key: 'customer/landing/' }),
      s3Message('empty', { key: 'customer/landing/empty.json', size: 0 }),
      s3Message('csv', { key: 'customer/landing/customers.csv' }),
      s3Message('escape', { key: 'customer/landing/../trusted/x.json' }),
      s3Message('nested', { key: 'customer/landing/old/x.json' }),
      s3Message('expired', { key: 'customer/landing/x.json', eventName: 'LifecycleExpiration:Delete' }),
      s3Message('good', { key: 'customer/landing/my+file%281%29.json' }),
    ]);
    expect(response).toEqual({ batchItemFailures: [] });
    const reasons = Object.fromEntries(
      logs.filter((l) => l.message === 'record ignored').map((l) => [String(l.extra.messageId), l.extra.reason]),
    );
    expect(reasons).toEqual({
      test: 'S3 test event',
      garbage: 'message body is not JSON',
      outside: 'outside the landing prefixes',
      folder: 'folder marker',
      empty: 'zero-byte object',
      csv: 'not a .json file',
      escape: 'key tries to escape its prefix',
      nested: 'in a folder below the landing prefix, which the landing table does not read',
      expired: 'not an ObjectCreated or ObjectRemoved record (LifecycleExpiration:Delete)',
    });
    expect(stepFunctions.started.map((s) => s.input.files)).toEqual([['customer/landing/my file(1).json']]); // decoded
    expect(metrics).toMatchObject({ FilesIgnored: 9, FilesReceived: 1 });
  });
});

describe('the landing trigger on removals (Amazon S3 User Guide, "Event notification types and destinations": ObjectRemoved:Delete and, in a versioned bucket, ObjectRemoved:DeleteMarkerCreated)', () => {
  it('starts a run from the dataset of a deleted file: the notification S3 sends for a delete marker, with no size', async () => {
    const { stepFunctions, logs, metrics, handle } = harness();
    const body = s3Removal('ObjectRemoved:DeleteMarkerCreated', { key: 'accelerometer/landing/a1.json' });
    expect(body.Records[0]?.s3.object).not.toHaveProperty('size'); // as S3 sends a removal
    await handle([sqsRecord('m1', JSON.stringify(body))]);
    expect(stepFunctions.started.map((s) => s.input)).toEqual([
      { from: 'accelerometer', reason: 's3', files: ['accelerometer/landing/a1.json'] },
    ]);
    expect(logs.find((l) => l.message === 'execution started')?.extra.removed).toEqual([
      'accelerometer/landing/a1.json',
    ]);
    expect(metrics).toMatchObject({ FilesReceived: 1, FilesRemoved: 1, FilesIgnored: 0, ExecutionsStarted: 1 });
  });

  it('starts a run for a version deleted for good (ObjectRemoved:Delete), from the earliest dataset of the batch', async () => {
    const { stepFunctions, handle } = harness();
    await handle([
      s3Message('m1', { key: 'step_trainer/landing/s1.json' }),
      sqsRecord('m2', JSON.stringify(s3Removal('ObjectRemoved:Delete', { key: 'customer/landing/c1.json' }))),
    ]);
    expect(stepFunctions.started.map((s) => s.input)).toEqual([
      { from: 'customer', reason: 's3', files: ['customer/landing/c1.json', 'step_trainer/landing/s1.json'] },
    ]);
  });

  it('makes a delete and a re-upload of the same key in one batch one run, naming the key once', async () => {
    const { stepFunctions, metrics, handle } = harness();
    const key = 'customer/landing/c1.json';
    await handle([
      sqsRecord('m1', JSON.stringify(s3Removal('ObjectRemoved:DeleteMarkerCreated', { key, sequencer: '01' }))),
      s3Message('m2', { key, versionId: 'v2' }),
    ]);
    expect(stepFunctions.started.map((s) => s.input)).toEqual([{ from: 'customer', reason: 's3', files: [key] }]);
    expect(metrics).toMatchObject({ FilesReceived: 2, FilesRemoved: 1, ExecutionsStarted: 1 });
  });

  it('names a removal apart from the upload of the same key: a delete after a run starts a run of its own', () => {
    const key = 'customer/landing/c1.json';
    const upload = readBatch([s3Message('1', { key })]).files;
    const removal = readBatch([
      sqsRecord('2', JSON.stringify(s3Removal('ObjectRemoved:DeleteMarkerCreated', { key }))),
    ]).files;
    expect(removal).toMatchObject([{ key, change: 'removed', size: 0 }]);
    expect(executionNameFor(removal)).not.toBe(executionNameFor(upload));
  });
});

describe('the landing handler configuration', () => {
  it('names what is missing or wrong', () => {
    expect(() => readOnLandingConfig({})).toThrow(
      new ConfigError('STATE_MACHINE_ARN is not set: the ARN of the pipeline state machine'),
    );
    expect(() => readOnLandingConfig({ STATE_MACHINE_ARN: 'pipeline' })).toThrow(
      /STATE_MACHINE_ARN is not a state machine ARN: pipeline/,
    );
    expect(
      readOnLandingConfig({
        STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:stedi-pipeline-dev',
      }),
    ).toEqual({ stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:stedi-pipeline-dev' });
  });
});
