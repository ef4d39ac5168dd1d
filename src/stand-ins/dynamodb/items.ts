import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

// The local DynamoDB's items, errors and where it keeps a table's items (see dynamodb.ts).

export type AttributeValue =
  | { S: string }
  | { N: string }
  | { BOOL: boolean }
  | { NULL: true }
  | { M: Record<string, AttributeValue> }
  | { L: AttributeValue[] }
  | { SS: string[] }
  | { NS: string[] };

export type Item = Record<string, AttributeValue>;

export interface TableDefinition {
  name: string;
  /** The partition key attribute (a string key; no sort key). */
  partitionKey: string;
}

/** An error as the Step Functions DynamoDB integration reports it: name for Retry/Catch, message for Cause. */
export class DynamoDbError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export const serviceSuffix = (code: string) =>
  ` (Service: DynamoDb, Status Code: 400, Error Code: ${code}, Request ID: local)`;

export function validation(message: string): DynamoDbError {
  return new DynamoDbError('DynamoDB.AmazonDynamoDBException', `${message}${serviceSuffix('ValidationException')}`);
}

export function conditionFailed(): DynamoDbError {
  return new DynamoDbError(
    'DynamoDB.ConditionalCheckFailedException',
    `The conditional request failed${serviceSuffix('ConditionalCheckFailedException')}`,
  );
}

/** Where a table's items live: memory, or a JSON file (the local lake keeps the lock table there). */
export interface ItemStore {
  /** The items by key (the JSON of their partition key value). */
  load(partitionKey: string): Promise<Map<string, Item>>;
  save(items: Map<string, Item>): Promise<void>;
}

export class MemoryItemStore implements ItemStore {
  private items = new Map<string, Item>();
  load(): Promise<Map<string, Item>> {
    return Promise.resolve(new Map(structuredClone([...this.items])));
  }
  save(items: Map<string, Item>): Promise<void> {
    this.items = new Map(structuredClone([...items]));
    return Promise.resolve();
  }
}

/**
 * Items in one JSON file, replaced whole by rename, so a crash leaves the old or the new content. The file
 * is small and written synchronously, on the main thread, as all the lake's own file changes are: their
 * order is then the program's, which the crash tests rely on to kill a run at each of them.
 */
export class FileItemStore implements ItemStore {
  constructor(readonly file: string) {}
  load(partitionKey: string): Promise<Map<string, Item>> {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return Promise.resolve(new Map<string, Item>());
      throw error;
    }
    const parsed = JSON.parse(text) as { items: Item[] };
    return Promise.resolve(new Map(parsed.items.map((item) => [JSON.stringify(item[partitionKey]), item])));
  }
  save(items: Map<string, Item>): Promise<void> {
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ items: [...items.values()] }, null, 2)}\n`);
    renameSync(tmp, this.file);
    return Promise.resolve();
  }
}

export function checkAttributeValue(value: AttributeValue): void {
  const [type, ...others] = Object.keys(value ?? {});
  if (type === undefined || others.length > 0 || !['S', 'N', 'BOOL', 'NULL', 'M', 'L', 'SS', 'NS'].includes(type))
    throw validation(`Supplied AttributeValue is empty or has an unsupported type: ${JSON.stringify(value)}`);
  if ('N' in value && !Number.isFinite(Number(value.N)))
    throw validation(`A value provided cannot be converted into a number`);
}
