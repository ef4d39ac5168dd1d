'use strict';
/**
 * CloudFormation derived from the repository's single sources, loaded by serverless.yml with
 * ${file(./deploy/glue-resources.js):<export>}:
 *
 * - the three landing tables from their DDL in glue/tables/ (src/sql/ddl.ts), column comments
 *   included: the Glue runner reads "required" from them; and their validated copies' tables (Parquet);
 * - the five tables the jobs write, with the columns glue/tables/derived_tables.json declares
 *   (src/definition/derived-tables.ts), so each exists with its columns before the first run;
 * - the five Glue jobs from src/definition/pipeline.ts (names, targets, partition keys), all running
 *   glue/run_sql_job.py with their own SQL file, both at content-addressed keys of the deployment bucket
 *   (deploy/glue-assets.js);
 * - the values that name those jobs elsewhere: the state machine's definition substitutions, the
 *   job ARNs its role may start, the EventBridge rule's job names and the dashboard;
 * - the Glue role's S3 access, prefix by prefix, from the key layout (src/definition/layout.ts) and the jobs' targets.
 *
 * Everything else is plain YAML in deploy/resources/.
 */
const { jsonLinesTableResource, parquetTableResource, icebergTableResource, pascal } = require('./catalog-tables');
const { ASSETS_BUCKET_LOGICAL_ID, queryAsset, requireBuilt, scriptAsset, sqlAsset } = require('./glue-assets');

const GLUE_JOB = {
  GlueVersion: '5.1', // the latest (Spark 3.5.6); CloudFormation takes the version as a string
  WorkerType: 'G.1X',
  NumberOfWorkers: 2,
  // A run's own running time, defined here only: the state machine's Glue tasks pass no Timeout, so their
  // runs take this one, as runs started by hand do. The tasks' TimeoutSeconds (statemachines/pipeline.asl.json)
  // leaves room above it for a whole run queued ahead (tests/unit/statemachine.test.ts checks the relation).
  TimeoutMinutes: 30,
};

/**
 * The Glue metrics the dashboard shows, as "Monitoring with AWS Glue Observability metrics" names them, with
 * the dimensions Glue publishes them under besides JobName and JobRunId (ALL: every run): its Type and its
 * ObservabilityGroup. Namespace Glue, every 30 s while a run with --enable-observability-metrics runs.
 */
const GLUE_OBSERVABILITY_METRICS = {
  'glue.driver.workerUtilization': { Type: 'gauge', ObservabilityGroup: 'resource_utilization' },
  'glue.ALL.memory.total.used.percentage': { Type: 'gauge', ObservabilityGroup: 'resource_utilization' },
  'glue.succeed.ALL': { Type: 'count', ObservabilityGroup: 'error' },
  'glue.error.ALL': { Type: 'count', ObservabilityGroup: 'error' },
};

/** CloudFormation logical id of a job's AWS::Glue::Job, e.g. CustomerLandingToTrustedJob. */
const jobLogicalId = (job) => `${pascal(job)}Job`;
/** Logical id of a landing table's AWS::Glue::Table, e.g. CustomerLandingTable. */
const tableLogicalId = (table) => `${pascal(table)}Table`;

function jobs() {
  return requireBuilt('definition/pipeline.js').loadJobs();
}

function landingTables() {
  const { readLandingTables } = requireBuilt('definition/ddl.js');
  const { glueDir } = requireBuilt('project.js');
  return Object.values(readLandingTables(glueDir()));
}

function tableResource(table) {
  if (!table.location.startsWith('s3://${bucket}/')) {
    throw new Error(`glue/tables/${table.name}.sql: LOCATION must start with s3://\${bucket}/, got ${table.location}`);
  }
  return jsonLinesTableResource({
    name: table.name,
    description: `Landing JSON lines; DDL in glue/tables/${table.name}.sql`,
    columns: table.columns,
    location: table.location.replace('${bucket}', '${DataBucket}'),
    // For Athena over landing: a malformed line reads as nulls instead of failing the query.
    // The Glue jobs do not use the SerDe: they check every line and quarantine the bad ones.
    serdeParameters: { 'ignore.malformed.json': 'TRUE' },
  });
}

function derivedTables() {
  return requireBuilt('definition/derived-tables.js').readDerivedTables();
}

