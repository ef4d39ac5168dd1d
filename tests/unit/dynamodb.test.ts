import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalDynamoDb } from '../../src/stand-ins/dynamodb/dynamodb';
import { FileItemStore, Item, MemoryItemStore } from '../../src/stand-ins/dynamodb/items';

// The local stand-in for the DynamoDB calls of the lock states. Each test names the behaviour of the
// DynamoDB API reference (UpdateItem, PutItem, GetItem, Condition expressions) that it models;
// tests/integration/dynamodb-local.test.ts replays the same calls against moto's DynamoDB.

const TABLE = 'locks';
const key = { LockName: { S: 'pipeline' } };
const newDb = () =>
  new LocalDynamoDb([{ definition: { name: TABLE, partitionKey: 'LockName' }, store: new MemoryItemStore() }]);
const get = async (db: LocalDynamoDb) => (await db.getItem({ TableName: TABLE, Key: key, ConsistentRead: true })).Item;
const errorOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'no error',
    (e: Error) => e.name,
  );

const acquire = (db: LocalDynamoDb, owner: string) =>
  db.updateItem({
    TableName: TABLE,
    Key: key,
    UpdateExpression: 'SET #owner = :owner',
    ConditionExpression: 'attribute_not_exists(#owner) OR #owner = :owner',
    ExpressionAttributeNames: { '#owner': 'owner' },
    ExpressionAttributeValues: { ':owner': { S: owner } },
  });
const release = (db: LocalDynamoDb, owner: string) =>
  db.updateItem({
    TableName: TABLE,
    Key: key,
    UpdateExpression: 'REMOVE #owner',
    ConditionExpression: '#owner = :owner',
    ExpressionAttributeNames: { '#owner': 'owner' },
    ExpressionAttributeValues: { ':owner': { S: owner } },
  });

