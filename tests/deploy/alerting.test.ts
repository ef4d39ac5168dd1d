import { expect } from '@jest/globals';
import { JOB_NAMES } from '../../src/definition/pipeline';
import { required } from '../../src/required';
import {
  Alarm,
  EventRule,
  GlueJob,
  arnOf,
  dashboardBody,
  ofType,
  pascal,
  policyStatements,
  ref,
  resource,
  template,
} from './template';

describe('serverless package: alerting and the dashboard', () => {
  it('subscribes the alert e-mail only when one is given', () => {
    expect(resource('AlertsTopic').Type).toBe('AWS::SNS::Topic');
    const subscription = resource('AlertsEmailSubscription');
    expect(subscription.Condition).toBe('HasAlertEmail');
    expect(subscription.Properties).toMatchObject({
      Protocol: 'email',
      Endpoint: ref('AlertEmail'),
      TopicArn: ref('AlertsTopic'),
    });
    expect(template.Conditions.HasAlertEmail).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [ref('AlertEmail'), ''] }] });
    expect(template.Parameters.AlertEmail?.Default).toBe('');
  });

  it('sends failed, timed-out and stopped runs of the five jobs to the topic, which lets only that rule publish', () => {
    const rule = resource<EventRule>('GlueJobFailedRule').Properties;
    expect(rule.EventPattern).toEqual({
      source: ['aws.glue'],
      'detail-type': ['Glue Job State Change'],
      detail: { jobName: JOB_NAMES.map((j) => ref(`${pascal(j)}Job`)), state: ['FAILED', 'TIMEOUT', 'STOPPED'] },
    });
    expect(rule.Targets).toEqual([expect.objectContaining({ Arn: ref('AlertsTopic') })]);
    const events = policyStatements().find(
      (s) =>
        s.owner === 'AlertsTopicPolicy' &&
        typeof s.Principal === 'object' &&
        s.Principal.Service === 'events.amazonaws.com',
    );
    expect(events).toMatchObject({ Effect: 'Allow', Action: ['sns:Publish'], Resource: [ref('AlertsTopic')] });
    expect(events?.Condition?.ArnEquals?.['aws:SourceArn']).toEqual(arnOf('GlueJobFailedRule'));
  });

  it('alarms on the landing Lambda errors and throttles and on any dead letter, all to the topic', () => {
    const alarm = (id: string) => resource<Alarm>(id).Properties;
    expect(alarm('OnLandingErrorsAlarm')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: ref('OnLandingLambdaFunction') }],
    });
    expect(alarm('OnLandingThrottlesAlarm')).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Throttles' });
    // With no reserved concurrency a normal burst is not throttled: only a sustained one alarms.
    expect(alarm('OnLandingThrottlesAlarm')).toMatchObject({ EvaluationPeriods: 3, DatapointsToAlarm: 3 });
    expect(alarm('OnLandingThrottlesAlarm').AlarmDescription).not.toMatch(/reserved/i);
    expect(alarm('LandingDeadLetterAlarm')).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['LandingDeadLetterQueue', 'QueueName'] } }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    const alarms = ofType<Alarm>('AWS::CloudWatch::Alarm');
    expect(alarms.length).toBe(12); // 9 on failures, 3 on the data (athena.test.ts)
    for (const [, a] of alarms) expect(a.Properties.AlarmActions).toEqual([ref('AlertsTopic')]);
  });

  it('has a dashboard of executions, files received and removed, batches deferred and the Glue jobs', () => {
    const body = dashboardBody();
    const metrics = body.widgets.flatMap((w) => w.properties.metrics ?? []);
    const names = metrics.map((m) => m.filter((x) => typeof x === 'string')[1]);
    expect(names).toEqual(
      expect.arrayContaining([
        'ExecutionsStarted',
        'ExecutionsFailed',
        'ExecutionTime',
        'glue.driver.workerUtilization',
        'FilesReceived',
        'FilesRemoved',
        'BatchesDeferred',
      ]),
    );
    expect(metrics).toContainEqual(['StediLakehouse', 'FilesReceived', 'service', 'on-landing']);
  });

  it('shows only Glue metrics that Glue 5 publishes, under the dimensions it publishes them with (AWS Glue guide, "Monitoring with AWS Glue Observability metrics", Glue 4.0 and later)', () => {
    // From that page: each metric's Type and ObservabilityGroup; JobName and JobRunId (ALL: every run) besides.
    const documented: Record<string, { Type: string; ObservabilityGroup: string }> = {
      'glue.driver.workerUtilization': { Type: 'gauge', ObservabilityGroup: 'resource_utilization' },
      'glue.ALL.memory.total.used.percentage': { Type: 'gauge', ObservabilityGroup: 'resource_utilization' },
      'glue.succeed.ALL': { Type: 'count', ObservabilityGroup: 'error' },
      'glue.error.ALL': { Type: 'count', ObservabilityGroup: 'error' },
    };
    const glue = dashboardBody()
      .widgets.flatMap((w) => w.properties.metrics ?? [])
      .filter((m) => m[0] === 'Glue');
    expect(glue.length).toBeGreaterThanOrEqual(2 * JOB_NAMES.length);
    for (const m of glue) {
      const name = String(m[1]);
      // The legacy job-profiling names (--enable-metrics), such as glue.driver.aggregate.elapsedTime: not Glue 5's.
      expect(name).not.toMatch(
        /^glue\.(driver|ALL|\d+)\.(aggregate|jvm|s3|system|BlockManager|ExecutorAllocationManager)\./,
      );
      const words = m.slice(2).filter((x): x is string => typeof x === 'string');
      const dims: Record<string, string | undefined> = {};
      for (let i = 0; i < words.length; i += 2) dims[words[i]!] = words[i + 1];
      expect({ name, ...dims }).toEqual({
        name,
        ...required(documented[name], `${name} in the observability metrics`),
        JobName: expect.stringMatching(/^\$\{\w+Job\}$/),
        JobRunId: 'ALL',
      });
    }
    expect(new Set(glue.map((m) => m[3]))).toEqual(new Set(JOB_NAMES.map((j) => `\${${pascal(j)}Job}`)));
    // Glue publishes them only for a job run with the flag (same page, "Getting started").
    for (const job of JOB_NAMES)
      expect(resource<GlueJob>(`${pascal(job)}Job`).Properties.DefaultArguments['--enable-observability-metrics']).toBe(
        'true',
      );
  });
});
