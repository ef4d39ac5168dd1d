import './promise-with-resolvers'; // before aws-local-stepfunctions: see the file
import './unused-aws-deps'; // likewise
import { StateMachine, StateMachineDefinition } from 'aws-local-stepfunctions';
import { AslState, substitute } from '../../statemachine/definition';

// Starting an ASL definition on aws-local-stepfunctions, each Task bound to a local handler; the errors tasks throw.

export const LOCAL_STATE_MACHINE_ARN = 'arn:aws:states:local:000000000000:stateMachine:stedi-pipeline';

/** $$.Execution.Id of a local execution, shaped as AWS shapes execution ARNs. */
export function localExecutionArn(executionName: string): string {
  return `${LOCAL_STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${executionName}`;
}

/**
 * An error a Task reports: Step Functions matches Retry and Catch on its name, and its message is
 * the Cause. States.Timeout and States.HeartbeatTimeout have no Cause on AWS, so for those the
 * message is left undefined, and aws-local-stepfunctions' error output then has no Cause either.
 */
export class TaskError extends Error {
  constructor(name: string, cause: string | undefined) {
    super(cause ?? '');
    this.name = name;
    if (cause === undefined) Object.defineProperty(this, 'message', { value: undefined });
  }
}

/** The Cause of an API error as Step Functions' service integrations word it. */
export function serviceErrorCause(errorName: string, message: string): string {
  const [service, code] = errorName.split('.', 2);
  return `${message} (Service: ${service === 'Glue' ? 'AWSGlue' : service}; Status Code: 400; Error Code: ${code}; Request ID: local; Proxy: null)`;
}

/** Every state, those inside Map and Parallel states too: aws-local-stepfunctions binds nested tasks by name. */
function nestedStates(states: Record<string, AslState>): [string, AslState][] {
  return Object.entries(states).flatMap(([name, state]) => {
    const inner = [state.ItemProcessor, state.Iterator, ...((state.Branches as unknown[]) ?? [])] as (
      { States: Record<string, AslState> } | undefined
    )[];
    return [[name, state] as [string, AslState], ...inner.flatMap((p) => (p ? nestedStates(p.States) : []))];
  });
}

/** Starts a local execution of an ASL definition, each Task bound by its Resource. */
export function startLocal(
  definition: ReturnType<typeof substitute>,
  resources: Record<string, (input: unknown) => Promise<unknown>>,
  input: Record<string, unknown>,
  options: { executionName: string; executionArn: string; retryIntervalMs?: number; waitMs?: number },
) {
  const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  const waitTimeOverrides: Record<string, number> = {};
  for (const [name, state] of nestedStates(definition.States)) {
    if (state.Type === 'Task') {
      const handler = state.Resource ? resources[state.Resource] : undefined;
      if (!handler) throw new Error(`state ${name}: no local binding for resource ${state.Resource}`);
      handlers[name] = handler;
    }
    if (state.Retry) retryIntervalOverrides[name] = options.retryIntervalMs ?? 10;
    if (state.Type === 'Wait') waitTimeOverrides[name] = options.waitMs ?? 200;
  }
  // Validation is the tests' job (asl-validator); skipping it here saves ~200 ms per run.
  const machine = new StateMachine(definition as unknown as StateMachineDefinition, {
    validationOptions: { noValidate: true },
  });
  return machine.run(input as never, {
    overrides: { taskResourceLocalHandlers: handlers as never, retryIntervalOverrides, waitTimeOverrides },
    context: { Execution: { Name: options.executionName, Id: options.executionArn } },
  });
}