describe('the local DynamoDB stand-in', () => {
  it('UpdateItem adds the item when it does not exist ("Edits an existing item\'s attributes, or adds a new item")', async () => {
    const db = newDb();
    await acquire(db, 'a');
    expect(await get(db)).toEqual({ LockName: { S: 'pipeline' }, owner: { S: 'a' } });
  });

  it('a false ConditionExpression fails with ConditionalCheckFailedException and changes nothing', async () => {
    const db = newDb();
    await acquire(db, 'a');
    expect(await errorOf(acquire(db, 'b'))).toBe('DynamoDB.ConditionalCheckFailedException');
    expect(await errorOf(release(db, 'b'))).toBe('DynamoDB.ConditionalCheckFailedException');
    expect((await get(db))?.owner).toEqual({ S: 'a' });
    await acquire(db, 'a'); // the holder may write again (a retried call)
    await release(db, 'a');
    expect(await get(db)).toEqual({ LockName: { S: 'pipeline' } });
    await acquire(db, 'b');
    expect((await get(db))?.owner).toEqual({ S: 'b' });
  });

  it('checks and writes one call at a time: of two racing conditional writes exactly one succeeds', async () => {
    const db = newDb();
    const outcomes = await Promise.all(['a', 'b', 'c'].map((o) => errorOf(acquire(db, o))));
    expect(outcomes.filter((o) => o === 'no error')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'DynamoDB.ConditionalCheckFailedException')).toHaveLength(2);
  });

  it('compares a missing attribute as DynamoDB does: = is false, <> is true, attribute_not_exists is true', async () => {
    const db = newDb();
    const write = (condition: string, values: Record<string, Item[string]>) =>
      errorOf(
        db.updateItem({
          TableName: TABLE,
          Key: key,
          UpdateExpression: 'SET #n = :one',
          ConditionExpression: condition,
          ExpressionAttributeNames: { '#n': 'n' },
          ExpressionAttributeValues: { ':one': { N: '1' }, ...values },
        }),
      );
    expect(await write('#n = :one', {})).toBe('DynamoDB.ConditionalCheckFailedException');
    expect(await write('#n < :two', { ':two': { N: '2' } })).toBe('DynamoDB.ConditionalCheckFailedException');
    expect(await write('NOT (#n <> :one)', {})).toBe('DynamoDB.ConditionalCheckFailedException');
    expect(await write('#n <> :one AND attribute_not_exists(#n)', {})).toBe('no error');
    expect(await write('#n = :one', {})).toBe('no error'); // now it exists and equals 1
    expect(await write('#n = :other', { ':other': { S: '1' } })).toBe('DynamoDB.ConditionalCheckFailedException'); // another type
  });

  it('"SET a = b + :n" with b missing is a ValidationException ("The provided expression refers to an attribute that does not exist in the item")', async () => {
    const db = newDb();
    const increment = () =>
      db.updateItem({
        TableName: TABLE,
        Key: key,
        UpdateExpression: 'SET #c = #c + :one',
        ExpressionAttributeNames: { '#c': 'count' },
        ExpressionAttributeValues: { ':one': { N: '1' } },
      });
    const error = await increment().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.name).toBe('DynamoDB.AmazonDynamoDBException');
    expect(error?.message).toMatch(/refers to an attribute that does not exist in the item.*ValidationException/);
    expect(await get(db)).toBeUndefined();
    await db.putItem({ TableName: TABLE, Item: { ...key, count: { N: '4' } } });
    await increment();
    expect((await get(db))?.count).toEqual({ N: '5' });
  });

  it('rejects an undefined or unused placeholder, and an update of the key, with ValidationException', async () => {
    const db = newDb();
    const update = (request: Partial<Parameters<LocalDynamoDb['updateItem']>[0]>) =>
      errorOf(db.updateItem({ TableName: TABLE, Key: key, UpdateExpression: 'SET #a = :a', ...request }));
    const names = { '#a': 'a' };
    const values = { ':a': { S: 'x' } };
    expect(await update({ ExpressionAttributeNames: names })).toBe('DynamoDB.AmazonDynamoDBException');
    expect(await update({ ExpressionAttributeValues: values })).toBe('DynamoDB.AmazonDynamoDBException');
    expect(await update({ ExpressionAttributeNames: { ...names, '#b': 'b' }, ExpressionAttributeValues: values })).toBe(
      'DynamoDB.AmazonDynamoDBException',
    );
    expect(
      await update({ ExpressionAttributeNames: names, ExpressionAttributeValues: { ...values, ':b': { S: 'y' } } }),
    ).toBe('DynamoDB.AmazonDynamoDBException');
    expect(await update({ ExpressionAttributeNames: { '#a': 'LockName' }, ExpressionAttributeValues: values })).toBe(
      'DynamoDB.AmazonDynamoDBException',
    );
    expect(await update({ ExpressionAttributeNames: names, ExpressionAttributeValues: values })).toBe('no error');
    expect(await errorOf(db.getItem({ TableName: 'other', Key: key }))).toBe('DynamoDB.ResourceNotFoundException');
  });

  it('GetItem of a missing item has no Item; ProjectionExpression keeps only the named attributes', async () => {
    const db = newDb();
    expect(await db.getItem({ TableName: TABLE, Key: key })).toEqual({});
    await db.putItem({ TableName: TABLE, Item: { ...key, owner: { S: 'a' }, since: { S: 't' } } });
    expect(
      await db.getItem({
        TableName: TABLE,
        Key: key,
        ProjectionExpression: '#owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
      }),
    ).toEqual({ Item: { owner: { S: 'a' } } });
  });

  it('keeps a file-backed table in one JSON file, replaced whole', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'stedi-ddb-'));
    try {
      const file = path.join(dir, 'sub', 'locks.json');
      const open = () =>
        new LocalDynamoDb([{ definition: { name: TABLE, partitionKey: 'LockName' }, store: new FileItemStore(file) }]);
      await acquire(open(), 'a');
      expect((JSON.parse(readFileSync(file, 'utf8')) as { items: unknown }).items).toEqual([
        { LockName: { S: 'pipeline' }, owner: { S: 'a' } },
      ]);
      expect(await errorOf(acquire(open(), 'b'))).toBe('DynamoDB.ConditionalCheckFailedException');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
