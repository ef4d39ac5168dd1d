import path from 'node:path';
import { projectRoot } from '../../src/project';

// How the deploy tests run the framework offline: no AWS account, dummy credentials, IMDS disabled so
// nothing waits on it. Shared by the global setup (package-setup.ts) and the tests (template.ts).

export const ROOT = projectRoot();
export const SERVERLESS = path.join(ROOT, 'node_modules', '.bin', 'serverless');
export const STAGE = 'test';

/** The framework's environment; `scratch`: the temporary directory it and serverless-esbuild leave work in. */
export const offlineEnv = (scratch: string): NodeJS.ProcessEnv => ({
  ...process.env,
  TMPDIR: scratch,
  AWS_ACCESS_KEY_ID: 'offline',
  AWS_SECRET_ACCESS_KEY: 'offline',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_PROFILE: '',
  SLS_TELEMETRY_DISABLED: '1',
  SLS_NOTIFICATIONS_MODE: 'off',
});
