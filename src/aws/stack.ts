import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { AwsEndpointTimeoutError } from './clients';

export const SERVICE_NAME = 'stedi-lakehouse';
export const stackName = (stage: string): string => `${SERVICE_NAME}-${stage}`;

/**
 * The deployed stack's outputs (DataBucketName, StateMachineArn, AlertsTopicArn, DashboardUrl, GlueDatabaseName,
 * AthenaWorkGroupName, ...).
 */
export async function stackOutputs(client: CloudFormationClient, stage: string): Promise<Record<string, string>> {
  const name = stackName(stage);
  let stack;
  try {
    stack = (await client.send(new DescribeStacksCommand({ StackName: name }))).Stacks?.[0];
  } catch (error) {
    if (error instanceof AwsEndpointTimeoutError) throw error; // the endpoint, not the stack, is the problem
    throw new Error(
      `cannot read stack ${name}: ${(error as Error).message} (deployed with \`npx serverless deploy --stage ${stage}\`?)`,
      { cause: error },
    );
  }
  if (!stack) throw new Error(`stack ${name} not found`);
  return Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
}

/** The outputs a command needs, each named in the error when the stack lacks it (an older deploy). */
export async function requireOutputs<K extends string>(
  client: CloudFormationClient,
  stage: string,
  keys: readonly K[],
): Promise<Record<K, string>> {
  const outputs = await stackOutputs(client, stage);
  const missing = keys.filter((k) => !outputs[k]);
  if (missing.length > 0)
    throw new Error(
      `stack ${stackName(stage)} has no ${missing.join(', ')} output: deploy this version first (\`npx serverless deploy --stage ${stage}\`)`,
    );
  return Object.fromEntries(keys.map((k) => [k, outputs[k]])) as Record<K, string>;
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
