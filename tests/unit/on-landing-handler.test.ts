import type { SQSBatchResponse, SQSEvent, Context } from 'aws-lambda';
import { lambdaContext, sqsRecord, s3TestEventBody } from '../helpers/events';

// The handler module itself, with a batch that needs no AWS call (an S3 test event is ignored): its log
// lines must carry the Lambda context, as Powertools Logger adds it.
describe('the landing handler', () => {
  const saved = { ...process.env };
  afterAll(() => {
    process.env = saved;
  });

  it('logs with the Lambda context: request id, function name, cold start', async () => {
    Object.assign(process.env, {
      STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:stedi-lakehouse-test-pipeline',
      AWS_REGION: 'us-east-1',
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      // Set by the Lambda runtime for on-demand functions; Powertools reports a cold start only under it.
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    });
    const lines: string[] = [];
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    let handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
    try {
      ({ handler } = await import('../../functions/on-landing'));
      const response = await handler({ Records: [sqsRecord('m1', s3TestEventBody())] }, lambdaContext('req-1'));
      await handler({ Records: [sqsRecord('m2', s3TestEventBody())] }, lambdaContext('req-2'));
      expect(response).toEqual({ batchItemFailures: [] });
    } finally {
      write.mockRestore();
    }
    const logs = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const ignored = logs.filter((l) => l.message === 'record ignored');
    expect(ignored.map((l) => [l.function_request_id, l.cold_start, l.function_name, l.reason])).toEqual([
      ['req-1', true, 'stedi-lakehouse-dev-onLanding', 'S3 test event'],
      ['req-2', false, 'stedi-lakehouse-dev-onLanding', 'S3 test event'],
    ]);
  });
});
