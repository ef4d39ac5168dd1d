import { expect } from '@jest/globals';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DERIVED_TABLES, LANDING_TABLES, LandingTableName } from '../../src/definition/layout';
import { readDerivedTables } from '../../src/definition/derived-tables';
import { JOB_NAMES, loadJobs } from '../../src/definition/pipeline';
import { required } from '../../src/required';
import { readLandingTables } from '../../src/definition/ddl';
import { supportTables } from '../../src/definition/support-tables';
import {
  GlueJob,
  GlueTable,
  ROOT,
  STAGE,
  arnOf,
  ofType,
  outDir,
  pascal,
  ref,
  resource,
  subOf,
  template,
} from './template';

describe('serverless package: Glue', () => {
  it('creates the database, the three landing tables from the DDL in glue/tables/ and their validated copies', () => {
    expect(resource('GlueDatabase').Type).toBe('AWS::Glue::Database');
    const ddl = readLandingTables(path.join(ROOT, 'glue'));
    const validatedName = (landing: string) => landing.replace(/_landing$/, '_validated');
    // Besides them the five derived tables (below), the validated copies, and the quarantine and build-log
    // tables (athena.test.ts).
    const all = ofType<GlueTable>('AWS::Glue::Table');
    expect(all.map(([, t]) => t.Properties.TableInput.Name).sort()).toEqual(
      [
        ...LANDING_TABLES,
        ...LANDING_TABLES.map(validatedName),
        ...DERIVED_TABLES,
        ...supportTables().map((t) => t.name),
      ].sort(),
    );
    // <dataset>_validated: Parquet at <dataset>/validated/, the DDL's columns after the source file's key.
    for (const landing of LANDING_TABLES) {
      const [, table] = all.find(([, t]) => t.Properties.TableInput.Name === validatedName(landing))!;
      const input = table.Properties.TableInput;
      const dataset = landing.replace(/_landing$/, '');
      expect(input.StorageDescriptor.Columns.map((c) => [c.Name, c.Type])).toEqual([
        ['source_file', 'string'],
        ...ddl[landing].columns.map((c) => [c.name, c.type]),
      ]);
      expect(input.StorageDescriptor.Location).toEqual({ 'Fn::Sub': `s3://\${DataBucket}/${dataset}/validated/` });
      expect(input.StorageDescriptor.SerdeInfo.SerializationLibrary).toBe(
        'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe',
      );
    }
    const tables = all.filter(([, t]) => (LANDING_TABLES as readonly string[]).includes(t.Properties.TableInput.Name));
    for (const [, table] of tables) {
      const input = table.Properties.TableInput;
      const definition = ddl[input.Name as LandingTableName];
      expect(table.Properties.DatabaseName).toEqual(ref('GlueDatabase'));
      expect(input.StorageDescriptor.Columns).toEqual(
        definition.columns.map((c) => ({ Name: c.name, Type: c.type, Comment: c.comment })),
      );
      expect(input.StorageDescriptor.Location).toEqual({
        'Fn::Sub': definition.location.replace('${bucket}', '${DataBucket}'),
      });
      expect(input.StorageDescriptor.SerdeInfo.SerializationLibrary).toBe('org.openx.data.jsonserde.JsonSerDe');
    }
  });

  it('defines each table a job writes before any job runs as an Apache Iceberg table, format version 2, with the columns it writes and identity partitions on its partition keys (CloudFormation, AWS::Glue::Table IcebergInput: MetadataOperation CREATE, IcebergTableInput)', () => {
    const icebergType: Record<string, string> = { string: 'string', bigint: 'long', int: 'int', double: 'double' };
    for (const table of readDerivedTables()) {
      const job = required(
        loadJobs().find((j) => j.target === table.name),
        `the job that writes ${table.name}`,
      );
      const { Properties } = resource<GlueTable>(`${pascal(table.name)}Table`);
      const all = [...table.columns, ...table.partitionKeys];
      const location = { 'Fn::Sub': `s3://\${DataBucket}/${job.location}` };
      expect(Properties.DatabaseName).toEqual(ref('GlueDatabase'));
      // Hidden partitioning: no Hive PartitionKeys (Glue refuses them on an Iceberg table).
      expect(Properties.TableInput).toEqual({
        Name: table.name,
        Description: expect.any(String),
        TableType: 'EXTERNAL_TABLE',
        StorageDescriptor: { Columns: all.map((c) => ({ Name: c.name, Type: c.type })), Location: location },
      });
      const fields = all.map((c, i) => ({ Id: i + 1, Name: c.name, Type: icebergType[c.type], Required: false }));
      expect(Properties.OpenTableFormatInput).toEqual({
        IcebergInput: {
          MetadataOperation: 'CREATE',
          Version: '2',
          IcebergTableInput: {
            Location: location,
            Schema: { Type: 'struct', Fields: fields },
            PartitionSpec: {
              SpecId: 0,
              Fields: job.partitionKeys.map((k, i) => ({
                SourceId: fields.find((f) => f.Name === k)!.Id,
                FieldId: 1000 + i,
                Name: k,
                Transform: 'identity',
              })),
            },
            Properties: { 'format-version': '2' },
          },
        },
      });
      expect(resource<GlueJob>(`${pascal(job.name)}Job`).Properties.DefaultArguments['--target_table']).toBe(
        table.name,
      );
    }
  });

  it('enables Iceberg on every job as AWS documents it for Glue 5.1: --datalake-formats iceberg and one --conf of the Glue catalog glue_catalog with S3FileIO (AWS Glue guide, "Using the Iceberg framework in AWS Glue")', () => {
    for (const job of loadJobs()) {
      const args = resource<GlueJob>(`${pascal(job.name)}Job`).Properties.DefaultArguments;
      expect(args['--datalake-formats']).toBe('iceberg');
      expect(args['--conf']).toEqual({
        'Fn::Sub': [
          'spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions',
          'spark.sql.catalog.glue_catalog=org.apache.iceberg.spark.SparkCatalog',
          'spark.sql.catalog.glue_catalog.warehouse=s3://${DataBucket}/',
          'spark.sql.catalog.glue_catalog.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog',
          'spark.sql.catalog.glue_catalog.io-impl=org.apache.iceberg.aws.s3.S3FileIO',
        ].join(' --conf '),
      });
    }
  });

  it('creates five jobs that run glue/run_sql_job.py with their own SQL, target and partitions', () => {
    // The runner and the SQL at keys of their content's hash in the deployment bucket (deploy/glue-assets.js).
    const key = (file: string) =>
      `glue-assets/${createHash('sha256').update(readFileSync(file)).digest('hex')}/${path.basename(file)}`;
    const jobs = ofType('AWS::Glue::Job');
    expect(jobs).toHaveLength(JOB_NAMES.length);
    for (const job of loadJobs()) {
      const p = resource<GlueJob>(`${pascal(job.name)}Job`).Properties;
      expect(p.Name).toEqual({ 'Fn::Sub': `\${AWS::StackName}-${job.name}` });
      expect(p).toMatchObject({
        GlueVersion: '5.1',
        WorkerType: 'G.1X',
        NumberOfWorkers: 2,
        Timeout: 30,
        ExecutionProperty: { MaxConcurrentRuns: 1 },
        JobRunQueuingEnabled: true,
        Role: arnOf('GlueJobRole'),
        Command: {
          Name: 'glueetl',
          PythonVersion: '3',
          ScriptLocation: {
            'Fn::Sub': `s3://\${ServerlessDeploymentBucket}/${key(path.join(ROOT, 'glue', 'run_sql_job.py'))}`,
          },
        },
      });
      const args = p.DefaultArguments;
      expect(args).toMatchObject({
        '--job-language': 'python',
        '--enable-observability-metrics': 'true',
        '--enable-glue-datacatalog': 'true',
        '--sql_bucket': ref('ServerlessDeploymentBucket'),
        '--sql_key': key(path.join(ROOT, 'glue', 'jobs', `${job.name}.sql`)),
        '--database': ref('GlueDatabase'),
        '--bucket': ref('DataBucket'),
        '--target_table': job.target,
        '--target_prefix': job.location,
        '--pii_salt_parameter': ref('PiiSaltParameterName'),
        '--consent_policy': ref('ConsentPolicy'),
      });
      expect(args['--partition_keys']).toBe(job.partitionKeys.length ? job.partitionKeys.join(',') : undefined);
      // The queries its "-- Diagnostics:" header names, which the runner counts after the SQL.
      const diagnostics = job.diagnostics.map((d) => key(path.join(ROOT, 'glue', 'queries', `${d.name}.sql`)));
      expect(args['--diagnostic_keys']).toBe(diagnostics.length ? diagnostics.join(',') : undefined);
      // Glue 5 logs in real time without them: the continuous-logging options are for Glue 4.0 and earlier.
      expect(Object.keys(args).filter((a) => /continuous/.test(a))).toEqual([]);
    }
  });

  it('packages the runner and each SQL file under the key the jobs name, for the deploy to upload', () => {
    const manifest = JSON.parse(readFileSync(path.join(outDir, 'glue-assets', 'manifest.json'), 'utf8')) as {
      key: string;
      file: string;
    }[];
    const named = ofType<GlueJob>('AWS::Glue::Job').flatMap(([, j]) => [
      String(subOf(j.Properties.Command.ScriptLocation)).replace('s3://${ServerlessDeploymentBucket}/', ''),
      j.Properties.DefaultArguments['--sql_key'] as string,
      ...((j.Properties.DefaultArguments['--diagnostic_keys'] as string | undefined) ?? '').split(',').filter(Boolean),
    ]);
    expect(manifest.map((a) => a.key).sort()).toEqual([...new Set(named)].sort());
    expect(manifest.map((a) => a.key)).toContainEqual(expect.stringMatching(/\/email_case_mismatches\.sql$/));
    for (const { key, file } of manifest) {
      const name = key.split('/').pop()!;
      const folder = JOB_NAMES.some((j) => `${j}.sql` === name) ? 'jobs' : 'queries';
      const source = name.endsWith('.py') ? path.join(ROOT, 'glue', name) : path.join(ROOT, 'glue', folder, name);
      expect(readFileSync(path.join(outDir, 'glue-assets', file), 'utf8')).toBe(readFileSync(source, 'utf8'));
    }
  });

  it('takes the PII salt parameter by name: no salt value anywhere in the template', () => {
    expect(template.Parameters.PiiSaltParameterName?.Default).toBe(`/stedi-lakehouse/${STAGE}/pii-salt`);
    expect(JSON.stringify(template)).not.toMatch(/pii_salt"?\s*:\s*"[^$]/i);
  });
});
