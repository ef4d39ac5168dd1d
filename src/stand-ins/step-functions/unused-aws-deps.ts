/**
 * aws-local-stepfunctions requires the Lambda SDK, the credential providers and asl-validator as it
 * loads (~90 ms, a third of a small `stedi run`), yet local runs never use them: every Task is bound
 * to a local implementation and the ASL is validated by the tests. This puts stand-ins for those
 * three modules in Node's module cache, as aws-local-stepfunctions resolves them, so they are not
 * loaded; a stand-in called anyway throws an error that says why. Must load before the library.
 * (Under Jest, which keeps its own module registry, this has no effect and the real modules load.)
 */
import Module from 'node:module';
import path from 'node:path';

const UNUSED: Record<string, string[]> = {
  '@aws-sdk/client-lambda': ['LambdaClient', 'InvokeCommand'],
  '@aws-sdk/credential-providers': ['fromCognitoIdentityPool'],
  'asl-validator': [],
};

/** A function that throws when called, or constructed (the library does `new LambdaClient(...)`). */
function unavailable(moduleId: string, name: string): () => never {
  return function standIn(): never {
    throw new Error(
      `${moduleId}${name ? ` ${name}` : ''} is not loaded in local runs (src/stand-ins/step-functions/unused-aws-deps.ts): ` +
        'bind every Task of the state machine to a local implementation',
    );
  };
}

function installStandIns(): void {
  let libraryDir: string;
  try {
    libraryDir = path.dirname(require.resolve('aws-local-stepfunctions'));
  } catch {
    return; // not installed: the import that follows reports it
  }
  for (const [id, names] of Object.entries(UNUSED)) {
    let file: string;
    try {
      file = require.resolve(id, { paths: [libraryDir] });
    } catch {
      continue;
    }
    if (require.cache[file]) continue; // already loaded for real (e.g. by a test): keep it
    const standIn = new Module(file);
    standIn.filename = file;
    standIn.loaded = true;
    // asl-validator's export is the validate function itself; the SDK modules export named members.
    standIn.exports =
      names.length === 0 ? unavailable(id, '') : Object.fromEntries(names.map((n) => [n, unavailable(id, n)]));
    require.cache[file] = standIn;
  }
}

installStandIns();
