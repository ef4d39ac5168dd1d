'use strict';
/**
 * A local serverless plugin, listed after serverless-step-functions: after a deploy that plugin reads
 * its API Gateway endpoint with provider.request(), which osls 4 removed, so `serverless deploy`
 * would fail once the stack is already updated.
 * Our state machine has no http events, hence no endpoint to show: the lookup becomes a no-op.
 */
class StepFunctionsOsls4Compat {
  constructor(serverless) {
    const stepFunctions = serverless.pluginManager.plugins.find(
      (p) => p.constructor.name === 'ServerlessStepFunctions',
    );
    if (!stepFunctions)
      throw new serverless.classes.Error(
        'deploy/step-functions-osls4-compat must be listed after serverless-step-functions',
      );
    stepFunctions.getEndpointInfo = async () => undefined;
    this.hooks = {};
  }
}

module.exports = StepFunctionsOsls4Compat;
