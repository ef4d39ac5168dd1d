import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { required } from '../required';

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

const serviceSuffix = (code: string) =>
  ` (Service: DynamoDb, Status Code: 400, Error Code: ${code}, Request ID: local)`;

function validation(message: string): DynamoDbError {
  return new DynamoDbError('DynamoDB.AmazonDynamoDBException', `${message}${serviceSuffix('ValidationException')}`);
}

function conditionFailed(): DynamoDbError {
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

function checkAttributeValue(value: AttributeValue): void {
  const [type, ...others] = Object.keys(value ?? {});
  if (type === undefined || others.length > 0 || !['S', 'N', 'BOOL', 'NULL', 'M', 'L', 'SS', 'NS'].includes(type))
    throw validation(`Supplied AttributeValue is empty or has an unsupported type: ${JSON.stringify(value)}`);
  if ('N' in value && !Number.isFinite(Number(value.N)))
    throw validation(`A value provided cannot be converted into a number`);
}

/** ExpressionAttributeNames and Values: each must be defined where used and used where defined. */
class Placeholders {
  private readonly usedNames = new Set<string>();
  private readonly usedValues = new Set<string>();

  constructor(
    private readonly names: Record<string, string> | undefined,
    private readonly values: Record<string, AttributeValue> | undefined,
  ) {
    for (const value of Object.values(values ?? {})) checkAttributeValue(value);
  }

  name(token: string): string {
    const name = this.names?.[token];
    if (name === undefined)
      throw validation(
        `Invalid expression: An expression attribute name used in the document path is not defined; attribute name: ${token}`,
      );
    this.usedNames.add(token);
    return name;
  }

  value(token: string): AttributeValue {
    const value = this.values?.[token];
    if (value === undefined)
      throw validation(
        `Invalid expression: An expression attribute value used in expression is not defined; attribute value: ${token}`,
      );
    this.usedValues.add(token);
    return value;
  }

  checkAllUsed(): void {
    const unusedValues = Object.keys(this.values ?? {}).filter((k) => !this.usedValues.has(k));
    if (unusedValues.length > 0)
      throw validation(
        `Value provided in ExpressionAttributeValues unused in expressions: keys: {${unusedValues.join(', ')}}`,
      );
    const unusedNames = Object.keys(this.names ?? {}).filter((k) => !this.usedNames.has(k));
    if (unusedNames.length > 0)
      throw validation(
        `Value provided in ExpressionAttributeNames unused in expressions: keys: {${unusedNames.join(', ')}}`,
      );
  }
}

type Operand = (item: Item | undefined) => AttributeValue | undefined;

interface UpdateAction {
  path: string;
  apply(item: Item, old: Item | undefined): void;
}

const KEYWORDS = new Set(['AND', 'OR', 'NOT', 'BETWEEN', 'IN', 'SET', 'REMOVE', 'ADD', 'DELETE']);

/** A recursive-descent parser of the condition, update and projection expression grammars. */
class Parser {
  private readonly tokens: string[];
  private position = 0;

  constructor(
    private readonly text: string,
    private readonly placeholders: Placeholders,
  ) {
    this.tokens = text.match(/<>|<=|>=|[=<>(),.[\]+-]|[#:]?[A-Za-z0-9_]+|\S/g) ?? [];
  }

  private peek(): string | undefined {
    return this.tokens[this.position];
  }

  private next(): string {
    const token = this.tokens[this.position++];
    if (token === undefined) throw validation(`Invalid expression: Syntax error; token: "<EOF>", near: "${this.text}"`);
    return token;
  }

  private isKeyword(word: string): boolean {
    return this.peek()?.toUpperCase() === word;
  }

  private expect(token: string): void {
    const got = this.next();
    if (got !== token) throw validation(`Invalid expression: Syntax error; token: "${got}", near: "${this.text}"`);
  }

  private end(): void {
    if (this.position < this.tokens.length)
      throw validation(`Invalid expression: Syntax error; token: "${this.peek()}", near: "${this.text}"`);
  }

  /** A top-level attribute name (nested document paths are not used by the state machines). */
  private path(): string {
    const token = this.next();
    let name: string;
    if (token.startsWith('#')) name = this.placeholders.name(token);
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(token) && !KEYWORDS.has(token.toUpperCase())) name = token;
    else throw validation(`Invalid expression: Syntax error; token: "${token}", near: "${this.text}"`);
    if (this.peek() === '.' || this.peek() === '[')
      throw validation('Nested document paths are not supported by the local DynamoDB stand-in');
    return name;
  }

  private operand(): Operand {
    const token = this.peek();
    if (token?.startsWith(':')) {
      const value = this.placeholders.value(this.next());
      return () => value;
    }
    if (token === 'size') throw validation('size() is not supported by the local DynamoDB stand-in');
    const name = this.path();
    return (item) => item?.[name];
  }

  projection(): string[] {
    const names = [this.path()];
    while (this.peek() === ',') {
      this.next();
      names.push(this.path());
    }
    this.end();
    return names;
  }

  condition(): (item: Item | undefined) => boolean {
    const condition = this.or();
    this.end();
    return condition;
  }

  private or(): (item: Item | undefined) => boolean {
    let left = this.and();
    while (this.isKeyword('OR')) {
      this.next();
      const [l, r] = [left, this.and()];
      left = (item) => l(item) || r(item);
    }
    return left;
  }

  private and(): (item: Item | undefined) => boolean {
    let left = this.not();
    while (this.isKeyword('AND')) {
      this.next();
      const [l, r] = [left, this.not()];
      left = (item) => l(item) && r(item);
    }
    return left;
  }

  private not(): (item: Item | undefined) => boolean {
    if (this.isKeyword('NOT')) {
      this.next();
      const inner = this.not();
      return (item) => !inner(item);
    }
    return this.primary();
  }

  private primary(): (item: Item | undefined) => boolean {
    const token = this.peek();
    if (token === '(') {
      this.next();
      const inner = this.or();
      this.expect(')');
      return inner;
    }
    if (token === 'attribute_exists' || token === 'attribute_not_exists') {
      this.next();
      this.expect('(');
      const name = this.path();
      this.expect(')');
      return token === 'attribute_exists' ? (item) => item?.[name] !== undefined : (item) => item?.[name] === undefined;
    }
    if (token === 'begins_with') {
      this.next();
      this.expect('(');
      const subject = this.operand();
      this.expect(',');
      const prefix = this.operand();
      this.expect(')');
      return (item) => {
        const [a, b] = [subject(item), prefix(item)];
        return !!a && !!b && 'S' in a && 'S' in b && a.S.startsWith(b.S);
      };
    }
    if (token && /^(attribute_type|contains|size)$/.test(token))
      throw validation(`${token} is not supported by the local DynamoDB stand-in`);
    const left = this.operand();
    if (this.isKeyword('BETWEEN')) {
      this.next();
      const low = this.operand();
      if (!this.isKeyword('AND')) throw validation(`Invalid expression: Syntax error; near: "${this.text}"`);
      this.next();
      const high = this.operand();
      return (item) => compare(left(item), low(item), '>=') && compare(left(item), high(item), '<=');
    }
    if (this.isKeyword('IN')) {
      this.next();
      this.expect('(');
      const options = [this.operand()];
      while (this.peek() === ',') {
        this.next();
        options.push(this.operand());
      }
      this.expect(')');
      return (item) => options.some((o) => compare(left(item), o(item), '='));
    }
    const comparator = this.next();
    if (!['=', '<>', '<', '<=', '>', '>='].includes(comparator))
      throw validation(`Invalid expression: Syntax error; token: "${comparator}", near: "${this.text}"`);
    const right = this.operand();
    return (item) => compare(left(item), right(item), comparator);
  }

  /** One or more of something, separated by commas. */
  private list(one: () => void): void {
    one();
    while (this.peek() === ',') {
      this.next();
      one();
    }
  }

  update(): UpdateAction[] {
    const actions: UpdateAction[] = [];
    const seen = new Set<string>();
    const add = (action: UpdateAction) => {
      // "Two document paths overlap with each other; must remove or rewrite one of these paths"
      if (seen.has(action.path))
        throw validation(
          `Invalid UpdateExpression: Two document paths overlap with each other; path: [${action.path}]`,
        );
      seen.add(action.path);
      actions.push(action);
    };
    const clauses = new Set<string>();
    while (this.peek() !== undefined) {
      const clause = this.next().toUpperCase();
      if (clauses.has(clause))
        throw validation(
          `Invalid UpdateExpression: The "${clause}" section can only be used once in an update expression`,
        );
      clauses.add(clause);
      if (clause === 'SET') {
        this.list(() => {
          const target = this.path();
          this.expect('=');
          const value = this.setValue();
          add({
            path: target,
            apply: (item, old) => {
              item[target] = value(old);
            },
          });
        });
      } else if (clause === 'REMOVE') {
        this.list(() => {
          const target = this.path();
          add({
            path: target,
            apply: (item) => {
              delete item[target];
            },
          });
        });
      } else if (clause === 'ADD' || clause === 'DELETE') {
        throw validation(`${clause} is not supported by the local DynamoDB stand-in`);
      } else {
        throw validation(`Invalid UpdateExpression: Syntax error; token: "${clause}", near: "${this.text}"`);
      }
    }
    if (actions.length === 0) throw validation('Invalid UpdateExpression: The expression can not be empty;');
    return actions;
  }

  /** `operand`, `operand + operand`, `operand - operand` or `if_not_exists(path, operand)`. */
  private setValue(): (old: Item | undefined) => AttributeValue {
    const term = (): Operand => {
      if (this.peek() === 'if_not_exists') {
        this.next();
        this.expect('(');
        const name = this.path();
        this.expect(',');
        const fallback = this.operand();
        this.expect(')');
        return (item) => item?.[name] ?? fallback(item);
      }
      return this.operand();
    };
    const left = term();
    const resolve = (operand: Operand, old: Item | undefined) => {
      const value = operand(old);
      if (value === undefined)
        throw validation('The provided expression refers to an attribute that does not exist in the item');
      return value;
    };
    if (this.peek() === '+' || this.peek() === '-') {
      const sign = this.next();
      const right = term();
      return (old) => {
        const [a, b] = [resolve(left, old), resolve(right, old)];
        if (!('N' in a) || !('N' in b))
          throw validation('An operand in the update expression has an incorrect data type');
        return { N: String(sign === '+' ? Number(a.N) + Number(b.N) : Number(a.N) - Number(b.N)) };
      };
    }
    return (old) => structuredClone(resolve(left, old));
  }
}

/** DynamoDB's comparison: a missing operand or a type mismatch makes it false (and `<>` true). */
function compare(a: AttributeValue | undefined, b: AttributeValue | undefined, op: string): boolean {
  if (op === '<>') return !compare(a, b, '=');
  if (a === undefined || b === undefined) return false;
  const [typeA] = Object.keys(a);
  const [typeB] = Object.keys(b);
  if (typeA !== typeB) return false;
  if (op === '=') {
    if ('N' in a && 'N' in b) return Number(a.N) === Number(b.N);
    return JSON.stringify(a) === JSON.stringify(b);
  }
  let order: number;
  if ('N' in a && 'N' in b) order = Number(a.N) - Number(b.N);
  else if ('S' in a && 'S' in b) order = a.S < b.S ? -1 : a.S > b.S ? 1 : 0;
  else return false;
  return op === '<' ? order < 0 : op === '<=' ? order <= 0 : op === '>' ? order > 0 : order >= 0;
}
