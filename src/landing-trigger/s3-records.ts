import type { SQSRecord } from 'aws-lambda';
import { DATASETS, Dataset } from '../definition/layout';

/**
 * A change to one of the three landing prefixes that should start a run: an object created, or one removed
 * (its rows must leave every zone; a run reads landing as it is, so a removal is run like an upload).
 */
export interface LandedFile {
  messageId: string;
  bucket: string;
  key: string;
  dataset: Dataset;
  /** What S3 notified: the object created, or removed (deleted, or hidden by a delete marker). */
  change: 'created' | 'removed';
  /** Bytes of a created object; 0 for a removal, whose notification has no size. */
  size: number;
  versionId?: string;
  sequencer?: string;
}

/**
 * The event types that start a run (Amazon S3 User Guide, "Event notification types and destinations"):
 * any ObjectCreated, and of ObjectRemoved the two there are: Delete (an object of an unversioned bucket, or
 * a version deleted for good) and DeleteMarkerCreated (a delete without a version id in a versioned bucket,
 * as the data bucket is). S3 Lifecycle's deletions are LifecycleExpiration events, which the bucket does
 * not send: the expiry of old versions starts nothing.
 */
export function changeOf(eventName: string | undefined): LandedFile['change'] | undefined {
  if (eventName?.startsWith('ObjectCreated:')) return 'created';
  if (eventName === 'ObjectRemoved:Delete' || eventName === 'ObjectRemoved:DeleteMarkerCreated') return 'removed';
  return undefined;
}

export interface IgnoredRecord {
  messageId: string;
  key?: string;
  reason: string;
}

/** An SQS message body from S3: an event notification, or the test event S3 sends when notifications are set up. */
interface S3NotificationBody {
  Event?: string;
  Records?: S3EventRecord[];
}

interface S3EventRecord {
  eventName?: string;
  s3?: { bucket?: { name?: string }; object?: { key?: string; size?: number; versionId?: string; sequencer?: string } };
}

/** S3 sends keys URL-encoded, with + for a space. */
export function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/** Why a decoded key does not start a run, or undefined when it does. A removal has no size to check. */
export function ignoreReason(key: string, size: number, change: LandedFile['change'] = 'created'): string | undefined {
  const parts = key.split('/');
  if (parts.some((p) => p === '..' || p === '.')) return 'key tries to escape its prefix';
  if (key.endsWith('/')) return 'folder marker';
  const dataset = DATASETS.find((d) => parts[0] === d && parts[1] === 'landing');
  if (!dataset) return 'outside the landing prefixes';
  if (parts.length !== 3) return 'in a folder below the landing prefix, which the landing table does not read';
  if (!key.endsWith('.json')) return 'not a .json file';
  if (change === 'created' && size === 0) return 'zero-byte object';
  return undefined;
}

/**
 * The landed files of a batch of SQS messages carrying S3 event notifications, and what was
 * ignored and why. A message that cannot be read is ignored, never thrown: one bad message
 * must not fail the batch.
 */
export function readBatch(records: SQSRecord[]): { files: LandedFile[]; ignored: IgnoredRecord[] } {
  const files: LandedFile[] = [];
  const ignored: IgnoredRecord[] = [];
  for (const message of records) {
    const { messageId } = message;
    let body: S3NotificationBody | null;
    try {
      body = JSON.parse(message.body) as S3NotificationBody | null;
    } catch {
      ignored.push({ messageId, reason: 'message body is not JSON' });
      continue;
    }
    if (body?.Event === 's3:TestEvent') {
      ignored.push({ messageId, reason: 'S3 test event' });
      continue;
    }
    if (!Array.isArray(body?.Records)) {
      ignored.push({ messageId, reason: 'not an S3 event notification' });
      continue;
    }
    for (const record of body.Records) {
      const object = record.s3?.object;
      const bucket = record.s3?.bucket?.name;
      const change = changeOf(record.eventName);
      if (!change || !object?.key || !bucket) {
        ignored.push({
          messageId,
          key: object?.key,
          reason: `not an ObjectCreated or ObjectRemoved record (${record.eventName ?? 'no eventName'})`,
        });
        continue;
      }
      let key: string;
      try {
        key = decodeS3Key(object.key);
      } catch {
        ignored.push({ messageId, key: object.key, reason: 'key is not valid URL encoding' });
        continue;
      }
      const size = change === 'created' ? (object.size ?? 0) : 0;
      const reason = ignoreReason(key, size, change);
      if (reason) {
        ignored.push({ messageId, key, reason });
        continue;
      }
      files.push({
        messageId,
        bucket,
        key,
        dataset: key.split('/')[0] as Dataset,
        change,
        size,
        versionId: object.versionId,
        sequencer: object.sequencer,
      });
    }
  }
  return { files, ignored };
}
