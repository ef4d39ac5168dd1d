import aslValidator from 'asl-validator';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isLandingTable, TableName } from '../../src/layout';
import { JOB_NAMES, JobName, loadJobs } from '../../src/pipeline';
import { projectRoot } from '../../src/project';
import {
  AslDefinition,
  GLUE_SYNC_RESOURCE,
  SNS_PUBLISH_RESOURCE,
  SubstitutionError,
  glueTasksFrom,
  happyPath,
  readAslText,
  substitute,
  substitutionNames,
} from '../../src/statemachine/definition';
import { localSubstitutions } from '../../src/statemachine/local-runner';
import { toMermaid } from '../../src/statemachine/mermaid';

const text = readAslText();
const deployed = substitute(text, Object.fromEntries(substitutionNames(text).map((n) => [n, `deployed-${n}`])));
const local = substitute(text, localSubstitutions('any', text));
const glueTasks = Object.entries(deployed.States).filter(([, s]) => s.Resource === GLUE_SYNC_RESOURCE);

/** The job each Glue task runs, as `stedi run` binds it. */
const jobOf = (state: string) => local.States[state].Parameters!.JobName as JobName;

describe('statemachines/pipeline.asl.json', () => {
  it('is valid ASL once substituted', () => {
    const { isValid, errorsText } = aslValidator(structuredClone(deployed), { checkPaths: true, checkArn: true });
    expect(errorsText('\n')).toBe('');
    expect(isValid).toBe(true);
  });

  it('takes job names and the topic from substitutions, never hard-coded', () => {
    expect(substitutionNames(text)).toEqual(
      expect.arrayContaining(['AlertsTopicArn', 'ConsentPolicy', ...glueTasks.map(([n]) => `${n}JobName`)]),
    );
    for (const [, state] of glueTasks) expect(String(state.Parameters!.JobName)).toMatch(/^deployed-/);
    expect(deployed.States.NotifyFailure.Parameters!.TopicArn).toBe('deployed-AlertsTopicArn');
    expect(() => substitute(text, {})).toThrow(SubstitutionError);
  });

  it('runs the five Glue jobs, each with the execution name as its run id and a Glue timeout below the task timeout', () => {
    expect(glueTasks.map(([name]) => jobOf(name))).toEqual([...JOB_NAMES]);
    for (const [, state] of glueTasks) {
      expect((state.Parameters!.Arguments as Record<string, string>)['--run_id.$']).toBe('$$.Execution.Name');
      expect((state.Parameters!.Timeout as number) * 60).toBeLessThan(state.TimeoutSeconds!);
    }
    expect(deployed.TimeoutSeconds).toBeGreaterThan(0);
  });

  it('retries concurrency and transient Glue errors with backoff and jitter, never a job failure', () => {
    for (const [, state] of glueTasks) {
      const retried = state.Retry!.flatMap((r) => r.ErrorEquals);
      expect(retried).toContain('Glue.ConcurrentRunsExceededException');
      expect(retried).toEqual(expect.arrayContaining(['Glue.InternalServiceException', 'Glue.ThrottlingException']));
      expect(retried).not.toEqual(expect.arrayContaining(['States.ALL']));
      expect(retried).not.toContain('States.TaskFailed');
      expect(retried).not.toContain('Glue.JobRunFailed');
      for (const retry of state.Retry!) {
        expect(retry.BackoffRate).toBeGreaterThan(1);
        expect(retry.JitterStrategy).toBe('FULL');
      }
    }
  });

  it('catches every task into the one alert state, then fails the execution', () => {
    for (const [name, state] of Object.entries(deployed.States).filter(([, s]) => s.Type === 'Task')) {
      expect(state.Catch?.map((c) => c.ErrorEquals)).toEqual([['States.ALL']]);
      const path = happyPath(deployed, state.Catch![0].Next);
      const reachesAlert = name === 'NotifyFailure' || path.includes('NotifyFailure');
      expect(reachesAlert).toBe(true);
      expect(deployed.States[path[path.length - 1]].Type).toBe('Fail');
    }
    const publishers = Object.entries(deployed.States).filter(([, s]) => s.Resource === SNS_PUBLISH_RESOURCE);
    expect(publishers.map(([n]) => n)).toEqual(['NotifyFailure']);
  });
});

describe('the job order, derived from the inputs each SQL file declares', () => {
  const jobs = loadJobs();
  const producer = new Map<TableName, JobName>(jobs.map((j) => [j.target, j.name]));
  /** Jobs each job needs to have run before it: the producers of the tables its SQL reads. */
  const needs = new Map(
    jobs.map((j) => [j.name, j.reads.filter((t) => !isLandingTable(t)).map((t) => producer.get(t)!)]),
  );
  /** Every job that must rerun when a landing table changes: its readers and, transitively, theirs. */
  function affectedBy(landingTable: TableName): Set<JobName> {
    const affected = new Set(jobs.filter((j) => j.reads.includes(landingTable)).map((j) => j.name));
    let grew = true;
    while (grew) {
      grew = false;
      for (const job of jobs) {
        if (!affected.has(job.name) && needs.get(job.name)!.some((n) => affected.has(n))) {
          affected.add(job.name);
          grew = true;
        }
      }
    }
    return affected;
  }

  it('runs every job after the jobs whose tables it reads', () => {
    const order = glueTasksFrom(deployed, deployed.StartAt).map(jobOf);
    for (const [job, required] of needs) {
      for (const r of required) expect(order.indexOf(r)).toBeLessThan(order.indexOf(job));
    }
  });

  it.each([
    ['all', null],
    ['customer', 'customer_landing'],
    ['accelerometer', 'accelerometer_landing'],
    ['step_trainer', 'step_trainer_landing'],
  ] as const)('enters at the right job for from = %s', (from, landingTable) => {
    const choice = deployed.States.ChooseFirstJob;
    const rule = choice.Choices!.find((c) => JSON.stringify(c).includes(`"StringEquals":"${from}"`))!;
    const ran = glueTasksFrom(deployed, rule.Next).map(jobOf);
    const expected = landingTable ? [...affectedBy(landingTable)] : [...JOB_NAMES];
    expect(new Set(ran)).toEqual(new Set(expected));
  });
});

describe('the README diagram', () => {
  it('is the Mermaid rendering of the ASL file', () => {
    const readme = readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');
    const block = /<!-- state-machine:start -->\n```mermaid\n([\s\S]*?)\n```\n<!-- state-machine:end -->/.exec(readme);
    expect(block?.[1]).toBe(toMermaid(local as AslDefinition));
  });
});
