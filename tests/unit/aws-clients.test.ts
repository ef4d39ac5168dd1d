import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AWS_CALL_LOG_ENV, RecordedAwsCall, awsClientConfig } from '../../src/aws/clients';
import { removeDir, tempDir } from '../helpers/lake';

// The logger the SDK's logger middleware calls (@aws-sdk/core, loggerMiddleware): info({ clientName,
// commandName, input, output, metadata }) after a command, error({ clientName, commandName, input, error })
// when it fails; credential providers and others log plain strings.
describe('the CLI’s AWS client configuration', () => {
  it('is the SDK’s defaults with connect and read timeouts, and no logger, without STEDI_AWS_CALL_LOG', () => {
    const config = awsClientConfig({});
    expect(Object.keys(config)).toEqual(['requestHandler']);
  });

  it('records each command as one JSON line (client, command, input, error name), binary bodies as their length', () => {
    const dir = tempDir('aws-calls');
    try {
      const file = path.join(dir, 'calls.jsonl');
      const { logger } = awsClientConfig({ [AWS_CALL_LOG_ENV]: file });
      logger!.info({
        clientName: 'S3Client',
        commandName: 'PutObjectCommand',
        input: { Bucket: 'b', Key: 'k', Body: Buffer.from('12345') },
        output: { VersionId: 'v1' },
        metadata: {},
      });
      logger!.debug('loading credentials');
      logger!.warn('a warning');
      logger!.info('a plain message');
      logger!.error({
        clientName: 'S3Client',
        commandName: 'GetObjectCommand',
        input: { Bucket: 'b', Key: 'missing' },
        error: Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' }),
      });
      const lines = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as RecordedAwsCall);
      expect(lines).toEqual([
        { client: 'S3Client', command: 'PutObjectCommand', input: { Bucket: 'b', Key: 'k', Body: { bytes: 5 } } },
        { client: 'S3Client', command: 'GetObjectCommand', input: { Bucket: 'b', Key: 'missing' }, error: 'NoSuchKey' },
      ]);
    } finally {
      removeDir(dir);
    }
  });
});