/**
 * A table a job writes: an Apache Iceberg table, defined before any job runs, so a job reading it while it has
 * no rows yet binds it with these columns. Each job replaces (or appends to) it in one Iceberg commit through
 * Iceberg's Glue catalog (glue/run_sql_job.py), so Athena readers see the previous snapshot or the new one.
 */
function derivedTableResource(table) {
  const job = jobs().find((j) => j.target === table.name);
  return icebergTableResource({
    name: table.name,
    description: `Written by glue/jobs/${job.name}.sql; columns in glue/tables/derived_tables.json`,
    columns: table.columns,
    partitionKeys: table.partitionKeys,
    location: `s3://\${DataBucket}/${table.location}`,
  });
}

/**
 * A landing table's validated copy, <dataset>/validated/: each landing file's valid records as Parquet, typed as
 * the landing DDL says, with the landing key of its file (source_file); kept by the Glue runner.
 */
function validatedTableResource(table) {
  const { datasetOfLandingTable, validatedPrefix } = requireBuilt('definition/layout.js');
  const dataset = datasetOfLandingTable(table.name);
  return parquetTableResource({
    name: `${dataset}_validated`,
    description: `Each ${table.name} landing file's valid records, checked once; kept by glue/run_sql_job.py`,
    columns: [
      { name: 'source_file', type: 'string', comment: 'the landing key of the file the record came from' },
      ...table.columns,
    ],
    location: `s3://\${DataBucket}/${validatedPrefix(dataset)}`,
  });
}

/** The Iceberg catalog of the derived tables (ICEBERG_CATALOG in glue/run_sql_job.py). */
const ICEBERG_CATALOG = 'glue_catalog';

/**
 * The job's --conf value: Glue takes one --conf key, the further settings joined by " --conf " (AWS Glue
 * guide, "Using the Iceberg framework in AWS Glue", "Enabling the Iceberg framework").
 */
function icebergSparkConf() {
  const c = `spark.sql.catalog.${ICEBERG_CATALOG}`;
  return [
    'spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions',
    `${c}=org.apache.iceberg.spark.SparkCatalog`,
    `${c}.warehouse=s3://\${DataBucket}/`,
    `${c}.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog`,
    `${c}.io-impl=org.apache.iceberg.aws.s3.S3FileIO`,
  ].join(' --conf ');
}

function jobResource(job) {
  const args = {
    '--job-language': 'python',
    // No --enable-continuous-cloudwatch-log: Glue 5 logs every job in real time, the runner's stdout to
    // /aws-glue/jobs/output and Spark's and Glue's own to /aws-glue/jobs/error (AWS Glue guide, "Logging
    // for AWS Glue jobs"); the continuous-logging options are for Glue 4.0 and earlier.
    // Glue's observability metrics (AWS Glue guide, "Monitoring with AWS Glue Observability metrics", Glue 4.0
    // and later): the names the dashboard shows (GLUE_OBSERVABILITY_METRICS). The legacy job-profiling metrics
    // of --enable-metrics (glue.driver.aggregate.*) are not what Glue 5 publishes, and nothing here reads them.
    '--enable-observability-metrics': 'true',
    '--enable-glue-datacatalog': 'true',
    // Apache Iceberg as AWS documents it for Glue 5.1 (AWS Glue guide, "Using the Iceberg framework in AWS
    // Glue"): the derived tables are Iceberg tables, written through the Glue catalog glue_catalog.
    '--datalake-formats': 'iceberg',
    '--conf': { 'Fn::Sub': icebergSparkConf() },
    // The runner keeps its own validated copy of landing (glue/run_sql_job.py): bookmarks miss replaced and
    // deleted files.
    '--job-bookmark-option': 'job-bookmark-disable',
    // The SQL's content-addressed key in the deployment bucket, uploaded before the stack update.
    '--sql_bucket': { Ref: ASSETS_BUCKET_LOGICAL_ID },
    '--sql_key': sqlAsset(job.name).key,
    '--database': { Ref: 'GlueDatabase' },
    '--bucket': { Ref: 'DataBucket' },
    '--target_table': job.target,
    '--target_prefix': job.location,
    // The tables the SQL reads, as its "-- Reads:" header declares them (src/definition/pipeline.ts): the runner
    // binds these.
    '--input_tables': job.reads.join(','),
    '--pii_salt_parameter': { Ref: 'PiiSaltParameterName' },
    // The state machine passes its own --consent_policy and --run_id; this is for runs started by hand.
    '--consent_policy': { Ref: 'ConsentPolicy' },
  };
  if (job.partitionKeys.length > 0) args['--partition_keys'] = job.partitionKeys.join(',');
  // The queries its "-- Diagnostics:" header names (src/definition/pipeline.ts): the runner counts them after the SQL.
  if (job.diagnostics.length > 0)
    args['--diagnostic_keys'] = job.diagnostics.map((d) => queryAsset(d.name).key).join(',');
  return {
    Type: 'AWS::Glue::Job',
    Properties: {
      Name: { 'Fn::Sub': `\${AWS::StackName}-${job.name}` },
      Description: `Writes ${job.target} (${job.location}) with glue/jobs/${job.name}.sql`,
      Role: { 'Fn::GetAtt': ['GlueJobRole', 'Arn'] },
      Command: {
        Name: 'glueetl',
        PythonVersion: '3',
        ScriptLocation: { 'Fn::Sub': `s3://\${${ASSETS_BUCKET_LOGICAL_ID}}/${scriptAsset().key}` },
      },
      GlueVersion: GLUE_JOB.GlueVersion,
      WorkerType: GLUE_JOB.WorkerType,
      NumberOfWorkers: GLUE_JOB.NumberOfWorkers,
      Timeout: GLUE_JOB.TimeoutMinutes,
      MaxRetries: 0, // the state machine decides what is retried
      ExecutionProperty: { MaxConcurrentRuns: 1 },
      JobRunQueuingEnabled: true,
      DefaultArguments: args,
    },
  };
}

