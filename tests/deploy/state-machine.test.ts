import { expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { JOB_NAMES } from '../../src/definition/pipeline';
import { required } from '../../src/required';
import {
  Alarm,
  EventRule,
  GlueJob,
  Queue,
  ROOT,
  StateMachine,
  arnOf,
  list,
  ofType,
  pascal,
  policyStatements,
  ref,
  resource,
  statementsOf,
} from './template';

describe('serverless package: the state machine', () => {
  it('deploys statemachines/pipeline.asl.json as it is, every placeholder substituted', () => {
    const machine = resource<StateMachine>('PipelineStateMachine').Properties;
    const fileText = readFileSync(path.join(ROOT, 'statemachines', 'pipeline.asl.json'), 'utf8');
    expect(typeof machine.DefinitionString).toBe('string');
    expect(JSON.parse(machine.DefinitionString)).toEqual(JSON.parse(fileText));

    const placeholders = [...new Set([...machine.DefinitionString.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1]))].sort();
    // CloudFormation fills in only the names it is given; cfn-lint (E1029) and moto refuse any other ${...}.
    expect(placeholders).toEqual(Object.keys(machine.DefinitionSubstitutions).sort());
    for (const job of JOB_NAMES)
      expect(machine.DefinitionSubstitutions[`${pascal(job)}JobName`]).toEqual(ref(`${pascal(job)}Job`));
    expect(machine.DefinitionSubstitutions.AlertsTopicArn).toEqual(ref('AlertsTopic'));
    expect(machine.DefinitionSubstitutions.ConsentPolicy).toEqual(ref('ConsentPolicy'));
    expect(machine.DefinitionSubstitutions.LockTableName).toEqual(ref('PipelineLockTable'));
  });

  it("queues a job's runs, one at a time, each with the job's own Glue timeout (the task passes none), and room in the task's timeout for one queued run ahead", () => {
    const definition = JSON.parse(resource<StateMachine>('PipelineStateMachine').Properties.DefinitionString) as {
      States: Record<string, { Resource?: string; TimeoutSeconds?: number; Parameters?: { Timeout?: number } }>;
    };
    for (const job of JOB_NAMES) {
      const task = definition.States[pascal(job)];
      const p = resource<GlueJob>(`${pascal(job)}Job`).Properties;
      expect(p).toMatchObject({
        JobRunQueuingEnabled: true,
        ExecutionProperty: { MaxConcurrentRuns: 1 },
        MaxRetries: 0,
      });
      expect(task?.Parameters).not.toHaveProperty('Timeout'); // one number: the job's
      expect(task?.TimeoutSeconds).toBeGreaterThanOrEqual(2 * p.Timeout * 60);
    }
  });

  it("lets the state machine list, stop and read only the five jobs' runs (the timeout path: GetJobRuns, BatchStopJobRun, GetJobRun)", () => {
    const glue = statementsOf('PipelineStateMachineRole').filter((st) =>
      list(st.Action).some((a) => a.startsWith('glue:')),
    );
    const allowed = glue.flatMap((st) => list(st.Action));
    expect(allowed).toEqual(expect.arrayContaining(['glue:GetJobRuns', 'glue:BatchStopJobRun', 'glue:GetJobRun']));
    for (const st of glue)
      expect(list(st.Resource)).toEqual(
        JOB_NAMES.map((j) => ({
          'Fn::Sub': `arn:\${AWS::Partition}:glue:\${AWS::Region}:\${AWS::AccountId}:job/\${${pascal(j)}Job}`,
        })),
      );
  });

  it('logs to the stack log group, traces with X-Ray and runs as its own role', () => {
    const machine = resource<StateMachine>('PipelineStateMachine').Properties;
    expect(machine.LoggingConfiguration.Destinations).toEqual([
      { CloudWatchLogsLogGroup: { LogGroupArn: arnOf('PipelineLogGroup') } },
    ]);
    expect(machine.LoggingConfiguration.Level).not.toBe('OFF');
    expect(machine.TracingConfiguration).toEqual({ Enabled: true });
    expect(machine.RoleArn).toEqual(arnOf('PipelineStateMachineRole'));
    expect(resource('PipelineLogGroup').Type).toBe('AWS::Logs::LogGroup');
  });

  it('alarms on failed, timed-out, aborted and throttled executions, and on a failed lock cleanup', () => {
    const alarms = ofType<Alarm>('AWS::CloudWatch::Alarm').filter(([, a]) => a.Properties.Namespace === 'AWS/States');
    const metricsOf = (machine: string) =>
      alarms
        .filter(
          ([, a]) =>
            JSON.stringify(a.Properties.Dimensions) ===
            JSON.stringify([{ Name: 'StateMachineArn', Value: ref(machine) }]),
        )
        .map(([, a]) => a.Properties.MetricName)
        .sort();
    expect(metricsOf('PipelineStateMachine')).toEqual([
      'ExecutionThrottled',
      'ExecutionsAborted',
      'ExecutionsFailed',
      'ExecutionsTimedOut',
    ]);
    expect(metricsOf('LockCleanupStateMachine')).toEqual(['ExecutionsFailed']);
    expect(alarms).toHaveLength(5);
  });
});

