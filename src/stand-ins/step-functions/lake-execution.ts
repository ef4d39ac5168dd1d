import { LocalDynamoDb } from '../dynamodb/dynamodb';
import { Lake } from '../../lake/lake';
import { LakeLock, LakeLockOwner, describeHolder } from '../../lake/lake-lock';
import { ExecutionResult } from './execution';
import { LOCAL_LOCK_TABLE, LOCK_NAME, LOCK_TABLE_PARTITION_KEY, lockTableFor, runLockCleanup } from './lock-table';
import { localExecutionArn } from './start-local';

export interface LakeExecutionOptions {
  lake: Lake;
  executionName: string;
  /** The command, for the lock file and the messages of those waiting for it. */
  command: string;
  /** Wait for a running execution (default), or fail at once with LakeBusyError. */
  wait?: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * Runs one execution on a local lake as the only one: holds the lake lock for the whole execution
 * (waiting for another one to finish, saying so, or taking over the lock of a killed one), and does
 * locally what the EventBridge rule does on AWS: when an execution fails, or is found dead, the
 * lock-cleanup state machine releases the pipeline lock it may still hold in the lock table.
 */
export async function executeOnLake(
  options: LakeExecutionOptions,
  execute: (dynamoDb: LocalDynamoDb) => Promise<ExecutionResult>,
): Promise<ExecutionResult> {
  const { lake, executionName, log } = options;
  const owner: LakeLockOwner = {
    execution: executionName,
    executionArn: localExecutionArn(executionName),
    command: options.command,
  };
  const lock = await new LakeLock(lake).acquire(owner, {
    wait: options.wait ?? true,
    signal: options.signal,
    onWaiting: (holder) => log(`waiting for execution ${holder.execution} to finish (${describeHolder(holder)})`),
    onTakeover: (holder) =>
      log(`execution ${holder.execution} left the lake locked and its process ${holder.pid} is gone: taking over`),
  });
  try {
    const dynamoDb = lockTableFor(lake);
    await releaseOrphanedLock(dynamoDb, owner.executionArn, log);
    let result: ExecutionResult;
    try {
      result = await execute(dynamoDb);
    } catch (error) {
      await runLockCleanup(dynamoDb, { executionArn: owner.executionArn, status: 'FAILED' });
      throw error;
    }
    if (result.status === 'FAILED') {
      const end = await runLockCleanup(dynamoDb, { executionArn: owner.executionArn, status: 'FAILED' });
      if (end === 'LockReleased') log(`lock cleanup: released the pipeline lock execution ${executionName} still held`);
    }
    return result;
  } finally {
    await lock.release();
  }
}

/**
 * Under the lake lock no other execution runs, so a pipeline lock held in the lock table by another
 * execution was left by one whose process died before it could release it (AWS's EventBridge rule
 * would have seen it end): the lock-cleanup state machine releases it, as for an aborted execution.
 */
async function releaseOrphanedLock(dynamoDb: LocalDynamoDb, me: string, log: (line: string) => void): Promise<void> {
  const { Item } = await dynamoDb.getItem({
    TableName: LOCAL_LOCK_TABLE,
    Key: { [LOCK_TABLE_PARTITION_KEY]: { S: LOCK_NAME } },
    ConsistentRead: true,
  });
  const owner = Item?.owner && 'S' in Item.owner ? Item.owner.S : undefined;
  if (!owner || owner === me) return;
  const end = await runLockCleanup(dynamoDb, { executionArn: owner, status: 'ABORTED' });
  if (end === 'LockReleased')
    log(
      `lock cleanup: released the pipeline lock of execution ${owner.split(':').pop()}, which ended without releasing it`,
    );
}
