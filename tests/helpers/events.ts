import type { Context, S3Event, SQSRecord } from 'aws-lambda';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Events built from the fixtures in tests/events/ (shapes as AWS documents them), changed only where a case needs. */

const fixture = <T>(name: string): T =>
  JSON.parse(readFileSync(path.join(__dirname, '..', 'events', name), 'utf8')) as T;

export interface NotifiedObject {
  /** The key as S3 sends it: URL-encoded, a space as +. */
  key: string;
  size?: number;
  versionId?: string;
  eventName?: string;
}

/** An S3 event notification with one record per object, each otherwise as tests/events/s3-object-created.json. */
export function s3Notification(...objects: NotifiedObject[]): S3Event {
  const [template] = fixture<S3Event>('s3-object-created.json').Records;
  if (!template) throw new Error('tests/events/s3-object-created.json has no record');
  return {
    Records: objects.map((o) => ({
      ...template,
      eventName: o.eventName ?? template.eventName,
      s3: {
        ...template.s3,
        object: {
          ...template.s3.object,
          key: o.key,
          size: o.size ?? template.s3.object.size,
          versionId: o.versionId ?? template.s3.object.versionId,
        },
      },
    })),
  };
}

/**
 * An S3 removal notification, as tests/events/s3-object-removed.json (ObjectRemoved:DeleteMarkerCreated, no size,
 * no eTag), for these keys; `eventName` ObjectRemoved:Delete for a version deleted for good.
 */
export function s3Removal(eventName: string, ...objects: { key: string; versionId?: string; sequencer?: string }[]) {
  const [template] = fixture<S3Event>('s3-object-removed.json').Records;
  if (!template) throw new Error('tests/events/s3-object-removed.json has no record');
  return {
    Records: objects.map((o) => ({
      ...template,
      eventName,
      s3: {
        ...template.s3,
        object: {
          ...template.s3.object,
          key: o.key,
          versionId: o.versionId ?? template.s3.object.versionId,
          sequencer: o.sequencer ?? template.s3.object.sequencer,
        },
      },
    })),
  };
}

/** One SQS record as the Lambda event source delivers it (tests/events/sqs-event.json), with this body. */
export function sqsRecord(messageId: string, body: string): SQSRecord {
  const [template] = fixture<{ Records: SQSRecord[] }>('sqs-event.json').Records;
  if (!template) throw new Error('tests/events/sqs-event.json has no record');
  return { ...template, messageId, body };
}

/** An SQS record carrying the S3 notification of these objects. */
export function s3Message(messageId: string, ...objects: NotifiedObject[]): SQSRecord {
  return sqsRecord(messageId, JSON.stringify(s3Notification(...objects)));
}

/** The test event S3 sends when a notification configuration is saved. */
export const s3TestEventBody = (): string => JSON.stringify(fixture('s3-test-event.json'));

/** A Lambda context (tests/events/lambda-context.json), for handlers that log it. */
export function lambdaContext(awsRequestId?: string): Context {
  const context = fixture<Context>('lambda-context.json');
  return {
    ...context,
    ...(awsRequestId ? { awsRequestId } : {}),
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
