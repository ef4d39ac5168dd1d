'use strict';
/**
 * A local serverless plugin that ships the Glue runner and the jobs' SQL with the stack, under the
 * content-addressed keys the jobs name (deploy/glue-assets.js):
 *
 * - `serverless package` copies them into the package, <package>/glue-assets/<sha256>/<name>, beside the
 *   template that names them, so a later `serverless deploy --package` uploads exactly what it references;
 * - `serverless deploy` uploads them to the framework's deployment bucket before the stack update: in osls'
 *   aws:deploy:deploy lifecycle (createStack, checkForChanges, uploadArtifacts, validateTemplate, updateStack)
 *   the hook runs before uploadArtifacts, once the deployment bucket exists (createStack makes it on a first
 *   deploy; the data bucket would not exist yet). Each file is checked against its key's hash first, and a
 *   key already there is left alone: its content is the same. If any upload fails the deploy stops before
 *   the stack changes, and the jobs go on reading the keys of the deployed stack;
 * - `serverless remove` deletes them first: osls empties only its own serverless/<service>/<stage>/ prefix
 *   of the deployment bucket, and CloudFormation cannot delete a bucket that still holds objects.
 *
 * It uses the framework's own credentials, profile and region (osls' getAwsSdkV3Config).
 */
const { createHash } = require('node:crypto');
const { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const {
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} = require('@aws-sdk/client-s3');
const { ASSET_PREFIX, ASSETS_BUCKET_LOGICAL_ID, glueAssets } = require('./glue-assets');

const MANIFEST = 'manifest.json';
const PACKAGE_DIR = 'glue-assets';
/** The osls lifecycle event the upload runs before; the stack is updated in a later event of the same list. */
const UPLOAD_BEFORE = 'aws:deploy:deploy:uploadArtifacts';

class UploadGlueAssets {
  constructor(serverless, _options, { log } = {}) {
    this.serverless = serverless;
    this.provider = serverless.getProvider('aws');
    this.log = log ?? { notice: console.log, verbose: () => undefined };
    this.hooks = {
      'before:package:finalize': () => this.addToPackage(),
      [`before:${UPLOAD_BEFORE}`]: () => this.upload(),
      'before:remove:remove': () => this.removeAll(),
    };
  }

  /** The package being built or deployed: osls keeps it in <service>/.serverless until it is moved. */
  packageDir() {
    return path.join(this.serverless.serviceDir, '.serverless', PACKAGE_DIR);
  }

  fail(message) {
    return new this.serverless.classes.Error(message);
  }

  /** Copies the assets into the package and writes their manifest: [{ key, file, sha256 }]. */
  addToPackage() {
    if (this.serverless.service.provider.deploymentBucket) {
      throw this.fail(
        `provider.deploymentBucket is set: the Glue jobs read their code from the ${ASSETS_BUCKET_LOGICAL_ID} the framework creates`,
      );
    }
    const dir = this.packageDir();
    const manifest = glueAssets().map(({ file, key, sha256 }) => {
      const packaged = path.join(dir, ...key.slice(ASSET_PREFIX.length).split('/'));
      mkdirSync(path.dirname(packaged), { recursive: true });
      copyFileSync(file, packaged);
      return { key, file: path.relative(dir, packaged).split(path.sep).join('/'), sha256 };
    });
    writeFileSync(path.join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    this.log.verbose(`packaged ${manifest.length} Glue assets in ${dir}`);
  }

  /** The packaged assets, each read and checked against its hash. */
  packagedAssets() {
    const dir = this.packageDir();
    const manifestFile = path.join(dir, MANIFEST);
    if (!existsSync(manifestFile)) {
      throw this.fail(
        `the package has no ${PACKAGE_DIR}/${MANIFEST}: package it again with this project's serverless.yml`,
      );
    }
    return JSON.parse(readFileSync(manifestFile, 'utf8')).map(({ key, file, sha256 }) => {
      const packaged = path.join(dir, file);
      if (!existsSync(packaged)) throw this.fail(`${PACKAGE_DIR}/${file} is missing from the package`);
      const body = readFileSync(packaged);
      const actual = createHash('sha256').update(body).digest('hex');
      if (actual !== sha256 || !key.startsWith(`${ASSET_PREFIX}${sha256}/`)) {
        throw this.fail(`${PACKAGE_DIR}/${file} does not match its key ${key} (sha256 ${actual}): package it again`);
      }
      return { key, body };
    });
  }

  /** Uploads every packaged asset not yet in the deployment bucket; `s3Client` is for tests. */
  async upload(s3Client) {
    const assets = this.packagedAssets(); // before any request: a bad package uploads nothing
    const bucket = await this.provider.getServerlessDeploymentBucketName();
    const s3 = s3Client ?? new S3Client(await this.provider.getAwsSdkV3Config());
    let uploaded = 0;
    for (const { key, body } of assets) {
      if (await this.exists(s3, bucket, key)) continue; // content-addressed: same key, same content
      const ContentType = key.endsWith('.py') ? 'text/x-python' : 'application/sql';
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType }));
      uploaded += 1;
      this.log.verbose(`uploaded s3://${bucket}/${key}`);
    }
    this.log.notice(
      `Glue runner and SQL: ${uploaded} of ${assets.length} files uploaded to s3://${bucket}/${ASSET_PREFIX} (the others were there)`,
    );
  }

  /** Deletes every glue-assets/ object of the deployment bucket (`s3Client` is for tests). */
  async removeAll(s3Client) {
    let bucket;
    try {
      bucket = await this.provider.getServerlessDeploymentBucketName();
    } catch (error) {
      this.log.verbose(`no deployment bucket to empty of Glue assets: ${error.message}`);
      return;
    }
    const s3 = s3Client ?? new S3Client(await this.provider.getAwsSdkV3Config());
    let removed = 0;
    let ContinuationToken;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: ASSET_PREFIX, ContinuationToken }));
      const Objects = (page.Contents ?? []).map(({ Key }) => ({ Key }));
      if (Objects.length > 0) {
        const result = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects, Quiet: true } }));
        if (result.Errors?.length)
          throw this.fail(`could not delete ${result.Errors[0].Key}: ${result.Errors[0].Code}`);
        removed += Objects.length;
      }
      ContinuationToken = page.NextContinuationToken;
    } while (ContinuationToken);
    this.log.notice(`Removed ${removed} Glue runner and SQL files from s3://${bucket}/${ASSET_PREFIX}`);
  }

  async exists(s3, bucket, key) {
    try {
      await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (error) {
      if (error?.$metadata?.httpStatusCode === 404 || error?.name === 'NotFound') return false;
      throw error;
    }
  }
}

UploadGlueAssets.UPLOAD_BEFORE = UPLOAD_BEFORE;
module.exports = UploadGlueAssets;
