import { expect } from '@jest/globals';
import { JOB_NAMES } from '../../src/definition/pipeline';
import {
  PolicyDocument,
  STAR_RESOURCE_ACTIONS,
  arnOf,
  pascal,
  policyStatements,
  ref,
  resource,
  statementsOf,
  subOf,
} from './template';

describe('serverless package: least privilege', () => {
  it('allows no wildcard action anywhere; "*" actions appear only in Deny statements (TLS only)', () => {
    for (const s of policyStatements()) {
      const wildcards = s.Action.filter((a) => typeof a !== 'string' || a.includes('*'));
      if (s.Effect === 'Allow') {
        expect({ owner: s.owner, wildcards }).toEqual({ owner: s.owner, wildcards: [] });
      } else {
        // A Deny takes access away: the bucket policies' TLS-only statements deny every action.
        expect(JSON.stringify(s.Condition)).toMatch(/aws:SecureTransport|s3:TlsVersion/);
      }
    }
  });

  it('uses Resource "*" only for actions that have no resource-level permissions', () => {
    const offenders = policyStatements()
      .filter((s) => s.Effect === 'Allow' && s.Resource.includes('*'))
      .flatMap((s) => s.Action.filter((a) => !STAR_RESOURCE_ACTIONS.has(a)).map((a) => `${s.owner}: ${a}`));
    expect(offenders).toEqual([]);
  });

  it('lets the Lambda only start and list executions of this state machine (plus its logs and queue)', () => {
    const statements = statementsOf('IamRoleLambdaExecution');
    const states = statements.filter((s) => s.Action.some((a) => a.startsWith('states:')));
    expect(states).toHaveLength(1);
    expect(states[0]?.Action.sort()).toEqual(['states:ListExecutions', 'states:StartExecution']);
    expect(states[0]?.Resource).toEqual([ref('PipelineStateMachine')]);
    const services = new Set(statements.flatMap((s) => s.Action.map((a) => a.split(':')[0])));
    expect([...services].sort()).toEqual(['logs', 'sqs', 'states']);
    const sqs = statements.find((s) => s.Action.includes('sqs:ReceiveMessage'))!;
    expect(sqs.Resource).toEqual([arnOf('LandingQueue')]);
  });

  it('lets the state machine run only the five jobs, publish only to the alerts topic and only read and update the lock table', () => {
    const statements = statementsOf('PipelineStateMachineRole');
    const dynamodb = statements.filter((s) => s.Action.some((a) => a.startsWith('dynamodb:')));
    expect(dynamodb).toHaveLength(1);
    expect(dynamodb[0]?.Action.sort()).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(dynamodb[0]?.Resource).toEqual([arnOf('PipelineLockTable')]);
    const glue = statements.filter((s) => s.Action.some((a) => a.startsWith('glue:')));
    expect(glue).toHaveLength(1);
    expect(glue[0]?.Resource).toEqual(
      JOB_NAMES.map((j) => ({
        'Fn::Sub': `arn:\${AWS::Partition}:glue:\${AWS::Region}:\${AWS::AccountId}:job/\${${pascal(j)}Job}`,
      })),
    );
    const sns = statements.find((s) => s.Action.includes('sns:Publish'))!;
    expect(sns.Resource).toEqual([ref('AlertsTopic')]);
  });

  it('lets the lock cleanup only update the lock table, and its rule only start the lock cleanup', () => {
    const cleanup = statementsOf('LockCleanupStateMachineRole');
    expect(cleanup.map((s) => [s.Action, s.Resource])).toEqual([
      [['dynamodb:UpdateItem'], [arnOf('PipelineLockTable')]],
    ]);
    const rule = statementsOf('LockCleanupRuleRole');
    expect(rule.map((s) => [s.Action, s.Resource])).toEqual([
      [['states:StartExecution'], [ref('LockCleanupStateMachine')]],
    ]);
    for (const [role, service] of [
      ['LockCleanupStateMachineRole', 'states.amazonaws.com'],
      ['LockCleanupRuleRole', 'events.amazonaws.com'],
    ] as const)
      expect(
        resource<{ AssumeRolePolicyDocument: PolicyDocument }>(role).Properties.AssumeRolePolicyDocument.Statement,
      ).toEqual([
        {
          Effect: 'Allow',
          Principal: { Service: service },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'aws:SourceAccount': ref('AWS::AccountId') } },
        },
      ]);
  });

  it('lets Glue read landing, trusted and curated, write only trusted, curated, validated and quarantine, and change only this database', () => {
    const statements = statementsOf('GlueJobRole');
    const keysFor = (action: string) =>
      statements
        .filter((s) => s.Action.includes(action))
        .flatMap((s) => s.Resource)
        .map((r) => {
          const sub = subOf(r);
          return sub ? sub.replace('${DataBucket.Arn}/', '') : JSON.stringify(r);
        });
    // Each grant is checked against the jobs' real S3A requests by tests/python/test_glue_jobs_on_spark.py; here:
    // writes are never in landing or the runner's code, and are whole prefixes (<prefix>/*) or S3A's directory
    // markers (<dir>/).
    const writes = [...keysFor('s3:PutObject'), ...keysFor('s3:DeleteObject')];
    expect(writes.length).toBeGreaterThan(0);
    for (const key of writes) expect(key).toMatch(/^[a-z_]+(\/[a-z_]+)*\/\*?$/);
    expect(writes.join(' ')).not.toMatch(/landing|glue\//);

    const glueResources = statements
      .filter((s) => s.Action.some((a) => a.startsWith('glue:')))
      .flatMap((s) => s.Resource);
    for (const r of glueResources)
      expect(subOf(r)).toMatch(
        /:(catalog|database\/default|database\/\$\{GlueDatabase\}|table\/\$\{GlueDatabase\}\/\*)$/,
      );
    // Spark's Data Catalog metastore looks up "default" and creates it in an account without one: only that.
    const creates = statements.filter((s) => s.Action.includes('glue:CreateDatabase'));
    expect(creates.flatMap((s) => s.Resource)).toEqual([
      { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog' },
      { 'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/default' },
    ]);
    const lookups = statements.filter((s) => s.Action.includes('glue:GetDatabase')).flatMap((s) => s.Resource);
    expect(lookups).toContainEqual({
      'Fn::Sub': 'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/default',
    });
    const ssm = statements.find((s) => s.Action.includes('ssm:GetParameter'))!;
    expect(ssm.Resource).toEqual([
      { 'Fn::Sub': 'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PiiSaltParameterName}' },
    ]);
    // Glue 5's two log groups, and no other.
    const logs = statements.filter((s) => s.Action.some((a) => a.startsWith('logs:'))).flatMap((s) => s.Resource);
    expect(logs.map((r) => String(subOf(r)).replace(/^.*:log-group:/, '')).sort()).toEqual([
      '/aws-glue/jobs/error',
      '/aws-glue/jobs/error:*',
      '/aws-glue/jobs/output',
      '/aws-glue/jobs/output:*',
    ]);
    const kms = statements.find((s) => s.Action.includes('kms:Decrypt'))!;
    expect(kms.Condition?.StringEquals?.['kms:ViaService']).toEqual({ 'Fn::Sub': 'ssm.${AWS::Region}.amazonaws.com' });
  });
});
