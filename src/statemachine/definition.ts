import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../project';
import { required } from '../required';

/** The pipeline's ASL file: what AWS runs and what `stedi run` runs. */
export const ASL_FILE = 'statemachines/pipeline.asl.json';
/** The lock-cleanup state machine: releases the pipeline lock of an execution that failed, timed out or was aborted. */
export const LOCK_CLEANUP_ASL_FILE = 'statemachines/release-lock.asl.json';

export const GLUE_SYNC_RESOURCE = 'arn:aws:states:::glue:startJobRun.sync';
export const SNS_PUBLISH_RESOURCE = 'arn:aws:states:::sns:publish';
/** Step Functions' optimized DynamoDB integrations, by API action. */
export const DYNAMODB_RESOURCES = {
  getItem: 'arn:aws:states:::dynamodb:getItem',
  putItem: 'arn:aws:states:::dynamodb:putItem',
  updateItem: 'arn:aws:states:::dynamodb:updateItem',
  deleteItem: 'arn:aws:states:::dynamodb:deleteItem',
} as const;

export interface AslState {
  Type: string;
  Resource?: string;
  Next?: string;
  End?: boolean;
  Default?: string;
  Choices?: { Next: string; [key: string]: unknown }[];
  Parameters?: Record<string, unknown>;
  Catch?: { ErrorEquals: string[]; Next: string; ResultPath?: string | null }[];
  Retry?: {
    ErrorEquals: string[];
    IntervalSeconds?: number;
    MaxAttempts?: number;
    BackoffRate?: number;
    MaxDelaySeconds?: number;
    JitterStrategy?: string;
  }[];
  TimeoutSeconds?: number;
  [key: string]: unknown;
}

export interface AslDefinition {
  StartAt: string;
  TimeoutSeconds?: number;
  States: Record<string, AslState>;
  [key: string]: unknown;
}

export class SubstitutionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SubstitutionError';
  }
}

export function readAslText(file = ASL_FILE): string {
  return readFileSync(path.join(projectRoot(), file), 'utf8');
}

/** The names of the ${…} definition substitutions the ASL file uses. */
export function substitutionNames(text = readAslText()): string[] {
  return [
    ...new Set([...text.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => required(m[1], 'a substitution name'))),
  ].sort();
}

/**
 * Fills in the ${…} definition substitutions, as Step Functions does at deploy time. Values are
 * JSON-escaped; a name without a value, or a value without a name, is an error.
 */
export function substitute(text: string, values: Record<string, string>): AslDefinition {
  const wanted = substitutionNames(text);
  const missing = wanted.filter((name) => !(name in values));
  if (missing.length > 0) throw new SubstitutionError(`no value for definition substitution(s): ${missing.join(', ')}`);
  const unused = Object.keys(values).filter((name) => !wanted.includes(name));
  if (unused.length > 0) throw new SubstitutionError(`the ASL uses no substitution named: ${unused.join(', ')}`);
  const filled = text.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_, name: string) => JSON.stringify(values[name]).slice(1, -1));
  return JSON.parse(filled) as AslDefinition;
}

/** The state called `name`: a MissingValueError naming it when the definition has none. */
export function stateNamed(definition: AslDefinition, name: string): AslState {
  return required(definition.States[name], `state ${name}`);
}

/** Task states in the order the happy path runs them, from StartAt, Choice taking its first branch. */
export function happyPath(definition: AslDefinition, from = definition.StartAt): string[] {
  const order: string[] = [];
  let name: string | undefined = from;
  while (name && !order.includes(name)) {
    order.push(name);
    const state = stateNamed(definition, name);
    name = state.Type === 'Choice' ? state.Choices?.[0]?.Next : state.Next;
  }
  return order;
}

/**
 * The job tasks reachable from a state along Next links, in order: the Glue tasks but the publish task (a run
 * of the last job's Glue job with --publish_tables, no job of its own).
 */
export function glueTasksFrom(definition: AslDefinition, start: string): string[] {
  return happyPath(definition, start).filter((n) => {
    const state = stateNamed(definition, n);
    const args = state.Parameters?.Arguments as Record<string, unknown> | undefined;
    return state.Resource === GLUE_SYNC_RESOURCE && args?.['--publish_tables'] === undefined;
  });
}

/**
 * The job a Glue task's JobName substitution stands for: `${CustomerLandingToTrustedJobName}` is
 * customer_landing_to_trusted (locally each job is named after its SQL file; on AWS the stack's job).
 */
export function jobOfSubstitution(name: string): string | undefined {
  const job = /^(\w+)JobName$/.exec(name);
  return job?.[1]?.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/** Whether a Choice rule (or one of its And/Or/Not parts) tests `variable` for the string `value`. */
function testsFor(rule: unknown, variable: string, value: string): boolean {
  if (typeof rule !== 'object' || rule === null) return false;
  const r = rule as Record<string, unknown>;
  if (r.Variable === variable && r.StringEquals === value) return true;
  return ['And', 'Or'].some(
    (k) => Array.isArray(r[k]) && (r[k] as unknown[]).some((p) => testsFor(p, variable, value)),
  );
}

/**
 * The jobs an execution started with input `from` runs, in order: ChooseFirstJob's branch for that
 * value, then every Glue task along Next links (read from the ASL file, so it cannot drift from it).
 */
export function jobsRunFrom(from: string, text = readAslText()): string[] {
  const definition = JSON.parse(text) as AslDefinition;
  const rule = stateNamed(definition, 'ChooseFirstJob').Choices?.find((c) => testsFor(c, '$.request.from', from));
  if (!rule) return [];
  return glueTasksFrom(definition, rule.Next).map((name) => {
    const jobName = stateNamed(definition, name).Parameters?.JobName;
    const substitution = typeof jobName === 'string' ? /^\$\{(\w+)\}$/.exec(jobName)?.[1] : undefined;
    return required(jobOfSubstitution(substitution ?? ''), `the job of task ${name}`);
  });
}
