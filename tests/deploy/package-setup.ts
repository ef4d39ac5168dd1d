import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, SERVERLESS, STAGE, offlineEnv } from './offline';

/**
 * The deploy project's global setup: `serverless package` once, offline, for every deploy test file
 * (template.ts reads it), instead of once per file. Jest runs it only when a deploy test is selected;
 * the workers it starts after it inherit the two variables. package-teardown.ts removes both folders.
 */
export default function packageOnce(): void {
  // The framework and serverless-esbuild leave work folders in the temporary directory: give them one of ours.
  const scratch = mkdtempSync(path.join(tmpdir(), 'stedi-sls-tmp-'));
  const outDir = mkdtempSync(path.join(tmpdir(), 'stedi-sls-package-'));
  process.env.STEDI_SLS_SCRATCH = scratch;
  process.env.STEDI_SLS_PACKAGE_DIR = outDir;
  const result = spawnSync(SERVERLESS, ['package', '--stage', STAGE, '--package', outDir], {
    cwd: ROOT,
    env: offlineEnv(scratch),
    encoding: 'utf8',
    timeout: 170_000,
  });
  if (result.status !== 0)
    throw new Error(
      `serverless package failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`,
    );
}
