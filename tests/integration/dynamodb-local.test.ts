import { LocalDynamoDb } from '../../src/stand-ins/dynamodb/dynamodb';
import { AttributeValue, Item, MemoryItemStore } from '../../src/stand-ins/dynamodb/items';
import {
  AslDefinition,
  LOCK_CLEANUP_ASL_FILE,
  readAslText,
  stateNamed,
  substitute,
  substitutionNames,
} from '../../src/statemachine/definition';
import { required } from '../../src/required';
import { MotoServer, startMoto } from '../helpers/moto';

// The local DynamoDB stand-in against moto's DynamoDB: the same calls, in the same order, must
// succeed or fail alike (by the error name Step Functions gives them) and leave the same item.
// The calls are the lock states' own parameters, as the state machines resolve them, and the AWS
// sample's semaphore (aws-samples/aws-stepfunctions-examples, sam/app-control-concurrency-with-dynamodb).

type Action = 'GetItem' | 'PutItem' | 'UpdateItem' | 'DeleteItem';
interface Call {
  action: Action;
  request: Record<string, unknown>;
}

const TABLE = 'stedi-lock-test';
const KEY = { LockName: { S: 'pipeline' } };

/** A lock state's Parameters with the context and input paths resolved, as Step Functions passes them. */
function resolve(value: unknown, context: Record<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => resolve(v, context));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k.endsWith('.$')) out[k.slice(0, -2)] = context[v as string];
      else out[k] = resolve(v, context);
    }
    return out;
  }
  return value;
}

const subs = (text: string) =>
  Object.fromEntries(substitutionNames(text).map((n) => [n, n === 'LockTableName' ? TABLE : n]));
const pipelineText = readAslText();
const pipeline: AslDefinition = substitute(pipelineText, subs(pipelineText));
const cleanupText = readAslText(LOCK_CLEANUP_ASL_FILE);
const cleanup: AslDefinition = substitute(cleanupText, subs(cleanupText));

const ACTIONS: Record<string, Action> = { getItem: 'GetItem', putItem: 'PutItem', updateItem: 'UpdateItem' };
function stateCall(definition: AslDefinition, state: string, execution: string): Call {
  const s = stateNamed(definition, state);
  const action = required(ACTIONS[s.Resource!.split(':').pop()!], `the DynamoDB action of ${state}`);
  const arn = `arn:aws:states:us-east-1:123456789012:execution:pipeline:${execution}`;
  const context = {
    '$$.Execution.Id': arn,
    '$$.Execution.Name': execution,
    '$$.Execution.StartTime': '2026-11-30T10:00:00.000Z',
    '$.detail.executionArn': arn,
  };
  return { action, request: resolve(s.Parameters, context) as Record<string, unknown> };
}
const acquire = (e: string) => stateCall(pipeline, 'AcquireLock', e);
const holder = (e: string) => stateCall(pipeline, 'ReadLockHolder', e);
const release = (e: string) => stateCall(pipeline, 'ReleaseLock', e);
const releaseAfterFailure = (e: string) => stateCall(pipeline, 'ReleaseLockAfterFailure', e);
const cleanUp = (e: string) => stateCall(cleanup, 'ReleaseLockOfEndedExecution', e);

