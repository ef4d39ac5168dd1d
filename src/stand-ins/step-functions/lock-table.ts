import { LocalDynamoDb } from '../dynamodb/dynamodb';
import { DynamoDbError, FileItemStore } from '../dynamodb/items';
import type { Lake } from '../../lake/lake';
import { DYNAMODB_RESOURCES, LOCK_CLEANUP_ASL_FILE, readAslText, substitute } from '../../statemachine/definition';
import { TaskError, LOCAL_STATE_MACHINE_ARN, startLocal, localExecutionArn } from './start-local';

// The pipeline lock's table in local runs (the local DynamoDB), its tasks' handlers, and the lock cleanup.

/** The lock table's name in local runs (on AWS: the stack's PipelineLockTable). */
export const LOCAL_LOCK_TABLE = 'stedi-pipeline-lock';
export const LOCK_TABLE_PARTITION_KEY = 'LockName';
/** The one item of the lock table: the pipeline's lock (its key in statemachines/*.asl.json). */
export const LOCK_NAME = 'pipeline';

/** The lake's lock table: a local DynamoDB table in <lake>/_dynamodb/, used under the lake lock. */
export function lockTableFor(lake: Lake): LocalDynamoDb {
  return new LocalDynamoDb([
    {
      definition: { name: LOCAL_LOCK_TABLE, partitionKey: LOCK_TABLE_PARTITION_KEY },
      store: new FileItemStore(lake.path(`_dynamodb/${LOCAL_LOCK_TABLE}.json`)),
    },
  ]);
}

/** Binds a state machine's DynamoDB tasks to a LocalDynamoDb. */
export function dynamoDbHandlers(dynamoDb: LocalDynamoDb): Record<string, (input: unknown) => Promise<unknown>> {
  const call = (action: (input: never) => Promise<unknown>) => async (input: unknown) => {
    try {
      return await action(input as never);
    } catch (error) {
      if (error instanceof DynamoDbError) throw new TaskError(error.name, error.message);
      throw error;
    }
  };
  return {
    [DYNAMODB_RESOURCES.getItem]: call((i) => dynamoDb.getItem(i)),
    [DYNAMODB_RESOURCES.putItem]: call((i) => dynamoDb.putItem(i)),
    [DYNAMODB_RESOURCES.updateItem]: call((i) => dynamoDb.updateItem(i)),
    [DYNAMODB_RESOURCES.deleteItem]: call((i) => dynamoDb.deleteItem(i)),
  };
}

/** Which execution ended how: the detail of EventBridge's "Step Functions Execution Status Change". */
export interface ExecutionStatusChange {
  executionArn: string;
  status: 'FAILED' | 'TIMED_OUT' | 'ABORTED';
}

/**
 * Runs statemachines/release-lock.asl.json locally, as the EventBridge rule starts it on AWS when an
 * execution fails, times out or is aborted: it releases the pipeline lock if that execution holds it.
 * Returns the end state: LockReleased or LockNotHeld.
 */
export async function runLockCleanup(dynamoDb: LocalDynamoDb, change: ExecutionStatusChange): Promise<string> {
  const text = readAslText(LOCK_CLEANUP_ASL_FILE);
  const definition = substitute(text, { LockTableName: LOCAL_LOCK_TABLE });
  const name = `lock-cleanup-${Date.now()}`;
  const event = {
    version: '0',
    source: 'aws.states',
    'detail-type': 'Step Functions Execution Status Change',
    detail: {
      executionArn: change.executionArn,
      stateMachineArn: LOCAL_STATE_MACHINE_ARN,
      name: change.executionArn.split(':').pop(),
      status: change.status,
    },
  };
  const execution = startLocal(definition, dynamoDbHandlers(dynamoDb), event, {
    executionName: name,
    executionArn: localExecutionArn(name),
  });
  let last = '';
  const events = (async () => {
    for await (const e of execution.eventLogs) {
      const entered = e as { type: string; state?: { name: string } };
      if (entered.type === 'StateEntered' && entered.state) last = entered.state.name;
    }
  })();
  await execution.result;
  await events;
  return last;
}
