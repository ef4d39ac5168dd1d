import { ExecutionAlreadyExists, ListExecutionsCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { PipelineRunInput, StepFunctionsPort } from '../landing-trigger/trigger';

/** The trigger's Step Functions port on AWS (or on any endpoint the SDK is pointed at). */
export function awsStepFunctionsPort(client: SFNClient, stateMachineArn: string): StepFunctionsPort {
  return {
    async hasRunningExecution() {
      const page = await client.send(
        new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING', maxResults: 1 }),
      );
      return (page.executions ?? []).length > 0;
    },
    async startExecution(name: string, input: PipelineRunInput) {
      try {
        await client.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }));
        return 'started';
      } catch (error) {
        if (error instanceof ExecutionAlreadyExists || (error as Error).name === 'ExecutionAlreadyExists')
          return 'duplicate';
        throw error;
      }
    },
  };
}