// The AWS sample's semaphore, limit 1: its acquire, its initialisation and its release.
const sampleNames = { '#currentlockcount': 'currentlockcount', '#lockownerid': 'exec-a' };
const sampleAcquire: Call = {
  action: 'UpdateItem',
  request: {
    TableName: TABLE,
    Key: KEY,
    ExpressionAttributeNames: sampleNames,
    ExpressionAttributeValues: {
      ':increase': { N: '1' },
      ':limit': { N: '1' },
      ':lockacquiredtime': { S: '2026-11-30T10:00:00.000Z' },
    },
    UpdateExpression: 'SET #currentlockcount = #currentlockcount + :increase, #lockownerid = :lockacquiredtime',
    ConditionExpression: 'currentlockcount <> :limit and attribute_not_exists(#lockownerid)',
    ReturnValues: 'UPDATED_NEW',
  },
};
const sampleInitialise: Call = {
  action: 'PutItem',
  request: {
    TableName: TABLE,
    Item: { ...KEY, currentlockcount: { N: '0' } },
    ConditionExpression: 'LockName <> :lockname',
    ExpressionAttributeValues: { ':lockname': { S: 'pipeline' } },
  },
};
const sampleRelease: Call = {
  action: 'UpdateItem',
  request: {
    TableName: TABLE,
    Key: KEY,
    ExpressionAttributeNames: sampleNames,
    ExpressionAttributeValues: { ':decrease': { N: '1' } },
    UpdateExpression: 'SET #currentlockcount = #currentlockcount - :decrease REMOVE #lockownerid',
    ConditionExpression: 'attribute_exists(#lockownerid)',
    ReturnValues: 'UPDATED_NEW',
  },
};
const getItem: Call = { action: 'GetItem', request: { TableName: TABLE, Key: KEY, ConsistentRead: true } };

const SCENARIOS: [string, Call[]][] = [
  [
    'the pipeline lock: acquire, contend, release, cleanup',
    [
      acquire('a'),
      acquire('a'),
      acquire('b'),
      holder('b'),
      release('b'),
      cleanUp('b'),
      releaseAfterFailure('a'),
      getItem,
      acquire('b'),
      cleanUp('a'),
      cleanUp('b'),
      getItem,
      release('b'),
      acquire('c'),
      release('c'),
      getItem,
    ],
  ],
  [
    'the AWS sample semaphore, limit 1',
    [
      sampleAcquire,
      sampleInitialise,
      sampleInitialise,
      sampleAcquire,
      sampleAcquire,
      getItem,
      sampleRelease,
      sampleRelease,
      getItem,
    ],
  ],
  [
    'expression edge cases',
    [
      {
        action: 'UpdateItem',
        request: {
          TableName: TABLE,
          Key: KEY,
          UpdateExpression: 'SET #n = :one',
          ConditionExpression: '#n = :one',
          ExpressionAttributeNames: { '#n': 'n' },
          ExpressionAttributeValues: { ':one': { N: '1' } },
        },
      },
      {
        action: 'UpdateItem',
        request: {
          TableName: TABLE,
          Key: KEY,
          UpdateExpression: 'SET #n = :one',
          ConditionExpression: '#n <> :one AND NOT attribute_exists(#n)',
          ExpressionAttributeNames: { '#n': 'n' },
          ExpressionAttributeValues: { ':one': { N: '1' } },
        },
      },
      {
        action: 'UpdateItem',
        request: {
          TableName: TABLE,
          Key: KEY,
          UpdateExpression: 'SET #n = #n + :one, #m = if_not_exists(#m, :one) REMOVE #gone',
          ConditionExpression: '#n BETWEEN :one AND :two OR #n IN (:two)',
          ExpressionAttributeNames: { '#n': 'n', '#m': 'm', '#gone': 'gone' },
          ExpressionAttributeValues: { ':one': { N: '1' }, ':two': { N: '2' } },
          ReturnValues: 'ALL_NEW',
        },
      },
      {
        action: 'UpdateItem',
        request: {
          TableName: TABLE,
          Key: KEY,
          UpdateExpression: 'SET #n = :one',
          ExpressionAttributeNames: { '#n': 'n' },
          ExpressionAttributeValues: { ':one': { N: '1' }, ':unused': { N: '2' } },
        },
      },
      {
        action: 'UpdateItem',
        request: {
          TableName: TABLE,
          Key: KEY,
          UpdateExpression: 'SET #k = :v',
          ExpressionAttributeNames: { '#k': 'LockName' },
          ExpressionAttributeValues: { ':v': { S: 'other' } },
        },
      },
      {
        action: 'UpdateItem',
        request: {
          TableName: TABLE,
          Key: KEY,
          UpdateExpression: 'SET #n = :nope',
          ExpressionAttributeNames: { '#n': 'n' },
        },
      },
      { action: 'DeleteItem', request: { TableName: TABLE, Key: KEY, ReturnValues: 'ALL_OLD' } },
      getItem,
    ],
  ],
];

