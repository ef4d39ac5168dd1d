import { ConfigError } from '../config';

export interface OnLandingConfig {
  stateMachineArn: string;
}

const STATE_MACHINE_ARN = /^arn:aws[\w-]*:states:[\w-]+:\d{12}:stateMachine:[\w-]{1,80}$/;

/** The landing handler's settings; STATE_MACHINE_ARN is the only one it requires. */
export function readOnLandingConfig(env: NodeJS.ProcessEnv): OnLandingConfig {
  const stateMachineArn = env.STATE_MACHINE_ARN;
  if (!stateMachineArn) throw new ConfigError('STATE_MACHINE_ARN is not set: the ARN of the pipeline state machine');
  if (!STATE_MACHINE_ARN.test(stateMachineArn))
    throw new ConfigError(`STATE_MACHINE_ARN is not a state machine ARN: ${stateMachineArn}`);
  return { stateMachineArn };
}
