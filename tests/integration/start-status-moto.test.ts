import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import {
  DescribeExecutionCommand,
  ExecutionListItem,
  ListExecutionsCommand,
  SFNClient,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { expect } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../../src/project';
import { required } from '../../src/required';
import { MotoServer, createPipelineStateMachine, startMoto } from '../helpers/moto';
import { until } from '../helpers/wait';

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');

// `stedi start` and `stedi status` against a deployed stack: here moto's CloudFormation and Step Functions.
describe('stedi start and stedi status (moto)', () => {
  let moto: MotoServer;
  let sfn: SFNClient;
  let stateMachineArn: string;
  const env = () => ({ ...process.env, ...moto.env, STEDI_POLL_MS: '100' });
  const stedi = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: env() });

  beforeAll(async () => {
    moto = await startMoto();
    const config = {
      endpoint: moto.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    sfn = new SFNClient(config);
    stateMachineArn = await createPipelineStateMachine(sfn, 'stedi-pipeline-test');
    await new CloudFormationClient(config).send(
      new CreateStackCommand({
        StackName: 'stedi-lakehouse-test',
        TemplateBody: JSON.stringify({
          Resources: { Queue: { Type: 'AWS::SQS::Queue' } },
          Outputs: { StateMachineArn: { Value: stateMachineArn }, DataBucketName: { Value: 'stedi-data-test' } },
        }),
      }),
    );
  }, 30_000);

  afterAll(async () => {
    await moto?.stop();
  });

  it('starts an execution found through the stack outputs and prints its ARN and console link', async () => {
    const started = stedi(['start', '--stage', 'test', '--from', 'step_trainer']);
    expect(started.stderr).toBe('');
    expect(started.status).toBe(0);
    const arn = /started (arn:aws:states:us-east-1:\d+:execution:stedi-pipeline-test:manual-\d+)/.exec(
      started.stdout,
    )?.[1];
    expect(arn).toBeDefined();
    expect(started.stdout).toContain(
      `https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/${arn}`,
    );
    const execution = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    expect(JSON.parse(execution.input!)).toEqual({ from: 'step_trainer', reason: 'manual', files: [] });
    await sfn.send(new StopExecutionCommand({ executionArn: arn }));
  });

  it('follows an execution to its end with --wait', async () => {
    const child = spawn(process.execPath, [BIN, 'start', '--stage', 'test', '--wait'], { env: env() });
    let stdout = '';
    child.stdout.on('data', (c) => (stdout += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      // Moto never finishes an execution by itself: stop it, as an operator would.
      let running: ExecutionListItem | undefined;
      await until(
        async () =>
          (running = (await sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING' })))
            .executions?.[0]) !== undefined,
        'a running execution',
        { everyMs: 100 },
      );
      await sfn.send(new StopExecutionCommand({ executionArn: required(running, 'a running execution').executionArn }));
      expect(await exited).toBe(1);
      expect(stdout).toMatch(/execution manual-\d+: ABORTED/);
    } finally {
      child.kill();
    }
  }, 20_000);

  it('lists recent executions with status and duration', () => {
    const status = stedi(['status', '--stage', 'test', '--json']);
    expect(status.status).toBe(0);
    const rows = JSON.parse(status.stdout) as unknown[];
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row).toEqual({
        execution: expect.stringMatching(/^manual-/),
        status: 'ABORTED',
        started: expect.any(String),
        duration: expect.stringMatching(/s$/),
      });
    }
    expect(stedi(['status', '--stage', 'test']).stdout).toMatch(/execution\s+status\s+started\s+duration/);
  });

  it('names the stack it cannot find', () => {
    const missing = stedi(['status', '--stage', 'nope']);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/cannot read stack stedi-lakehouse-nope/);
  });
});
