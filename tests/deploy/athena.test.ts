import { expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PIPELINE_RESULTS_PREFIX, USER_RESULTS_PREFIX } from '../../src/aws/athena';
import { loadJobs } from '../../src/definition/pipeline';
import { required } from '../../src/required';
import { checksFor, loadChecks, loadSavedQueries } from '../../src/checks/definitions';
import { auditRunBranchesSqlFor } from '../../src/checks/audit';
import { supportTables } from '../../src/definition/support-tables';
import {
  Alarm,
  Bucket,
  GlueTable,
  LANDING_PREFIXES,
  PolicyStatement,
  ROOT,
  StateMachine,
  dashboardBody,
  ofType,
  pascal,
  policyStatements,
  ref,
  resource,
  statementsOf,
  subOf,
  template,
} from './template';

describe('serverless package: Athena, the data checks and the CLI user', () => {
  const workgroupArn = {
    'Fn::Sub': 'arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}:workgroup/${AthenaWorkGroup}',
  };
  const databaseResources = [
    { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog' },
    { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/${GlueDatabase}' },
    { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:table/${GlueDatabase}/*' },
  ];
  // Athena's guide: GetDatabase, GetDatabases and CreateDatabase on the catalog and the default database.
  const athenaDefaults = [
    { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog' },
    { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/default' },
  ];
  const glueResourcesOf = (statements: PolicyStatement[], action: string) =>
    statements.filter((s) => s.Action.includes(action)).flatMap((s) => s.Resource);
  const keysOf = (statements: PolicyStatement[], action: string) =>
    statements
      .filter((s) => s.Action.includes(action))
      .flatMap((s) => s.Resource)
      .map((r) => {
        const sub = subOf(r);
        return sub ? sub.replace('${DataBucket.Arn}/', '') : JSON.stringify(r);
      })
      .sort();

  it("gives the state machine the audit query (every check's SQL) and the workgroup and database as definition substitutions", () => {
    const machine = resource<StateMachine>('PipelineStateMachine').Properties;
    const subs = machine.DefinitionSubstitutions;
    expect(subs.AthenaWorkGroupName).toEqual(ref('AthenaWorkGroup'));
    expect(subs.GlueDatabaseName).toEqual(ref('GlueDatabase'));
    // CloudFormation writes each value into the definition's text as it is: the SQL must arrive JSON-escaped.
    // A check that names the database gets its name through Fn::Sub, ${GlueDatabaseName} bound to the database.
    const database = resource<{ DatabaseInput: { Name: string } }>('GlueDatabase').Properties.DatabaseInput.Name;
    const valueOf = (name: string, value: unknown): string => {
      if (typeof value === 'string') return value;
      const sub = (value as { 'Fn::Sub'?: [string, Record<string, unknown>] })['Fn::Sub'];
      if (!sub) return `resolved-${name}`;
      expect(sub[1]).toEqual({ GlueDatabaseName: ref('GlueDatabase') });
      return sub[0].replace(/\$\{GlueDatabaseName\}/g, database);
    };
    const filled = machine.DefinitionString.replace(/\$\{(\w+)\}/g, (_: string, name: string) =>
      valueOf(name, subs[name]),
    );
    const definition = JSON.parse(filled) as { States: Record<string, { Parameters?: Record<string, unknown> }> };
    expect(definition.States.AuditRunBranches?.Parameters?.QueryString).toBe(auditRunBranchesSqlFor(database));
    const piiColumns = checksFor(database).find((c) => c.name === 'curated_no_pii_columns')!;
    expect(piiColumns.sql).toContain(`table_schema = '${database}'`);
  });

  it('has a workgroup whose results go encrypted under athena-results/ of the data bucket, the pipeline\'s by default and each user\'s where the client puts them (Athena guide, "Override client-side settings"), with a scan limit per query', () => {
    const workgroup = resource<{ Name: unknown; WorkGroupConfiguration: unknown }>('AthenaWorkGroup').Properties;
    expect(workgroup.Name).toEqual(ref('AWS::StackName'));
    expect(workgroup.WorkGroupConfiguration).toMatchObject({
      // Not enforced: the client's results location is used, the workgroup's where it gives none.
      EnforceWorkGroupConfiguration: false,
      BytesScannedCutoffPerQuery: ref('AthenaScanLimitBytes'),
      EngineVersion: { SelectedEngineVersion: 'Athena engine version 3' },
      ResultConfiguration: {
        OutputLocation: { 'Fn::Sub': `s3://\${DataBucket}/${PIPELINE_RESULTS_PREFIX}` },
        EncryptionConfiguration: { EncryptionOption: 'SSE_S3' },
      },
    });
    // The checks give no ResultConfiguration: theirs is the workgroup's.
    const definition = JSON.parse(resource<StateMachine>('PipelineStateMachine').Properties.DefinitionString) as {
      States: { RunChecks: { ItemProcessor: { States: { StartCheckQuery: { Parameters: object } } } } };
    };
    expect(definition.States.RunChecks.ItemProcessor.States.StartCheckQuery.Parameters).not.toHaveProperty(
      'ResultConfiguration',
    );
    expect(Number(template.Parameters.AthenaScanLimitBytes?.Default)).toBeGreaterThanOrEqual(10_000_000);
    const rules = resource<Bucket>('DataBucket').Properties.LifecycleConfiguration.Rules;
    expect(rules).toContainEqual(
      expect.objectContaining({ Status: 'Enabled', Prefix: 'athena-results/', ExpirationInDays: expect.any(Number) }),
    );
    expect(template.Outputs.AthenaWorkGroupName?.Value).toEqual(ref('AthenaWorkGroup'));
  });

  it('saves every data check and the per-zone counts as a named query of the workgroup, with the text of its SQL file', () => {
    const queries = ofType<{ Name: string; QueryString: unknown; Database: unknown; WorkGroup: unknown }>(
      'AWS::Athena::NamedQuery',
    ).map(([, q]) => q.Properties);
    const expected = [...loadChecks(), ...loadSavedQueries()];
    expect(queries.map((q) => q.Name).sort()).toEqual(expected.map((c) => c.name).sort());
    expect(queries.map((q) => q.Name)).toContain('row_counts_by_zone');
    for (const q of queries) {
      const sql = expected.find((c) => c.name === q.Name)!.sql;
      // The database a check names, filled in by CloudFormation (Fn::Sub) as in the state machine.
      if (sql.includes('${GlueDatabaseName}'))
        expect(q.QueryString).toEqual({ 'Fn::Sub': [sql, { GlueDatabaseName: ref('GlueDatabase') }] });
      else expect(q.QueryString).toBe(sql);
      expect(q.Database).toEqual(ref('GlueDatabase'));
      expect(q.WorkGroup).toEqual(ref('AthenaWorkGroup'));
    }
  });

  it('puts the quarantine of each dataset and the build log in the Catalog, so Athena reads them', () => {
    const tables = Object.fromEntries(
      ofType<GlueTable>('AWS::Glue::Table').map(([, t]) => [t.Properties.TableInput.Name, t.Properties.TableInput]),
    );
    for (const table of supportTables()) {
      expect(tables[table.name]?.StorageDescriptor.Location).toEqual({
        'Fn::Sub': `s3://\${DataBucket}/${table.location}`,
      });
      expect(tables[table.name]?.StorageDescriptor.Columns.map((c) => c.Name)).toEqual(
        table.columns.map((c) => c.name),
      );
      expect(tables[table.name]?.StorageDescriptor.SerdeInfo.SerializationLibrary).toBe(
        'org.openx.data.jsonserde.JsonSerDe',
      );
    }
    expect(Object.keys(tables)).toEqual(
      expect.arrayContaining([
        'customer_quarantine',
        'accelerometer_quarantine',
        'step_trainer_quarantine',
        'table_builds',
      ]),
    );
  });

  it('lets the state machine run queries only in the workgroup, on this database, reading only what the checks read', () => {
    const policy = resource<{ Roles: unknown }>('PipelineChecksPolicy');
    expect(policy.Properties.Roles).toEqual([ref('PipelineStateMachineRole')]);
    const statements = statementsOf('PipelineChecksPolicy');
    const athena = statements.filter((s) => s.Action.some((a) => a.startsWith('athena:')));
    expect(athena.flatMap((s) => s.Action).sort()).toEqual([
      'athena:GetDataCatalog',
      'athena:GetQueryExecution',
      'athena:GetQueryResults',
      'athena:StartQueryExecution',
      'athena:StopQueryExecution',
    ]);
    expect(athena.find((s) => s.Action.includes('athena:StartQueryExecution'))!.Resource).toEqual([workgroupArn]);
    const glue = statements.filter((s) => s.Action.some((a) => a.startsWith('glue:')));
    expect(
      glue.flatMap((s) => s.Action).every((a) => /^glue:(Get|BatchGet)/.test(a) || a === 'glue:CreateDatabase'),
    ).toBe(true);
    expect(glueResourcesOf(statements, 'glue:GetTables')).toEqual(databaseResources);
    expect(glueResourcesOf(statements, 'glue:CreateDatabase')).toEqual(athenaDefaults);
    expect(keysOf(statements, 's3:GetObject')).toEqual(
      [
        `${PIPELINE_RESULTS_PREFIX}*`,
        'checks/table_builds/*',
        'customer/trusted/*',
        'accelerometer/trusted/*',
        'step_trainer/trusted/*',
        'customer/curated/*',
        'machine_learning/curated/*',
      ].sort(),
    );
    expect(keysOf(statements, 's3:PutObject')).toEqual([`${PIPELINE_RESULTS_PREFIX}*`]);
  });

  it('has a CLI user policy: this stack, this state machine, the landing prefixes, this workgroup and database', () => {
    expect(resource('CliUserPolicy').Type).toBe('AWS::IAM::ManagedPolicy');
    expect(template.Outputs.CliPolicyArn?.Value).toEqual(ref('CliUserPolicy'));
    const statements = statementsOf('CliUserPolicy');
    const services = new Set(statements.flatMap((s) => s.Action.map((a) => a.split(':')[0])));
    expect([...services].sort()).toEqual(['athena', 'cloudformation', 'glue', 'lakeformation', 's3', 'states']);
    const of = (action: string) => statements.filter((s) => s.Action.includes(action)).flatMap((s) => s.Resource);
    expect(of('cloudformation:DescribeStacks')).toEqual([
      { 'Fn::Sub': 'arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${AWS::StackName}/*' },
    ]);
    expect(of('states:StartExecution')).toEqual([ref('PipelineStateMachine')]);
    expect(of('states:DescribeExecution')).toEqual([
      {
        'Fn::Sub':
          'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${PipelineStateMachine.Name}:*',
      },
    ]);
    expect(statements.flatMap((s) => s.Action)).not.toContain('states:StopExecution');
    expect(keysOf(statements, 's3:PutObject')).toEqual(
      // ${!aws:userid}: Fn::Sub's escape for IAM's own ${aws:userid}.
      [`${USER_RESULTS_PREFIX}\${!aws:userid}/*`, ...LANDING_PREFIXES.map((p) => `${p}*`)].sort(),
    );
    expect(keysOf(statements, 's3:GetObject').join(' ')).not.toMatch(/glue\//);
    // Athena reads a table's data as the caller: the CLI user may read every table the stack defines.
    const readable = keysOf(statements, 's3:GetObject');
    for (const [, table] of ofType<GlueTable>('AWS::Glue::Table')) {
      const location = JSON.stringify(table.Properties.TableInput.StorageDescriptor.Location);
      const prefix = /\$\{DataBucket\}\/([^"]*)/.exec(location)?.[1];
      expect({ table: table.Properties.TableInput.Name, readable: readable.includes(`${prefix}*`) }).toEqual({
        table: table.Properties.TableInput.Name,
        readable: true,
      });
    }
    expect(statements.flatMap((s) => s.Action)).not.toContain('s3:DeleteObject');
    expect(of('athena:StartQueryExecution')).toEqual([workgroupArn]);
    expect(of('glue:GetTables')).toEqual(databaseResources);
    expect(glueResourcesOf(statements, 'glue:CreateDatabase')).toEqual(athenaDefaults);
  });

  it('lets every principal that reads the lake through Glue or Athena call lakeformation:GetDataAccess, on "*" (Athena guide, "Manage Lake Formation and Athena user permissions"; Glue guide, "Working with AWS Lake Formation-protected data")', () => {
    // Without it, a Lake Formation-registered location is unreadable whatever Lake Formation grants.
    for (const owner of ['GlueJobRole', 'PipelineChecksPolicy', 'CliUserPolicy'])
      expect({ owner, resources: glueResourcesOf(statementsOf(owner), 'lakeformation:GetDataAccess') }).toEqual({
        owner,
        resources: ['*'],
      });
    const elsewhere = policyStatements().filter(
      (st) =>
        st.Action.some((a) => a.startsWith('lakeformation:')) &&
        !['GlueJobRole', 'PipelineChecksPolicy', 'CliUserPolicy'].includes(st.owner),
    );
    expect(elsewhere).toEqual([]);
    for (const st of policyStatements().filter((x) => x.Action.some((a) => a.startsWith('lakeformation:'))))
      expect(st.Action).toEqual(['lakeformation:GetDataAccess']);
  });

  it("lets the Glue jobs publish metrics only in Glue's namespace and the runner's, the one the alarms watch", () => {
    const runnerNamespace = required(
      /^METRICS_NAMESPACE = "(\w+)"$/m.exec(readFileSync(path.join(ROOT, 'glue', 'run_sql_job.py'), 'utf8'))?.[1],
      'METRICS_NAMESPACE of glue/run_sql_job.py',
    );
    const metrics = statementsOf('GlueJobRole').filter((s) => s.Action.includes('cloudwatch:PutMetricData'));
    expect(metrics).toHaveLength(1);
    expect(metrics[0]?.Condition).toEqual({ StringEquals: { 'cloudwatch:namespace': ['Glue', runnerNamespace] } });
    for (const [, alarm] of ofType<Alarm>('AWS::CloudWatch::Alarm')) {
      const namespaces = [
        alarm.Properties.Namespace,
        ...(alarm.Properties.Metrics ?? []).map((m) => m.MetricStat?.Metric.Namespace),
      ].filter((n) => n && !String(n).startsWith('AWS/'));
      for (const n of namespaces) expect(n).toBe(runnerNamespace);
    }
  });

  it('shows rows in, rows out, quarantined lines and the data alarms on the dashboard', () => {
    const body = dashboardBody();
    const metrics = body.widgets.flatMap((w) => w.properties.metrics ?? []);
    const of = (name: string) => metrics.filter((m) => m[0] === 'StediLakehouse' && m[1] === name);
    expect(of('RowsOut').map((m) => [m[3], m[5]])).toEqual(
      loadJobs().map((j) => [`\${${pascal(j.name)}Job}`, j.target]),
    );
    expect(of('RowsIn').map((m) => m[5])).toEqual(loadJobs().flatMap((j) => j.reads));
    expect(of('QuarantinedLines').map((m) => m[5])).toEqual(['customer', 'accelerometer', 'step_trainer']);
    expect(of('NewQuarantinedLines').map((m) => m[5])).toEqual(['customer', 'accelerometer', 'step_trainer']);
    const alarms = body.widgets.find((w) => w.type === 'alarm');
    const arnOfAlarm = (id: string) =>
      `arn:\${AWS::Partition}:cloudwatch:\${AWS::Region}:\${AWS::AccountId}:alarm:${String(subOf(resource<Alarm>(id).Properties.AlarmName))}`;
    expect(alarms?.properties.alarms).toEqual(
      ['QuarantinedLinesAlarm', 'CustomerCuratedEmptyAlarm', 'MachineLearningCuratedEmptyAlarm'].map(arnOfAlarm),
    );
  });

  it('alarms when a run quarantines lines of the files it checked (NewQuarantinedLines: not the total, which one old bad line keeps above zero) and when a curated table is written empty', () => {
    const quarantine = resource<Alarm>('QuarantinedLinesAlarm').Properties;
    const series = (quarantine.Metrics ?? []).filter((m) => m.MetricStat);
    expect(series.map((m) => m.MetricStat?.Metric.Dimensions)).toEqual([
      [
        { Name: 'Job', Value: ref('CustomerLandingToTrustedJob') },
        { Name: 'Dataset', Value: 'customer' },
      ],
      [
        { Name: 'Job', Value: ref('AccelerometerLandingToTrustedJob') },
        { Name: 'Dataset', Value: 'accelerometer' },
      ],
      [
        { Name: 'Job', Value: ref('StepTrainerLandingToTrustedJob') },
        { Name: 'Dataset', Value: 'step_trainer' },
      ],
    ]);
    for (const m of series)
      expect(m.MetricStat).toMatchObject({
        Metric: { Namespace: 'StediLakehouse', MetricName: 'NewQuarantinedLines' },
        Stat: 'Sum',
      });
    // The runner publishes it under that name (tests/python/test_job_data.py checks what it counts).
    expect(readFileSync(path.join(ROOT, 'glue', 'run_sql_job.py'), 'utf8')).toContain('datum("NewQuarantinedLines"');
    expect(quarantine).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    for (const [id, job, table] of [
      ['CustomerCuratedEmptyAlarm', 'CustomerTrustedToCuratedJob', 'customer_curated'],
      ['MachineLearningCuratedEmptyAlarm', 'MachineLearningCuratedJob', 'machine_learning_curated'],
    ] as const) {
      expect(resource(id).Properties).toMatchObject({
        Namespace: 'StediLakehouse',
        MetricName: 'RowsOut',
        Dimensions: [
          { Name: 'Job', Value: ref(job) },
          { Name: 'Table', Value: table },
        ],
        Statistic: 'Minimum',
        Threshold: 0,
        ComparisonOperator: 'LessThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
    }
  });
});
