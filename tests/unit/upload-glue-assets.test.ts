import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteObjectsCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { required } from '../../src/required';

// deploy/upload-glue-assets.js against a fake framework and a fake S3 client; the end-to-end deploy (and a
// package that fails the upload leaving the stack unchanged) runs against moto in tests/deploy/moto-deploy.test.ts.

// CommonJS files without types (no allowJs): required, then typed.
/* eslint-disable @typescript-eslint/no-require-imports */
const UploadGlueAssets = require('../../deploy/upload-glue-assets.js') as {
  new (serverless: unknown, options: unknown, utils: unknown): Plugin;
  UPLOAD_BEFORE: string;
};
const { glueAssets } = require('../../deploy/glue-assets.js') as {
  glueAssets: () => { file: string; key: string; sha256: string }[];
};
const AwsDeploy = require('osls/lib/plugins/aws/deploy/index.js') as new (
  serverless: unknown,
  options: unknown,
) => { commands: { aws: { commands: { deploy: { commands: { deploy: { lifecycleEvents: string[] } } } } } } };
/* eslint-enable @typescript-eslint/no-require-imports */

interface Plugin {
  hooks: Record<string, () => unknown>;
  addToPackage(): void;
  upload(s3: FakeS3): Promise<void>;
  removeAll(s3: unknown): Promise<void>;
}

type Command = HeadObjectCommand | PutObjectCommand;
class FakeS3 {
  sent: Command[] = [];
  constructor(
    private readonly existing: Set<string>,
    private readonly failPut = false,
  ) {}
  send(command: Command): Promise<unknown> {
    this.sent.push(command);
    if (command instanceof HeadObjectCommand) {
      if (this.existing.has(command.input.Key!)) return Promise.resolve({});
      return Promise.reject(
        Object.assign(new Error('NotFound'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } }),
      );
    }
    if (this.failPut) return Promise.reject(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));
    return Promise.resolve({});
  }
}

let serviceDir: string;
const BUCKET = 'stedi-lakehouse-test-serverlessdeploymentbucket-x';
const notices: string[] = [];
const framework = (provider: Record<string, unknown> = {}) => ({
  serviceDir,
  service: { provider },
  classes: { Error },
  getProvider: () => ({ getServerlessDeploymentBucketName: () => Promise.resolve(BUCKET) }),
});
const plugin = (provider?: Record<string, unknown>) =>
  new UploadGlueAssets(framework(provider), {}, { log: { notice: (m: string) => notices.push(m), verbose: () => {} } });

beforeEach(() => {
  serviceDir = mkdtempSync(path.join(tmpdir(), 'stedi-upload-assets-'));
});
afterEach(() => rmSync(serviceDir, { recursive: true, force: true }));

describe('upload-glue-assets', () => {
  it('uploads before osls updates the stack: its event comes before updateStack in aws:deploy:deploy', () => {
    const hooks = Object.keys(plugin().hooks);
    expect(hooks).toContain(`before:${UploadGlueAssets.UPLOAD_BEFORE}`);
    const deploy = new AwsDeploy(
      { getProvider: () => ({}), service: { package: {} }, serviceDir, processedInput: { commands: [] } },
      {},
    );
    const events = deploy.commands.aws.commands.deploy.commands.deploy.lifecycleEvents;
    const event = UploadGlueAssets.UPLOAD_BEFORE.split(':').pop()!;
    expect(events.indexOf(event)).toBeGreaterThanOrEqual(0);
    expect(events.indexOf(event)).toBeLessThan(events.indexOf('updateStack'));
    expect(events.indexOf('createStack')).toBeLessThan(events.indexOf(event)); // the deployment bucket exists
  });

  it('packages each asset under its hash and uploads only the keys the bucket does not have', async () => {
    const p = plugin();
    p.addToPackage();
    const assets = glueAssets();
    const manifestFile = path.join(serviceDir, '.serverless', 'glue-assets', 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { key: string }[];
    expect(manifest.map((a) => a.key)).toEqual(assets.map((a) => a.key));

    const s3 = new FakeS3(new Set([required(assets[0], 'a Glue asset').key]));
    await p.upload(s3);
    const puts = s3.sent.filter((c): c is PutObjectCommand => c instanceof PutObjectCommand);
    expect(puts.map((c) => [c.input.Bucket, c.input.Key])).toEqual(assets.slice(1).map((a) => [BUCKET, a.key]));
    for (const put of puts)
      expect((put.input.Body as Buffer).toString('utf8')).toBe(
        readFileSync(assets.find((a) => a.key === put.input.Key)!.file, 'utf8'),
      );
    expect(notices.pop()).toMatch(`${assets.length - 1} of ${assets.length} files uploaded`);
  });

  it('refuses a package whose file does not match its key, before any request', async () => {
    const p = plugin();
    p.addToPackage();
    const first = required(glueAssets()[0], 'a Glue asset');
    writeFileSync(path.join(serviceDir, '.serverless', 'glue-assets', ...first.key.split('/').slice(1)), 'changed');
    const s3 = new FakeS3(new Set());
    await expect(p.upload(s3)).rejects.toThrow(/does not match its key/);
    expect(s3.sent).toEqual([]);
  });

  it('fails the deploy when an upload fails', async () => {
    const p = plugin();
    p.addToPackage();
    await expect(p.upload(new FakeS3(new Set(), true))).rejects.toThrow('Access Denied');
  });

  it('empties glue-assets/ of the deployment bucket before `serverless remove` deletes the stack', async () => {
    const p = plugin();
    expect(Object.keys(p.hooks)).toContain('before:remove:remove');
    const sent: unknown[] = [];
    const pages = [
      { Contents: [{ Key: 'glue-assets/a/run_sql_job.py' }], NextContinuationToken: 't' },
      { Contents: [{ Key: 'glue-assets/b/x.sql' }] },
    ];
    const s3 = {
      send: (command: unknown) => {
        sent.push(command);
        return Promise.resolve(command instanceof ListObjectsV2Command ? pages.shift() : {});
      },
    };
    await p.removeAll(s3);
    const deletes = sent.filter((c): c is DeleteObjectsCommand => c instanceof DeleteObjectsCommand);
    expect(deletes.flatMap((c) => c.input.Delete!.Objects!.map((o) => o.Key))).toEqual([
      'glue-assets/a/run_sql_job.py',
      'glue-assets/b/x.sql',
    ]);
    const lists = sent.filter((c): c is ListObjectsV2Command => c instanceof ListObjectsV2Command);
    expect(lists.map((c) => [c.input.Bucket, c.input.Prefix])).toEqual([
      [BUCKET, 'glue-assets/'],
      [BUCKET, 'glue-assets/'],
    ]);
  });

  it('refuses a custom deployment bucket: the jobs name the one the framework creates', () => {
    expect(() => plugin({ deploymentBucket: 'mine' }).addToPackage()).toThrow(/provider.deploymentBucket/);
  });
});
