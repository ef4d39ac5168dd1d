import { required } from '../../required';
import { Placeholders, Parser } from './expressions';
import {
  AttributeValue,
  DynamoDbError,
  Item,
  ItemStore,
  TableDefinition,
  checkAttributeValue,
  conditionFailed,
  serviceSuffix,
  validation,
} from './items';

/**
 * A local stand-in for the DynamoDB calls the state machines make through Step Functions'
 * optimized integration (arn:aws:states:::dynamodb:getItem / putItem / updateItem / deleteItem),
 * so the pipeline's lock states run locally as they do on AWS. It follows the DynamoDB API
 * reference for what those calls use:
 *
 * - items are maps of AttributeValues (S, N, BOOL, NULL, M, L, SS, NS); the key is the table's
 *   partition key, and an update may not touch it;
 * - a ConditionExpression is evaluated against the item as it is (no item: every attribute is
 *   missing) before anything is written; when it is false nothing changes and the call fails with
 *   ConditionalCheckFailedException;
 * - UpdateItem creates the item when it does not exist ("Edits an existing item's attributes, or
 *   adds a new item to the table if it does not already exist");
 * - a comparison with a missing attribute is false, except `<>`, which is true; attribute_exists,
 *   attribute_not_exists and begins_with work as documented;
 * - `SET a = b + :n` with b missing fails with ValidationException ("The provided expression
 *   refers to an attribute that does not exist in the item"), as does every placeholder that is
 *   undefined or unused;
 * - GetItem of a missing item returns no Item; ProjectionExpression keeps the named attributes.
 *
 * Errors carry the names Step Functions gives them: DynamoDB.ConditionalCheckFailedException,
 * DynamoDB.ResourceNotFoundException, and DynamoDB.AmazonDynamoDBException for a
 * ValidationException (the AWS sample "control concurrency with DynamoDB" relies on that name).
 * tests/integration/dynamodb-local.test.ts runs the same calls against moto's DynamoDB.
 */

interface RequestBase {
  TableName: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, AttributeValue>;
  ConditionExpression?: string;
}

export interface GetItemRequest {
  TableName: string;
  Key: Item;
  ConsistentRead?: boolean;
  ProjectionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
}

export interface PutItemRequest extends RequestBase {
  Item: Item;
  ReturnValues?: 'NONE' | 'ALL_OLD';
}

export interface UpdateItemRequest extends RequestBase {
  Key: Item;
  UpdateExpression?: string;
  ReturnValues?: 'NONE' | 'ALL_OLD' | 'ALL_NEW';
}

export interface DeleteItemRequest extends RequestBase {
  Key: Item;
  ReturnValues?: 'NONE' | 'ALL_OLD';
}

class LocalTable {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly definition: TableDefinition,
    private readonly store: ItemStore,
  ) {}

  /** One call at a time per table: each is read, checked and written as a unit, as DynamoDB does per item. */
  serialize<T>(work: (items: Map<string, Item>) => { result: T; changed: boolean }): Promise<T> {
    const run = this.queue.then(async () => {
      const items = await this.store.load(this.definition.partitionKey);
      const { result, changed } = work(items);
      if (changed) await this.store.save(items);
      return result;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  keyOf(key: Partial<Item>): string {
    const names = Object.keys(key ?? {});
    const value = key?.[this.definition.partitionKey];
    if (names.length !== 1 || !value || !('S' in value))
      throw validation('The provided key element does not match the schema');
    return JSON.stringify(value);
  }
}

/** The local DynamoDB: a few tables, each in an ItemStore. */
export class LocalDynamoDb {
  private readonly tables = new Map<string, LocalTable>();

  constructor(tables: { definition: TableDefinition; store: ItemStore }[]) {
    for (const { definition, store } of tables) this.tables.set(definition.name, new LocalTable(definition, store));
  }

  private table(name: string): LocalTable {
    const table = this.tables.get(name);
    if (!table)
      throw new DynamoDbError(
        'DynamoDB.ResourceNotFoundException',
        `Requested resource not found${serviceSuffix('ResourceNotFoundException')}`,
      );
    return table;
  }

  async getItem(request: GetItemRequest): Promise<{ Item?: Item }> {
    const table = this.table(request.TableName);
    const key = table.keyOf(request.Key);
    const names = new Placeholders(request.ExpressionAttributeNames, undefined);
    const projection = request.ProjectionExpression
      ? new Parser(request.ProjectionExpression, names).projection()
      : undefined;
    names.checkAllUsed();
    return table.serialize<{ Item?: Item }>((items) => {
      const item = items.get(key);
      if (!item) return { result: {}, changed: false };
      const out: Item = projection
        ? Object.fromEntries(projection.flatMap((n) => (n in item ? [[n, required(item[n], `attribute ${n}`)]] : [])))
        : item;
      return { result: { Item: structuredClone(out) }, changed: false };
    });
  }

  async putItem(request: PutItemRequest): Promise<{ Attributes?: Item }> {
    const table = this.table(request.TableName);
    const key = table.keyOf({ [table.definition.partitionKey]: request.Item?.[table.definition.partitionKey] });
    for (const value of Object.values(request.Item)) checkAttributeValue(value);
    const condition = this.parseCondition(request);
    return table.serialize((items) => {
      const old = items.get(key);
      if (condition && !condition(old)) throw conditionFailed();
      items.set(key, structuredClone(request.Item));
      return { result: request.ReturnValues === 'ALL_OLD' && old ? { Attributes: old } : {}, changed: true };
    });
  }

  async deleteItem(request: DeleteItemRequest): Promise<{ Attributes?: Item }> {
    const table = this.table(request.TableName);
    const key = table.keyOf(request.Key);
    const condition = this.parseCondition(request);
    return table.serialize((items) => {
      const old = items.get(key);
      if (condition && !condition(old)) throw conditionFailed();
      items.delete(key);
      return {
        result: request.ReturnValues === 'ALL_OLD' && old ? { Attributes: old } : {},
        changed: old !== undefined,
      };
    });
  }

  async updateItem(request: UpdateItemRequest): Promise<{ Attributes?: Item }> {
    const table = this.table(request.TableName);
    const key = table.keyOf(request.Key);
    const names = new Placeholders(request.ExpressionAttributeNames, request.ExpressionAttributeValues);
    const actions = request.UpdateExpression ? new Parser(request.UpdateExpression, names).update() : [];
    const condition = request.ConditionExpression
      ? new Parser(request.ConditionExpression, names).condition()
      : undefined;
    names.checkAllUsed();
    for (const action of actions)
      if (action.path === table.definition.partitionKey)
        throw validation(
          `One or more parameter values were invalid: Cannot update attribute ${action.path}. This attribute is part of the key`,
        );
    return table.serialize((items) => {
      const old = items.get(key);
      if (condition && !condition(old)) throw conditionFailed();
      const item: Item = structuredClone(old ?? { ...request.Key });
      for (const action of actions) action.apply(item, old);
      items.set(key, item);
      const result =
        request.ReturnValues === 'ALL_NEW'
          ? { Attributes: structuredClone(item) }
          : request.ReturnValues === 'ALL_OLD' && old
            ? { Attributes: old }
            : {};
      return { result, changed: true };
    });
  }

  private parseCondition(request: RequestBase): ((item: Item | undefined) => boolean) | undefined {
    const names = new Placeholders(request.ExpressionAttributeNames, request.ExpressionAttributeValues);
    const condition = request.ConditionExpression
      ? new Parser(request.ConditionExpression, names).condition()
      : undefined;
    names.checkAllUsed();
    return condition;
  }
}
