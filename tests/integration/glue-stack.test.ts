import { describe, expect, test } from '@jest/globals';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetJobCommand, GetTableCommand, GetTablesCommand, GlueClient } from '@aws-sdk/client-glue';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  LOCAL_STACK,
  STACK_ICEBERG_INPUT,
  createStackOnMoto,
  jobRunArgv,
  resolveIntrinsics,
} from '../../src/glue-engine/stack';
import { DERIVED_TABLES } from '../../src/definition/layout';
import { JOB_NAMES, loadJobs } from '../../src/definition/pipeline';
import { startMoto } from '../helpers/moto';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { resources } = require('../../deploy/glue-resources.js') as {
  resources: () => { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
};

describe('the stack on moto (the Glue engine creates what the stack deploys, from deploy/glue-resources.js)', () => {
  test('CloudFormation intrinsics resolve as at deploy time; an unknown name is an error', () => {
    const refs = { DataBucket: 'b', 'AWS::StackName': 's', 'DataBucket.Arn': 'arn:aws:s3:::b' };
    expect(
      resolveIntrinsics(
        { a: { Ref: 'DataBucket' }, b: [{ 'Fn::Sub': 's3://${DataBucket}/x-${AWS::StackName}' }] },
        refs,
      ),
    ).toEqual({
      a: 'b',
      b: ['s3://b/x-s'],
    });
    expect(resolveIntrinsics({ 'Fn::GetAtt': ['DataBucket', 'Arn'] }, refs)).toBe('arn:aws:s3:::b');
    expect(() => resolveIntrinsics({ Ref: 'Nope' }, refs)).toThrow(/no value for Nope/);
  });

  test('a job run gets --JOB_NAME, the job run id, its DefaultArguments and the task Arguments over them', () => {
    const argv = jobRunArgv(
      'stack-job',
      'jr_1',
      { '--consent_policy': 'any', '--bucket': 'b' },
      { '--consent_policy': 'since-consent', '--run_id': 'r' },
    );
    expect(argv).toEqual([
      '--JOB_ID',
      'j_stack-job',
      '--JOB_RUN_ID',
      'jr_1',
      '--JOB_NAME',
      'stack-job',
      '--consent_policy',
      'since-consent',
      '--bucket',
      'b',
      '--run_id',
      'r',
    ]);
  });

  test('creates the bucket, database, tables, jobs, salt and SQL assets of the template', async () => {
    const moto = await startMoto();
    try {
      const config = {
        endpoint: moto.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      };
      const s3 = new S3Client({ ...config, forcePathStyle: true });
      const glue = new GlueClient(config);
      const ssm = new SSMClient(config);
      const stack = await createStackOnMoto(
        { s3, glue, ssm },
        { piiSalt: 'a-salt-of-sixteen-chars', consentPolicy: 'any' },
      );

      const template = Object.values(resources().Resources);
      const tableNames = template
        .filter((r) => r.Type === 'AWS::Glue::Table')
        .map((r) => (r.Properties.TableInput as { Name: string }).Name);
      const { TableList } = await glue.send(new GetTablesCommand({ DatabaseName: LOCAL_STACK.databaseName }));
      expect(TableList?.map((t) => t.Name).sort()).toEqual([...tableNames].sort());
      const trusted = await glue.send(
        new GetTableCommand({ DatabaseName: LOCAL_STACK.databaseName, Name: 'accelerometer_trusted' }),
      );
      expect(trusted.Table?.StorageDescriptor?.Location).toBe(`s3://${stack.dataBucket}/accelerometer/trusted/`);
      // An Iceberg table: moto marks it so and writes no metadata (CloudFormation's CREATE would); the stack's
      // IcebergTableInput, identity partition on reading_date, is kept for the worker to create it through
      // Iceberg's GlueCatalog (tools/glue-local/glue_local/iceberg.py).
      expect(trusted.Table?.Parameters?.table_type).toBe('ICEBERG');
      expect(trusted.Table?.Parameters?.metadata_location).toBeUndefined();
      const spec = JSON.parse(trusted.Table?.Parameters?.[STACK_ICEBERG_INPUT] ?? '{}') as {
        Version: string;
        PartitionSpec: { Fields: { Name: string; Transform: string }[] };
      };
      expect(spec.Version).toBe('2');
      expect(spec.PartitionSpec.Fields.map((f) => [f.Name, f.Transform])).toEqual([['reading_date', 'identity']]);
      expect(stack.icebergTables.map((t) => t.Name).sort()).toEqual([...DERIVED_TABLES].sort());
      const landing = await glue.send(
        new GetTableCommand({ DatabaseName: LOCAL_STACK.databaseName, Name: 'customer_landing' }),
      );
      // The runner reads "required" from the column comments: they must survive.
      expect(landing.Table?.StorageDescriptor?.Columns?.some((c) => /^required/i.test(c.Comment ?? ''))).toBe(true);

      const salt = await ssm.send(
        new GetParameterCommand({ Name: LOCAL_STACK.piiSaltParameterName, WithDecryption: true }),
      );
      expect(salt.Parameter?.Type).toBe('SecureString');
      expect(salt.Parameter?.Value).toBe('a-salt-of-sixteen-chars');

      for (const job of JOB_NAMES) {
        const { glueName, defaultArguments } = stack.jobs[job];
        const { Job } = await glue.send(new GetJobCommand({ JobName: glueName }));
        expect(Job?.DefaultArguments).toEqual(defaultArguments);
        expect(defaultArguments['--bucket']).toBe(stack.dataBucket);
        expect(defaultArguments['--input_tables']).toBe(
          loadJobs()
            .find((j) => j.name === job)!
            .reads.join(','),
        );
        const sql = await s3.send(
          new GetObjectCommand({ Bucket: defaultArguments['--sql_bucket'], Key: defaultArguments['--sql_key'] }),
        );
        expect(await sql.Body!.transformToString()).toBe(
          readFileSync(path.join(__dirname, '..', '..', 'glue', 'jobs', `${job}.sql`), 'utf8'),
        );
      }
    } finally {
      await moto.stop();
    }
  });
});
