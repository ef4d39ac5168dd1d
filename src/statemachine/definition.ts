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

/** The Glue task states reachable from a state along Next links, in order. */
export function glueTasksFrom(definition: AslDefinition, start: string): string[] {
  return happyPath(definition, start).filter((n) => stateNamed(definition, n).Resource === GLUE_SYNC_RESOURCE);
}