/**
 * How long the derived Iceberg tables keep their snapshots, and how old an orphan file (one no snapshot names, e.g.
 * left by a job killed before its commit) must be before it is deleted. Glue's table optimizers do both (AWS Glue
 * guide, "Optimizing Iceberg tables": https://docs.aws.amazon.com/glue/latest/dg/table-optimizers.html):
 *
 * - `retention` (AWS::Glue::TableOptimizer RetentionConfiguration.IcebergConfiguration): snapshots older than
 *   the stack parameter SnapshotRetentionDays expire, the newest one always stays (NumberOfSnapshotsToRetain), and
 *   the files only expired snapshots named are deleted (CleanExpiredFiles);
 * - `orphan_file_deletion` (OrphanFileDeletionConfiguration.IcebergConfiguration.OrphanFileRetentionPeriodInDays):
 *   Glue's default of 3 days ("Enabling orphan file deletion"), far beyond a job's 30-minute timeout, so a running
 *   job's uncommitted files are never taken for orphans.
 */
const SNAPSHOTS_ALWAYS_KEPT = 1;
const ORPHAN_FILE_RETENTION_DAYS = 3;

/** The optimizers' two roles, one each: orphan deletion needs neither a write nor glue:UpdateTable. */
const TABLE_OPTIMIZERS = {
  retention: { role: 'SnapshotRetentionRole', logGroup: '/aws-glue/iceberg-retention/logs' },
  orphan_file_deletion: { role: 'OrphanFileDeletionRole', logGroup: '/aws-glue/iceberg-orphan-file-deletion/logs' },
};

/** Logical id of a derived table's optimizer, e.g. CustomerTrustedRetentionOptimizer. */
const optimizerLogicalId = (table, type) => `${pascal(table)}${pascal(type)}Optimizer`;

function tableOptimizerResource(table, type) {
  const configuration = {
    Enabled: true,
    RoleArn: { 'Fn::GetAtt': [TABLE_OPTIMIZERS[type].role, 'Arn'] },
  };
  if (type === 'retention')
    configuration.RetentionConfiguration = {
      IcebergConfiguration: {
        SnapshotRetentionPeriodInDays: { Ref: 'SnapshotRetentionDays' },
        NumberOfSnapshotsToRetain: SNAPSHOTS_ALWAYS_KEPT,
        CleanExpiredFiles: true,
      },
    };
  else
    configuration.OrphanFileDeletionConfiguration = {
      IcebergConfiguration: { OrphanFileRetentionPeriodInDays: ORPHAN_FILE_RETENTION_DAYS },
    };
  return {
    Type: 'AWS::Glue::TableOptimizer',
    // The table must exist (and be an Iceberg table) before its optimizer.
    DependsOn: tableLogicalId(table),
    Properties: {
      CatalogId: { Ref: 'AWS::AccountId' },
      DatabaseName: { Ref: 'GlueDatabase' },
      TableName: table,
      Type: type,
      TableOptimizerConfiguration: configuration,
    },
  };
}

