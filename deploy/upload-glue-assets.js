'use strict';
/**
 * A local serverless plugin: after `serverless deploy` has updated the stack, uploads the Glue runner
 * and the jobs' SQL files (deploy/glue-assets.js) to the stack's data bucket, so the jobs
 * run the SQL of the commit that was deployed. It uses the framework's own credentials, profile and
 * region (osls' getAwsSdkV3Config); `serverless package` does not touch AWS.
 */
const { readFileSync } = require('node:fs');
const { CloudFormationClient, paginateListStackResources } = require('@aws-sdk/client-cloudformation');
const { PutObjectCommand, S3Client } = require('@aws-sdk/client-s3');
const { ASSET_PREFIX, glueAssets } = require('./glue-assets');

class UploadGlueAssets {
  constructor(serverless, _options, { log } = {}) {
    this.serverless = serverless;
    this.provider = serverless.getProvider('aws');
    this.log = log ?? { notice: console.log, verbose: () => undefined };
    this.hooks = { 'after:deploy:deploy': () => this.upload() };
  }

  async upload() {
    const config = await this.provider.getAwsSdkV3Config();
    const stackName = this.provider.naming.getStackName();
    const bucket = await this.dataBucketName(new CloudFormationClient(config), stackName);
    const s3 = new S3Client(config);
    const assets = glueAssets();
    for (const { file, key } of assets) {
      const ContentType = key.endsWith('.py') ? 'text/x-python' : 'application/sql';
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(file), ContentType }));
      this.log.verbose(`uploaded s3://${bucket}/${key}`);
    }
    this.log.notice(`Uploaded the Glue runner and ${assets.length - 1} SQL files to s3://${bucket}/${ASSET_PREFIX}`);
  }

  /** The physical name of the stack's DataBucket resource. */
  async dataBucketName(cloudFormation, stackName) {
    for await (const page of paginateListStackResources({ client: cloudFormation }, { StackName: stackName })) {
      const bucket = (page.StackResourceSummaries ?? []).find((r) => r.LogicalResourceId === 'DataBucket');
      if (bucket?.PhysicalResourceId) return bucket.PhysicalResourceId;
    }
    throw new this.serverless.classes.Error(`stack ${stackName} has no DataBucket resource`);
  }
}

module.exports = UploadGlueAssets;
