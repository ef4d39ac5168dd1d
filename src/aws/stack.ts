import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';

export const SERVICE_NAME = 'stedi-lakehouse';
export const stackName = (stage: string): string => `${SERVICE_NAME}-${stage}`;

/** The deployed stack's outputs (DataBucketName, StateMachineArn, AlertsTopicArn, DashboardUrl). */
export async function stackOutputs(client: CloudFormationClient, stage: string): Promise<Record<string, string>> {
  const name = stackName(stage);
  let stack;
  try {
    stack = (await client.send(new DescribeStacksCommand({ StackName: name }))).Stacks?.[0];
  } catch (error) {
    throw new Error(
      `cannot read stack ${name}: ${(error as Error).message} (deployed with \`npx serverless deploy --stage ${stage}\`?)`,
    );
  }
  if (!stack) throw new Error(`stack ${name} not found`);
  return Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
}

export async function stateMachineArnOf(client: CloudFormationClient, stage: string): Promise<string> {
  const arn = (await stackOutputs(client, stage)).StateMachineArn;
  if (!arn) throw new Error(`stack ${stackName(stage)} has no StateMachineArn output`);
  return arn;
}

export function consoleLink(executionArn: string): string {
  const region = executionArn.split(':')[3];
  return `https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${executionArn}`;
}
