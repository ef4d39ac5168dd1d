'use strict';
/**
 * CloudFormation for verifying and operating the deployed lake, derived from the repository's single
 * sources and loaded by serverless.yml with ${file(./deploy/operate-resources.js):<export>}:
 *
 * - the Catalog tables over the files the jobs write beside their tables (each dataset's quarantine,
 *   the table build log), from src/definition/support-tables.ts, so that Athena reads them;
 * - an Athena named query per data check of glue/checks/ and per saved query of glue/queries/;
 * - the data alarms on the metrics each Glue job publishes (glue/run_sql_job.py): a run that
 *   quarantines lines of the files it checked, a curated table written empty.
 *
 * The workgroup, its permissions and the CLI user's policy are plain YAML in deploy/resources/athena.yml.
 */
const { jsonLinesTableResource, pascal } = require('./catalog-tables');
const { requireBuilt } = require('./glue-assets');

// deploy/glue-resources.js requires this file too (the dashboard): its exports are read when used.
const jobLogicalId = (job) => require('./glue-resources').jobLogicalId(job);

/** The namespace of the jobs' data metrics (glue/run_sql_job.py METRICS_NAMESPACE). */
const METRICS_NAMESPACE = 'StediLakehouse';

function supportTableResource(table) {
  return jsonLinesTableResource({
    name: table.name,
    description: table.description,
    columns: table.columns,
    location: `s3://\${DataBucket}/${table.location}`,
  });
}

/**
 * A query's SQL for the stack's database: a check that names the database (${GlueDatabaseName}, see
 * DATABASE_PLACEHOLDER in src/checks/definitions.ts) gets it through Fn::Sub, the same name bound to the
 * GlueDatabase. `escape` prepares the text for where it goes (a definition substitution wants it JSON-escaped).
 */
function sqlForStack(sql, escape = (text) => text) {
  const { DATABASE_PLACEHOLDER } = requireBuilt('checks/definitions.js');
  if (!sql.includes(DATABASE_PLACEHOLDER)) return escape(sql);
  return { 'Fn::Sub': [escape(sql), { GlueDatabaseName: { Ref: 'GlueDatabase' } }] };
}

function namedQueryResource(query, kind) {
  return {
    Type: 'AWS::Athena::NamedQuery',
    Properties: {
      Name: query.name,
      // Athena keeps at most 1024 characters of a description.
      Description: `${kind}: ${query.summary}`.slice(0, 1024),
      Database: { Ref: 'GlueDatabase' },
      WorkGroup: { Ref: 'AthenaWorkGroup' },
      QueryString: sqlForStack(query.sql),
    },
  };
}

/** The jobs that read a landing table, with its dataset: where quarantined lines come from. */
function landingReaders() {
  const { loadJobs } = requireBuilt('definition/pipeline.js');
  return loadJobs().flatMap((job) =>
    job.reads
      .filter((t) => t.endsWith('_landing'))
      .map((t) => ({ job: job.name, dataset: t.slice(0, -'_landing'.length) })),
  );
}

/** The jobs that write a curated table. */
function curatedWriters() {
  const { loadJobs } = requireBuilt('definition/pipeline.js');
  return loadJobs().filter((job) => job.target.endsWith('_curated'));
}

function alarmResources() {
  const alarms = {};
  const readers = landingReaders();
  alarms.QuarantinedLinesAlarm = {
    Type: 'AWS::CloudWatch::Alarm',
    Properties: {
      AlarmName: { 'Fn::Sub': '${AWS::StackName}-quarantined-lines' },
      // NewQuarantinedLines: the lines rejected in the landing files the run checked (new or changed). The
      // total, QuarantinedLines, stays above zero while one old bad line is kept: an alarm on it would fire on
      // every run and say nothing new.
      AlarmDescription:
        'A run quarantined lines of the landing files it checked: `stedi quarantine --stage <stage>` shows them with file, line number and reason',
      Metrics: [
        ...readers.map(({ job, dataset }) => ({
          Id: `q_${dataset}`,
          ReturnData: false,
          MetricStat: {
            Metric: {
              Namespace: METRICS_NAMESPACE,
              MetricName: 'NewQuarantinedLines',
              Dimensions: [
                { Name: 'Job', Value: { Ref: jobLogicalId(job) } },
                { Name: 'Dataset', Value: dataset },
              ],
            },
            Period: 300,
            Stat: 'Sum',
          },
        })),
        { Id: 'quarantined', Label: 'lines quarantined', Expression: 'SUM(METRICS())', ReturnData: true },
      ],
      EvaluationPeriods: 1,
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: 'AlertsTopic' }],
    },
  };
  for (const job of curatedWriters()) {
    alarms[`${pascal(job.target)}EmptyAlarm`] = {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        AlarmName: { 'Fn::Sub': `\${AWS::StackName}-${job.target}-empty` },
        AlarmDescription: `${job.name} wrote ${job.target} with no rows: its inputs lost their rows, or the consent, salt or join went wrong`,
        Namespace: METRICS_NAMESPACE,
        MetricName: 'RowsOut',
        Dimensions: [
          { Name: 'Job', Value: { Ref: jobLogicalId(job.name) } },
          { Name: 'Table', Value: job.target },
        ],
        Statistic: 'Minimum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 0,
        ComparisonOperator: 'LessThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching', // no run, no data point: nothing to say
        AlarmActions: [{ Ref: 'AlertsTopic' }],
      },
    };
  }
  return alarms;
}

/** { Resources }: the support tables, the named queries and the data alarms. */
function resources() {
  const { supportTables } = requireBuilt('definition/support-tables.js');
  const { loadChecks, loadSavedQueries } = requireBuilt('checks/definitions.js');
  const out = {};
  for (const table of supportTables()) out[`${pascal(table.name)}Table`] = supportTableResource(table);
  for (const check of loadChecks()) out[`${pascal(check.name)}CheckQuery`] = namedQueryResource(check, 'Data check');
  for (const query of loadSavedQueries()) out[`${pascal(query.name)}Query`] = namedQueryResource(query, 'Query');
  Object.assign(out, alarmResources());
  return { Resources: out };
}

/**
 * The state machine's definition substitutions for the data checks: the workgroup and database they run
 * in, and the audit query that gives each check's SQL on the run's branches (src/checks/audit.ts).
 * CloudFormation puts a value into the definition's JSON text as it is, so the SQL is given JSON-escaped (a
 * test substitutes the template's values the same way and parses the result).
 */
function checkSubstitutions() {
  const { loadChecks } = requireBuilt('checks/definitions.js');
  const { auditRunBranchesSql, AUDIT_SQL_SUBSTITUTION } = requireBuilt('checks/audit.js');
  return {
    AthenaWorkGroupName: { Ref: 'AthenaWorkGroup' },
    GlueDatabaseName: { Ref: 'GlueDatabase' },
    [AUDIT_SQL_SUBSTITUTION]: sqlForStack(auditRunBranchesSql(loadChecks()), (sql) => JSON.stringify(sql).slice(1, -1)),
  };
}

/** The ARNs of the data alarms (the dashboard shows their state), for Fn::Sub, from their names. */
function dataAlarmArns() {
  return Object.values(alarmResources()).map(
    (alarm) =>
      `arn:\${AWS::Partition}:cloudwatch:\${AWS::Region}:\${AWS::AccountId}:alarm:${alarm.Properties.AlarmName['Fn::Sub']}`,
  );
}

module.exports = { resources, METRICS_NAMESPACE, landingReaders, curatedWriters, dataAlarmArns, checkSubstitutions };