interface Outcome {
  ok: boolean;
  error?: string;
  result?: unknown;
}

/** The error name Step Functions' DynamoDB integration gives a service error. */
const STEP_FUNCTIONS_NAME: Record<string, string> = {
  ConditionalCheckFailedException: 'DynamoDB.ConditionalCheckFailedException',
  ValidationException: 'DynamoDB.AmazonDynamoDBException',
  ResourceNotFoundException: 'DynamoDB.ResourceNotFoundException',
};

async function callMoto(moto: MotoServer, action: string, request: unknown): Promise<Outcome> {
  const response = await fetch(moto.endpoint, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.0',
      'X-Amz-Target': `DynamoDB_20120810.${action}`,
      Authorization:
        'AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: JSON.stringify(request),
  });
  const body = (await response.json()) as Record<string, unknown>;
  if (response.ok) return { ok: true, result: body };
  const type = (typeof body.__type === 'string' ? body.__type : '').split('#').pop()!;
  return { ok: false, error: STEP_FUNCTIONS_NAME[type] ?? type };
}

async function callLocal(db: LocalDynamoDb, action: Action, request: unknown): Promise<Outcome> {
  const method = { GetItem: 'getItem', PutItem: 'putItem', UpdateItem: 'updateItem', DeleteItem: 'deleteItem' }[
    action
  ] as 'getItem' | 'putItem' | 'updateItem' | 'deleteItem';
  try {
    return { ok: true, result: await db[method](request as never) };
  } catch (error) {
    return { ok: false, error: (error as Error).name };
  }
}

/** Numbers as numbers, so "5" and "5.0" compare alike; results of UPDATED_NEW (not modelled) left out. */
function normalise(outcome: Outcome, call: Call): Outcome {
  const fix = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(fix)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => (k === 'N' ? [k, Number(x as string)] : [k, fix(x)])))
        : v;
  if (!outcome.ok) return { ok: false, error: outcome.error };
  if (call.request.ReturnValues === 'UPDATED_NEW') return { ok: true };
  const result = outcome.result as { Item?: Item; Attributes?: Record<string, AttributeValue> };
  return { ok: true, result: fix({ Item: result.Item, Attributes: result.Attributes }) };
}

describe('the local DynamoDB stand-in agrees with moto', () => {
  let moto: MotoServer | undefined;
  beforeAll(async () => {
    try {
      moto = await startMoto();
    } catch (error) {
      console.warn(`skipped the moto comparison: ${(error as Error).message}`);
    }
  }, 30_000);
  afterAll(async () => moto?.stop());

  it.each(SCENARIOS)(
    '%s',
    async (_, calls) => {
      if (!moto) return;
      const created = await callMoto(moto, 'CreateTable', {
        TableName: TABLE,
        AttributeDefinitions: [{ AttributeName: 'LockName', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'LockName', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      });
      expect(created.ok).toBe(true);
      try {
        const local = new LocalDynamoDb([
          { definition: { name: TABLE, partitionKey: 'LockName' }, store: new MemoryItemStore() },
        ]);
        const seen: { call: string; moto: Outcome; local: Outcome }[] = [];
        for (const call of calls) {
          const [m, l] = [
            await callMoto(moto, call.action, call.request),
            await callLocal(local, call.action, call.request),
          ];
          seen.push({
            call: `${call.action} ${String((call.request.ConditionExpression as string | undefined) ?? '')}`,
            moto: normalise(m, call),
            local: normalise(l, call),
          });
        }
        expect(seen.map(({ call, local: l }) => ({ call, outcome: l }))).toEqual(
          seen.map(({ call, moto: m }) => ({ call, outcome: m })),
        );
        // The scenario is not vacuous: it has successes and conditional failures.
        expect(seen.some((s) => s.moto.ok)).toBe(true);
        expect(seen.some((s) => !s.moto.ok)).toBe(true);
      } finally {
        await callMoto(moto, 'DeleteTable', { TableName: TABLE });
      }
    },
    30_000,
  );
});
