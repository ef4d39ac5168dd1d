import { expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { ref, subOf, template, templateFile } from './template';

describe('serverless package: outputs and lint', () => {
  it('outputs what `stedi start` and `stedi status` read', () => {
    expect(template.Outputs.DataBucketName?.Value).toEqual(ref('DataBucket'));
    expect(template.Outputs.StateMachineArn?.Value).toEqual(ref('PipelineStateMachine'));
    expect(template.Outputs.AlertsTopicArn?.Value).toEqual(ref('AlertsTopic'));
    expect(subOf(template.Outputs.DashboardUrl?.Value)).toMatch(
      /^https:\/\/\$\{AWS::Region\}\.console\.aws\.amazon\.com\/cloudwatch\/.*\$\{PipelineDashboard\}$/,
    );
  });

  it('passes cfn-lint without errors', () => {
    const lint = spawnSync('cfn-lint', ['--format', 'json', templateFile], { encoding: 'utf8', timeout: 120_000 });
    if (lint.error && (lint.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('cfn-lint is not on PATH: install it (pip install cfn-lint) to lint the deploy template');
    }
    const findings = JSON.parse(lint.stdout || '[]') as {
      Level: string;
      Rule: { Id: string };
      Location: { Path: (string | number)[] };
      Message: string;
    }[];
    const errors = findings
      .filter((f) => f.Level === 'Error')
      .map((f) => `${f.Rule.Id} ${f.Location.Path.join('/')}: ${f.Message}`);
    expect(errors).toEqual([]);
  }, 130_000);
});