describe('serverless package: the pipeline lock', () => {
  it('is an item of its own DynamoDB table, keyed by LockName', () => {
    expect(resource('PipelineLockTable')).toMatchObject({
      Type: 'AWS::DynamoDB::Table',
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'LockName', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'LockName', AttributeType: 'S' }],
      },
    });
  });

  it('deploys statemachines/release-lock.asl.json as the lock cleanup, on the lock table, as its own role', () => {
    const machine = resource<StateMachine>('LockCleanupStateMachine').Properties;
    const fileText = readFileSync(path.join(ROOT, 'statemachines', 'release-lock.asl.json'), 'utf8');
    expect(JSON.parse(machine.DefinitionString)).toEqual(JSON.parse(fileText));
    expect(machine.DefinitionSubstitutions).toEqual({ LockTableName: ref('PipelineLockTable') });
    expect(machine.RoleArn).toEqual(arnOf('LockCleanupStateMachineRole'));
  });

  it('runs the cleanup for every pipeline execution that fails, times out or is aborted (EventBridge, Step Functions Execution Status Change)', () => {
    const rule = resource<EventRule>('LockCleanupRule').Properties;
    expect(rule.State).toBe('ENABLED');
    expect(rule.EventPattern).toEqual({
      source: ['aws.states'],
      'detail-type': ['Step Functions Execution Status Change'],
      detail: { stateMachineArn: [ref('PipelineStateMachine')], status: ['FAILED', 'TIMED_OUT', 'ABORTED'] },
    });
    expect(rule.Targets).toEqual([
      {
        Id: 'lock-cleanup',
        Arn: ref('LockCleanupStateMachine'),
        RoleArn: arnOf('LockCleanupRuleRole'),
        RetryPolicy: { MaximumEventAgeInSeconds: 900, MaximumRetryAttempts: 20 },
        DeadLetterConfig: { Arn: arnOf('LockCleanupDeadLetterQueue') },
      },
    ]);
  });

  it('keeps an event the rule cannot deliver in a dead-letter queue only that rule may send to (EventBridge User Guide, "Event retry policy and using dead-letter queues", "Granting permissions to the dead-letter queue")', () => {
    const rule = resource<EventRule>('LockCleanupRule').Properties;
    const target = required(rule.Targets[0], 'the cleanup target') as {
      RetryPolicy: { MaximumEventAgeInSeconds: number; MaximumRetryAttempts: number };
    };
    // The documented bounds: 60 s to 24 h of event age, 0 to 185 retries; well under the execution timeout,
    // so the alarm below speaks long before a waiting execution gives up.
    expect(target.RetryPolicy.MaximumEventAgeInSeconds).toBeGreaterThanOrEqual(60);
    expect(target.RetryPolicy.MaximumEventAgeInSeconds).toBeLessThanOrEqual(3600);
    expect(target.RetryPolicy.MaximumRetryAttempts).toBeLessThanOrEqual(185);
    const queue = resource<Queue>('LockCleanupDeadLetterQueue').Properties;
    expect(queue).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
    const sends = policyStatements().filter((st) => st.owner === 'LockCleanupDeadLetterQueuePolicy');
    expect(sends).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: ['sqs:SendMessage'],
        Resource: [arnOf('LockCleanupDeadLetterQueue')],
        Condition: { ArnEquals: { 'aws:SourceArn': arnOf('LockCleanupRule') } },
      }),
    ]);
  });

  it('alarms when the rule could not start the cleanup: FailedInvocations, and what it leaves out, InvocationsSentToDlq and InvocationsFailedToBeSentToDlq (EventBridge User Guide, "Monitoring Amazon EventBridge", RuleName on the default bus)', () => {
    const alarm = resource<Alarm>('LockCleanupNotStartedAlarm').Properties;
    const series = (alarm.Metrics ?? []).filter((m) => m.MetricStat);
    expect(series.map((m) => m.MetricStat?.Metric.MetricName).sort()).toEqual(
      ['FailedInvocations', 'InvocationsFailedToBeSentToDlq', 'InvocationsSentToDlq'].sort(),
    );
    for (const m of series)
      expect(m.MetricStat).toMatchObject({
        Metric: { Namespace: 'AWS/Events', Dimensions: [{ Name: 'RuleName', Value: ref('LockCleanupRule') }] },
        Stat: 'Sum',
      });
    expect(alarm.Metrics?.find((m) => m.ReturnData)).toMatchObject({ Expression: 'SUM(METRICS())' });
    expect(alarm).toMatchObject({
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching', // sent only when not zero
      AlarmActions: [ref('AlertsTopic')],
    });
  });
});