/**
 * An optimizer's role, as "Table optimization prerequisites" lists its permissions
 * (https://docs.aws.amazon.com/glue/latest/dg/optimization-prerequisites.html), narrowed to the five derived tables: their S3 prefixes (data and metadata/), their
 * Catalog entries, and the optimizer's own log group. "The orphan file deletion optimizer doesn't require the
 * glue:updateTable or s3:putObject permissions": that role has neither. Glue assumes it (glue.amazonaws.com).
 */
function tableOptimizerRole(type) {
  const tables = derivedTables();
  const arn = (rest) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:${rest}` });
  const glue = (rest) => arn(`glue:\${AWS::Region}:\${AWS::AccountId}:${rest}`);
  const retention = type === 'retention';
  const logGroup = TABLE_OPTIMIZERS[type].logGroup;
  return {
    Type: 'AWS::IAM::Role',
    Properties: {
      AssumeRolePolicyDocument: {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'glue.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      },
      Policies: [
        {
          PolicyName: `iceberg-${type.replace(/_/g, '-')}`,
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Sid: 'TheDerivedTablesFiles',
                Effect: 'Allow',
                Action: retention
                  ? ['s3:GetObject', 's3:PutObject', 's3:DeleteObject']
                  : ['s3:GetObject', 's3:DeleteObject'],
                Resource: tables.map((t) => ({ 'Fn::Sub': `\${DataBucket.Arn}/${t.location.replace(/\/+$/, '')}/*` })),
              },
              {
                // Listing is what finds orphan files and expired snapshots' files; only under the tables' prefixes.
                Sid: 'ListTheDerivedTables',
                Effect: 'Allow',
                Action: 's3:ListBucket',
                Resource: { 'Fn::GetAtt': ['DataBucket', 'Arn'] },
                Condition: {
                  StringLike: {
                    's3:prefix': tables.flatMap((t) => {
                      const prefix = t.location.replace(/\/+$/, '');
                      return [prefix, `${prefix}/*`];
                    }),
                  },
                },
              },
              {
                // Reads the current metadata_location; the retention optimizer commits the expiry (UpdateTable).
                Sid: 'TheDerivedTablesCatalogEntries',
                Effect: 'Allow',
                Action: retention ? ['glue:GetTable', 'glue:UpdateTable'] : ['glue:GetTable'],
                Resource: [
                  glue('catalog'),
                  glue('database/${GlueDatabase}'),
                  ...tables.map((t) => glue(`table/\${GlueDatabase}/${t.name}`)),
                ],
              },
              {
                Sid: 'WriteOptimizerLogs',
                Effect: 'Allow',
                Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
                Resource: [
                  arn(`logs:\${AWS::Region}:\${AWS::AccountId}:log-group:${logGroup}`),
                  arn(`logs:\${AWS::Region}:\${AWS::AccountId}:log-group:${logGroup}:*`),
                ],
              },
            ],
          },
        },
      ],
    },
  };
}

/**
 * The derived tables' snapshot retention and orphan file deletion, and the optimizers' two roles: { Resources }.
 * Apart from resources(), which the Glue engine's local stack stands in for whole (src/glue-engine/stack.ts):
 * moto has no table optimizers, and the Glue engine keeps every snapshot.
 */
function tableOptimizers() {
  const out = {};
  for (const type of Object.keys(TABLE_OPTIMIZERS)) {
    out[TABLE_OPTIMIZERS[type].role] = tableOptimizerRole(type);
    for (const table of derivedTables())
      out[optimizerLogicalId(table.name, type)] = tableOptimizerResource(table.name, type);
  }
  return { Resources: out };
}

/** The landing tables, their validated copies' tables, the derived tables and the Glue jobs: { Resources }. */
function resources() {
  const out = {};
  for (const table of landingTables()) {
    out[tableLogicalId(table.name)] = tableResource(table);
    out[tableLogicalId(table.name.replace(/_landing$/, '_validated'))] = validatedTableResource(table);
  }
  for (const table of derivedTables()) out[tableLogicalId(table.name)] = derivedTableResource(table);
  for (const job of jobs()) out[jobLogicalId(job.name)] = jobResource(job);
  return { Resources: out };
}

/** DefinitionSubstitutions of statemachines/pipeline.asl.json: ${CustomerLandingToTrustedJobName}, … */
function definitionSubstitutions() {
  const subs = {};
  for (const job of jobs()) subs[`${pascal(job.name)}JobName`] = { Ref: jobLogicalId(job.name) };
  subs.AlertsTopicArn = { Ref: 'AlertsTopic' };
  subs.ConsentPolicy = { Ref: 'ConsentPolicy' };
  subs.LockTableName = { Ref: 'PipelineLockTable' };
  // The data checks: their workgroup, database and SQL (deploy/operate-resources.js).
  Object.assign(subs, require('./operate-resources').checkSubstitutions());
  return subs;
}

/** The ARNs of the five jobs (the state machine role may start, watch and stop only these). */
function jobArns() {
  return jobs().map((job) => ({
    'Fn::Sub': `arn:\${AWS::Partition}:glue:\${AWS::Region}:\${AWS::AccountId}:job/\${${jobLogicalId(job.name)}}`,
  }));
}

/** The five job names, for the EventBridge rule on Glue Job State Change. */
function jobNames() {
  return jobs().map((job) => ({ Ref: jobLogicalId(job.name) }));
}

/**
 * The data widgets: the rows each job read and wrote and the lines it quarantined (the metrics
 * glue/run_sql_job.py publishes), and the state of the data alarms (deploy/operate-resources.js).
 */
function dataWidgets(widget) {
  const { METRICS_NAMESPACE, landingReaders, dataAlarmArns } = require('./operate-resources');
  const job = (name) => `\${${jobLogicalId(name)}}`;
  return [
    widget(
      0,
      18,
      'Rows in, per job and input table',
      jobs().flatMap((j) =>
        j.reads.map((t) => [
          METRICS_NAMESPACE,
          'RowsIn',
          'Job',
          job(j.name),
          'Table',
          t,
          { label: `${j.name} <- ${t}` },
        ]),
      ),
      { stat: 'Maximum' },
    ),
    widget(
      12,
      18,
      'Rows out, per table',
      jobs().map((j) => [METRICS_NAMESPACE, 'RowsOut', 'Job', job(j.name), 'Table', j.target, { label: j.target }]),
      { stat: 'Maximum' },
    ),
    widget(
      0,
      24,
      'Quarantined lines, per dataset: in all, and new in a run',
      landingReaders().flatMap((r) => [
        [
          METRICS_NAMESPACE,
          'QuarantinedLines',
          'Job',
          job(r.job),
          'Dataset',
          r.dataset,
          { label: `${r.dataset} in all` },
        ],
        [
          METRICS_NAMESPACE,
          'NewQuarantinedLines',
          'Job',
          job(r.job),
          'Dataset',
          r.dataset,
          { label: `${r.dataset} new` },
        ],
      ]),
      { stat: 'Maximum' },
    ),
    {
      type: 'alarm',
      x: 12,
      y: 24,
      width: 12,
      height: 6,
      properties: { title: 'Data alarms', alarms: dataAlarmArns() },
    },
  ];
}

/** One Glue observability metric of one job, every run (JobRunId ALL), for a dashboard widget. */
function glueMetric(name, job, extra = {}) {
  const dims = GLUE_OBSERVABILITY_METRICS[name];
  if (!dims)
    throw new Error(`${name} is not one of the Glue observability metrics listed in GLUE_OBSERVABILITY_METRICS`);
  return [
    'Glue',
    name,
    'JobName',
    `\${${jobLogicalId(job)}}`,
    'JobRunId',
    'ALL',
    'Type',
    dims.Type,
    'ObservabilityGroup',
    dims.ObservabilityGroup,
    { label: job, ...extra },
  ];
}

/** The Glue widgets: per job, the share of its workers used and of their memory, and runs succeeded and failed. */
function glueWidgets(widget) {
  return [
    widget(
      0,
      30,
      'Glue: workers used and executor memory used (%), per job',
      jobs().flatMap((j) => [
        glueMetric('glue.driver.workerUtilization', j.name, { label: `${j.name} workers` }),
        glueMetric('glue.ALL.memory.total.used.percentage', j.name, { label: `${j.name} memory` }),
      ]),
      { stat: 'Maximum' },
    ),
    widget(
      12,
      30,
      'Glue: job runs succeeded and failed',
      jobs().flatMap((j) => [
        glueMetric('glue.succeed.ALL', j.name, { label: `${j.name} succeeded` }),
        glueMetric('glue.error.ALL', j.name, { label: `${j.name} failed` }),
      ]),
    ),
  ];
}

/** The CloudWatch dashboard body: executions, files received, batches deferred, queues, data, Glue jobs. */
function dashboardBody() {
  const region = '${AWS::Region}';
  const stateMachine = ['StateMachineArn', '${PipelineStateMachine}'];
  const landing = ['service', 'on-landing'];
  const widget = (x, y, title, metrics, extra = {}) => ({
    type: 'metric',
    x,
    y,
    width: 12,
    height: 6,
    properties: { title, region, view: 'timeSeries', stacked: false, period: 300, stat: 'Sum', metrics, ...extra },
  });
  const body = {
    widgets: [
      widget(0, 0, 'Pipeline executions', [
        ['AWS/States', 'ExecutionsStarted', ...stateMachine],
        ['.', 'ExecutionsSucceeded', ...stateMachine],
        ['.', 'ExecutionsFailed', ...stateMachine],
        ['.', 'ExecutionsTimedOut', ...stateMachine],
        ['.', 'ExecutionsAborted', ...stateMachine],
      ]),
      widget(
        12,
        0,
        'Execution time (ms)',
        [['AWS/States', 'ExecutionTime', ...stateMachine, { label: 'whole execution' }]],
        {
          stat: 'Maximum',
        },
      ),
      widget(0, 6, 'Files received (created or removed)', [
        ['StediLakehouse', 'FilesReceived', ...landing],
        ['.', 'FilesRemoved', ...landing],
        ['.', 'FilesIgnored', ...landing],
        ['.', 'ExecutionsStarted', ...landing],
      ]),
      widget(12, 6, 'Batches deferred (an execution was running)', [['StediLakehouse', 'BatchesDeferred', ...landing]]),
      widget(
        0,
        12,
        'Landing queues (messages visible)',
        [
          [
            'AWS/SQS',
            'ApproximateNumberOfMessagesVisible',
            'QueueName',
            '${LandingQueue.QueueName}',
            { label: 'landing' },
          ],
          ['.', '.', '.', '${LandingDeadLetterQueue.QueueName}', { label: 'dead-letter' }],
        ],
        { stat: 'Maximum' },
      ),
      widget(12, 12, 'Landing Lambda', [
        ['AWS/Lambda', 'Invocations', 'FunctionName', '${OnLandingLambdaFunction}'],
        ['.', 'Errors', '.', '.'],
        ['.', 'Throttles', '.', '.'],
      ]),
      ...dataWidgets(widget),
      ...glueWidgets(widget),
    ],
  };
  return { 'Fn::Sub': JSON.stringify(body) };
}

/**
 * The Glue job role's access to the data bucket: a PolicyDocument with exactly what the requests S3A (Glue 5.1's
 * S3 connector) and the runner send ask of S3. tests/python/test_glue_jobs_on_spark.py records those requests
 * for every job run on Spark with S3A against the moto server, checks each is allowed here, and checks each
 * grant here is used by one of them:
 *
 * - the landing files are read (spark.read.text: a HEAD, then a GET);
 * - each prefix a job writes, its target and its dataset's validated copy and quarantine, is read, written and
 *   emptied: purge_s3_path lists and deletes a target, the runner lists the validated copy and quarantine, reads
 *   and writes the manifest and deletes the batches it no longer names, Spark's committer writes under
 *   <prefix>/_temporary/, copies into <prefix>/ (large files by multipart upload and part copy) and deletes
 *   what it copied, and the next job reads it;
 * - S3A tells a file from a directory by a HEAD of the bare key (customer/trusted), then a listing of
 *   "customer/trusted/"; a HEAD needs s3:GetObject on the key probed. Its directory markers are "<dir>/" keys
 *   (Hadoop, "Controlling the S3A Directory Marker Behavior": "mkdir(s3a://bucket/a/b) will create a new marker
 *   object a/b/"), and it deletes the parents' markers after creating a file (DeleteParentDirectoryMarkers).
 *   Hadoop's S3A policy example grants the same three resources for a path: "/users/alice", "/users/alice/"
 *   and "/users/alice/*" ("Restricting S3A operations through AWS Policies").
 *
 * s3:ListBucket has no s3:prefix condition: S3 answers a HEAD of a missing key with 404 only to a caller
 * allowed s3:ListBucket on the bucket, and a HEAD has no prefix, so a prefix-limited grant makes every probe
 * a 403 (AccessDenied) and the job fails. Listing shows key names only.
 */
function lakeAccessPolicy() {
  const { DATASETS, TABLE_BUILDS_PREFIX, landingPrefix, quarantinePrefix, validatedPrefix } =
    requireBuilt('definition/layout.js');
  const trimmed = (prefix) => prefix.replace(/\/+$/, '');
  const written = [
    ...new Set(
      [...jobs().map((j) => j.location), ...DATASETS.map(quarantinePrefix), ...DATASETS.map(validatedPrefix)].map(
        trimmed,
      ),
    ),
  ];
  const directories = [];
  for (const prefix of written) {
    const parts = prefix.split('/');
    for (let n = parts.length; n > 0; n -= 1) {
      const directory = parts.slice(0, n).join('/');
      if (!directories.includes(directory)) directories.push(directory);
    }
  }
  const objects = (keys) => keys.map((key) => ({ 'Fn::Sub': `\${DataBucket.Arn}/${key}` }));
  return {
    Version: '2012-10-17',
    Statement: [
      {
        // s3:GetBucketLocation: on AWS, with no endpoint configured, the S3 client may ask a bucket's region
        // (Hadoop's S3A role policies grant it for every bucket operation); the runs against moto, with an
        // endpoint set, never send it, so tests/python/test_glue_jobs_on_spark.py exempts it by name.
        Sid: 'ListTheDataBucket',
        Effect: 'Allow',
        Action: ['s3:ListBucket', 's3:GetBucketLocation'],
        Resource: { 'Fn::GetAtt': ['DataBucket', 'Arn'] },
      },
      {
        Sid: 'ReadLanding',
        Effect: 'Allow',
        Action: ['s3:GetObject'],
        Resource: objects(DATASETS.map((d) => `${landingPrefix(d)}*`)),
      },
      {
        // s3:AbortMultipartUpload: S3A aborts the multipart upload of a file whose write fails part-way (a task
        // attempt that dies while writing a file larger than a part); Hadoop lists it among S3A's write
        // permissions ("Restricting S3A operations through AWS Policies"). The test's runs never fail mid-upload,
        // so it is exempt there by name.
        Sid: 'ReplaceTablesAndQuarantine',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        Resource: objects(written.map((p) => `${p}/*`)),
      },
      {
        Sid: 'ProbeDirectories',
        Effect: 'Allow',
        Action: ['s3:GetObject'],
        Resource: objects(directories),
      },
      {
        // S3A, Glue 5.1's S3 connector, deletes the marker objects of a file's parent directories ("customer/",
        // "customer/trusted/") after writing or renaming a file into them: Hadoop's "Controlling the S3A
        // Directory Marker Behavior", retention "delete" by default in hadoop-aws 3.3. The keys below a written
        // prefix are in ReplaceTablesAndQuarantine; these are the parents'. Seen in the requests the jobs send
        // (tests/python/test_glue_jobs_on_spark.py).
        Sid: 'DeleteParentDirectoryMarkers',
        Effect: 'Allow',
        Action: ['s3:DeleteObject'],
        Resource: objects(directories.map((d) => `${d}/`)),
      },
      {
        // The build log (src/definition/layout.ts TABLE_BUILDS_PREFIX): each job reads its inputs' and its target's
        // record and replaces its target's (boto3 GET and PUT; a missing record is a 404 thanks to ListBucket).
        Sid: 'RecordTableBuilds',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject'],
        Resource: objects([`${TABLE_BUILDS_PREFIX}*`]),
      },
    ],
  };
}

module.exports = {
  resources,
  tableOptimizers,
  definitionSubstitutions,
  jobArns,
  jobNames,
  dashboardBody,
  jobLogicalId,
  tableLogicalId,
  lakeAccessPolicy,
  optimizerLogicalId,
  TABLE_OPTIMIZERS,
  GLUE_OBSERVABILITY_METRICS,
  GLUE_JOB,
};
