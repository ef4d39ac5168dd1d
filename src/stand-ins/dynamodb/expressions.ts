import { AttributeValue, Item, checkAttributeValue, validation } from './items';

// The expressions of the local DynamoDB's calls: condition, update and projection (see dynamodb.ts).

/** ExpressionAttributeNames and Values: each must be defined where used and used where defined. */
export class Placeholders {
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

export type Operand = (item: Item | undefined) => AttributeValue | undefined;

export interface UpdateAction {
  path: string;
  apply(item: Item, old: Item | undefined): void;
}

const KEYWORDS = new Set(['AND', 'OR', 'NOT', 'BETWEEN', 'IN', 'SET', 'REMOVE', 'ADD', 'DELETE']);

/** A recursive-descent parser of the condition, update and projection expression grammars. */
export class Parser {
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
