// asl-validator@4.0.0 ships no .d.ts
declare module 'asl-validator' {
  interface AslValidatorError {
    'Error code': string;
    Message: string;
    schemaError?: { instancePath: string; schemaPath: string };
  }
  function aslValidator(
    definition: unknown,
    opts?: { checkPaths?: boolean; checkArn?: boolean },
  ): {
    isValid: boolean;
    errors: AslValidatorError[];
    /** An arrow function in asl-validator's source (no `this`): safe to destructure. */
    errorsText: (separator?: string) => string;
  };
  export = aslValidator;
}
