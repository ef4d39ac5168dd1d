/**
 * Just enough of IAM's policy evaluation to ask "does this identity policy allow action A on resource R?" of a
 * CloudFormation template's statements (IAM User Guide, "Policy evaluation logic" and "IAM JSON policy
 * elements"): an explicit Deny wins, else some Allow must match; Action and Resource match with the * and ?
 * wildcards (actions ignore case, resources do not); a condition must hold for the request's context keys,
 * and a condition on a key the request does not have fails (StringLike, StringEquals on single values).
 */

/** A value of a CloudFormation template: a string or one of the intrinsic functions resolved here. */
export type TemplateValue = string | { Ref?: string; 'Fn::GetAtt'?: [string, string]; 'Fn::Sub'?: unknown };

export interface Statement {
  Effect: 'Allow' | 'Deny';
  Action: string[];
  Resource: string[]; // resolved ARNs or ARN patterns
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface Request {
  action: string;
  resource: string;
  /** Condition context keys of the request, e.g. { 's3:prefix': 'customer/' }; absent keys are absent. */
  context: Record<string, string>;
}

const wildcard = (pattern: string, flags = '') =>
  new RegExp(
    `^${pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/]/g, '\\$&')))
      .join('')}$`,
    flags,
  );

export const matchesAction = (pattern: string, action: string) => wildcard(pattern, 'i').test(action);
export const matchesResource = (pattern: string, resource: string) => wildcard(pattern).test(resource);

function conditionHolds(condition: Statement['Condition'], context: Record<string, string>): boolean {
  for (const [operator, keys] of Object.entries(condition ?? {})) {
    for (const [key, expected] of Object.entries(keys)) {
      const actual = context[key];
      if (actual === undefined) return false;
      const values = Array.isArray(expected) ? expected : [expected];
      if (operator === 'StringEquals' && !values.includes(actual)) return false;
      else if (operator === 'StringLike' && !values.some((v) => matchesResource(v, actual))) return false;
      else if (operator !== 'StringEquals' && operator !== 'StringLike')
        throw new Error(`condition operator ${operator} is not modelled`);
    }
  }
  return true;
}

/**
 * A resource pattern with its policy variables (${aws:userid}, ...) replaced by the request's values (IAM User
 * Guide, "IAM policy elements: Variables and tags"); undefined when the request has no value for one, which
 * then matches nothing.
 */
function withPolicyVariables(pattern: string, context: Record<string, string>): string | undefined {
  let missing = false;
  const filled = pattern.replace(/\$\{([\w:]+)\}/g, (_, key: string) => {
    const value = context[key];
    if (value === undefined) missing = true;
    return value ?? '';
  });
  return missing ? undefined : filled;
}

const applies = (s: Statement, r: Request) =>
  s.Action.some((a) => matchesAction(a, r.action)) &&
  s.Resource.some((p) => {
    const pattern = withPolicyVariables(p, r.context);
    return pattern !== undefined && matchesResource(pattern, r.resource);
  }) &&
  conditionHolds(s.Condition, r.context);

export function isAllowed(statements: Statement[], request: Request): boolean {
  if (statements.some((s) => s.Effect === 'Deny' && applies(s, request))) return false;
  return statements.some((s) => s.Effect === 'Allow' && applies(s, request));
}

/**
 * A template value as a string: Ref, Fn::GetAtt of an S3 bucket's Arn and Fn::Sub resolved with `values`
 * (logical ids and pseudo parameters to names); throws on anything else, so nothing is matched by accident.
 */
export function resolveTemplateString(value: TemplateValue, values: Record<string, string>): string {
  const lookup = (name: string): string => {
    if (name.endsWith('.Arn')) return `arn:aws:s3:::${lookup(name.slice(0, -'.Arn'.length))}`;
    const found = values[name];
    if (found === undefined) throw new Error(`no value for \${${name}}`);
    return found;
  };
  if (typeof value === 'string') return value;
  if (value.Ref) return lookup(value.Ref);
  if (value['Fn::GetAtt']) {
    const [id, attribute] = value['Fn::GetAtt'];
    if (attribute !== 'Arn') throw new Error(`Fn::GetAtt ${id}.${attribute} is not modelled`);
    return lookup(`${id}.Arn`);
  }
  if (typeof value['Fn::Sub'] === 'string')
    // ${!Name} is Fn::Sub's escape for a literal ${Name}: an IAM policy variable such as ${aws:userid}.
    return value['Fn::Sub'].replace(/\$\{(!?)([^}]+)\}/g, (_: string, bang: string, n: string) =>
      bang ? `\${${n}}` : lookup(n),
    );
  throw new Error(`cannot resolve ${JSON.stringify(value)}`);
}
