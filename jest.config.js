/**
 * Five projects. The fast loop is unit + integration (`npm run test:fast`); `npm test` and CI run all five.
 * - unit: no network, no child processes worth waiting for;
 * - integration: the local engine, the CLI, the state machine and moto-backed AWS APIs;
 * - deploy: `serverless package`, cfn-lint and deploys of the template on moto (slow: the framework);
 * - crash: a real `stedi run` killed at every file-system change it makes (slow: one run per kill point);
 * - glue: the Glue engine, glue/run_sql_job.py on local Spark against moto, compared with the DuckDB engine
 *   (slow: Spark; skipped, saying why, without `npm run setup:glue`).
 */
const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  setupFiles: ['<rootDir>/tests/setup/env.ts'],
  // Not the Python environment and jar cache of `npm run setup:glue`: crawling .venv triples jest's start.
  modulePathIgnorePatterns: ['<rootDir>/.venv/', '<rootDir>/.cache/'],
  // Transpile only (isolatedModules): `npm run check` type-checks the tests with everything else, so
  // ts-jest need not type-check each suite's imports again (the unit project: 23 s -> 12 s cold).
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json' }] },
};

// The deploy tests share one `serverless package`, made before they start and removed after them.
const packageOnce = {
  globalSetup: '<rootDir>/tests/deploy/package-setup.ts',
  globalTeardown: '<rootDir>/tests/deploy/package-teardown.ts',
};

const project = (name) => ({
  ...common,
  ...(name === 'deploy' ? packageOnce : {}),
  displayName: name,
  testMatch: [`<rootDir>/tests/${name}/**/*.test.ts`],
});

module.exports = {
  projects: ['unit', 'integration', 'deploy', 'crash', 'glue'].map(project),
  // A whole pipeline run takes 1-2 s alone but more on a loaded 2-core CI machine: not jest's 5 s default.
  testTimeout: 30_000,
  // A worker per core, not jest's cores - 1: on a 2-core CI machine, 2 workers instead of 1 took the whole
  // suite from 540 s to 363 s (most of its work is single-threaded: node, spawns, ts-jest, strace).
  maxWorkers: '100%',
};
