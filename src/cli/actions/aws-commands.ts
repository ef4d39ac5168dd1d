import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  HistoryEvent,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { consoleLink, stackName, stateMachineArnOf } from '../../aws/stack';
import { awsClientConfig } from '../../aws/clients';
import { compactTimestamp, formatTable, seconds } from '../common/format';

const log = (line: string) => process.stdout.write(`${line}\n`);
const POLL_MS = Number(process.env.STEDI_POLL_MS ?? 2000);

/** Clients with the SDK's defaults: region, credentials, AWS_ENDPOINT_URL from the environment (src/aws/clients.ts). */
function clients() {
  return { cfn: new CloudFormationClient(awsClientConfig()), sfn: new SFNClient(awsClientConfig()) };
}

export async function startCommand(options: { from: string; stage: string; wait?: boolean }): Promise<number> {
  const { cfn, sfn } = clients();
  const stateMachineArn = await stateMachineArnOf(cfn, options.stage);
  const name = `manual-${compactTimestamp()}`;
  const input = { from: options.from, reason: 'manual', files: [] };
  const { executionArn } = await sfn.send(
    new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }),
  );
  log(`started ${executionArn}`);
  log(`console: ${consoleLink(executionArn!)}`);
  if (!options.wait) return 0;
  return followExecution(sfn, executionArn!, name);
}

/** Follows an execution to its end, printing each state entered; 0 when it succeeds, else 1. */
export async function followExecution(sfn: SFNClient, executionArn: string, name: string): Promise<number> {
  const seen = new Set<number>();
  for (;;) {
    const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000 }));
    for (const event of history.events ?? []) printEvent(event, seen);
    const { status, error, cause } = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (status !== 'RUNNING' && status !== 'PENDING_REDRIVE') {
      log(`execution ${name}: ${status}${error ? ` (${error}: ${cause ?? ''})` : ''}`);
      return status === 'SUCCEEDED' ? 0 : 1;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function printEvent(event: HistoryEvent, seen: Set<number>): void {
  if (event.id === undefined || seen.has(event.id)) return;
  seen.add(event.id);
  if (event.stateEnteredEventDetails) log(`  → ${event.stateEnteredEventDetails.name}`);
  else if (event.taskFailedEventDetails)
    log(`  ✗ ${event.taskFailedEventDetails.error}: ${event.taskFailedEventDetails.cause ?? ''}`);
}

export async function statusCommand(options: { stage: string; limit: number; json?: boolean }): Promise<number> {
  const { cfn, sfn } = clients();
  const stateMachineArn = await stateMachineArnOf(cfn, options.stage);
  const page = await sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: options.limit }));
  const rows = (page.executions ?? []).map((e) => ({
    execution: e.name ?? '',
    status: e.status ?? '',
    started: e.startDate?.toISOString() ?? '',
    duration: e.startDate ? seconds((e.stopDate ?? new Date()).getTime() - e.startDate.getTime()) : '',
  }));
  if (options.json) log(JSON.stringify(rows));
  else
    log(
      rows.length
        ? formatTable(['execution', 'status', 'started', 'duration'], rows)
        : `no executions of ${stackName(options.stage)} yet`,
    );
  return 0;
}
