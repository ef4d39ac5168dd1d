import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { readOnLandingConfig } from '../src/aws/on-landing-config';
import { awsStepFunctionsPort } from '../src/aws/step-functions-port';
import { handleLandingBatch } from '../src/landing-trigger/trigger';

// Read and checked once, at cold start; clients are created once and reused across invocations.
const config = readOnLandingConfig(process.env);
const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'on-landing' });
const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'StediLakehouse',
  serviceName: 'on-landing',
});
const stepFunctions = awsStepFunctionsPort(new SFNClient({}), config.stateMachineArn);

/** S3 ObjectCreated and ObjectRemoved notifications, batched by SQS → at most one pipeline execution per batch. */
export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  // The request id, function name and cold start on every log line (Powertools' manual addContext example).
  logger.addContext(context);
  try {
    return await handleLandingBatch(event.Records, {
      stepFunctions,
      logger,
      metrics: { count: (name, value) => metrics.addMetric(name, MetricUnit.Count, value) },
    });
  } finally {
    metrics.publishStoredMetrics();
  }
}
