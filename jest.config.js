/**
 * Six projects. The fast loop is unit + integration (`npm run test:fast`, at most 90 s on a 2-core machine:
 * `npm run bench:test-fast`); `npm test` and CI run all six.
 * - unit: no network, no child processes worth waiting for;
 * - integration: the local engine, the CLI, the state machine and moto-backed AWS APIs, a few runs each;
 * - slow: suites under tests/integration/ that need many whole pipeline runs, many CLI processes or their
 *   own moto servers and Step Functions executions (SLOW_SUITES); they stay in place, run by `npm test`;
 * - deploy: `serverless package`, cfn-lint and deploys of the template on moto (slow: the framework);
 * - crash: a real `stedi run` killed at every file-system change it makes (slow: one run per kill point);
 * - glue: the Glue engine, glue/run_sql_job.py on local Spark against moto, compared with the DuckDB engine
 *   (slow: Spark; skipped, saying why, without `npm run setup:glue`).
 * docs/testing.md says which suite is where and why.
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

/** Integration suites too slow for the inner loop: seconds each of CPU, mostly whole runs in child processes. */
const SLOW_SUITES = [
  'append', // many incremental runs, appended and rebuilt, against fresh lakes
  'checks', // each check against a lake broken on purpose: two whole builds, a run or a CLI process per case
  'cli', // about thirty `stedi` processes, each a whole run
  'cli-edges',
  'doctor', // damages and repairs lakes, a run each
  'glue-stack', // a moto server and the Glue stack of the Glue engine
  'history-moto', // a moto server, --history and --as-of through the CLI on --stage
  'incremental-property', // property test: random landing changes and kills against a fresh lake
  'lake-lock', // concurrent and killed CLI runs on one lake
  'landing-cases',
  'operate-moto', // a moto server, stacks and executions through the CLI
  'query-read-only',
  'reruns',
  'start-status-moto',
  'stedi-data', // the public STEDI data, when present
  'validated',
  'watch', // `stedi watch` processes and their runs
];
const slowPaths = SLOW_SUITES.map((name) => `<rootDir>/tests/integration/${name}.test.ts`);

/** A path as a regular expression matching only itself (testPathIgnorePatterns are expressions). */
const escaped = (p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

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
  projects: [
    project('unit'),
    { ...project('integration'), testPathIgnorePatterns: ['/node_modules/', ...slowPaths.map(escaped)] },
    { ...common, displayName: 'slow', testMatch: slowPaths },
    ...['deploy', 'crash', 'glue'].map(project),
  ],
  // A whole pipeline run takes 1-2 s alone but more on a loaded 2-core CI machine: not jest's 5 s default.
  testTimeout: 30_000,
  // A worker per core, not jest's cores - 1: on a 2-core CI machine, 2 workers instead of 1 took the whole
  // suite from 540 s to 363 s (most of its work is single-threaded: node, spawns, ts-jest, strace).
  maxWorkers: '100%',
  // DuckDB's native binding, loaded before any test (see the file).
  globalSetup: '<rootDir>/tests/setup/native-modules.ts',
};
