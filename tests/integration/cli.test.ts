import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../../src/project';
import { removeDir, tempDir } from '../helpers/lake';

// Runs the built CLI (npm test builds it first), exactly as `npx stedi` does.
const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const FIXTURES = path.join(__dirname, '../fixtures/semantics');

// Every run of a lake must use the same salt: customer_curated's customerIds come from it.
function stedi(args: string[], env: NodeJS.ProcessEnv = { STEDI_PII_SALT: 'cli-test-salt-0123456789' }) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const lastLine = (text: string) => text.trim().split('\n').pop()!;

describe('the stedi CLI', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir('cli')));
  afterEach(() => removeDir(dir));

  it('runs the pipeline over dropped files and prints a JSON summary naming all eight tables', () => {
    const run = stedi(['run', '--landing', FIXTURES, '--lake', dir, '--json'], {
      STEDI_PII_SALT: 'cli-test-salt-0123456789',
    });
    expect(run.stderr).not.toMatch(/development salt/);
    expect(run.code).toBe(0);
    const summary = JSON.parse(lastLine(run.stdout));
    expect(summary).toEqual({
      status: 'SUCCEEDED',
      execution: expect.stringMatching(/^local-/),
      jobs: expect.any(Array),
      tables: {
        customer_landing: { rows: 8 },
        accelerometer_landing: { rows: 7 },
        step_trainer_landing: { rows: 6 },
        customer_trusted: { rows: 3 },
        accelerometer_trusted: { rows: 5 },
        step_trainer_trusted: { rows: 4 },
        customer_curated: { rows: 2 },
        machine_learning_curated: { rows: 4 },
      },
      quarantined: { customer: 0, accelerometer: 0, step_trainer: 0 },
    });
    expect(summary.jobs.map((j: { name: string; status: string }) => `${j.name} ${j.status}`)).toEqual([
      'customer_landing_to_trusted SUCCEEDED',
      'accelerometer_landing_to_trusted SUCCEEDED',
      'customer_trusted_to_curated SUCCEEDED',
      'step_trainer_landing_to_trusted SUCCEEDED',
      'machine_learning_curated SUCCEEDED',
    ]);
    expect(run.stderr).toMatch(/→ MachineLearningCurated\n  ✓ machine_learning_curated: \d+ rows in, 4 out/);

    const downstream = stedi(['run', '--lake', dir, '--from', 'step_trainer', '--json']);
    expect(downstream.code).toBe(0);
    expect(JSON.parse(lastLine(downstream.stdout)).jobs).toEqual([
      { name: 'step_trainer_landing_to_trusted', status: 'SUCCEEDED', rowsOut: 4, durationMs: expect.any(Number) },
      { name: 'machine_learning_curated', status: 'SUCCEEDED', rowsOut: 4, durationMs: expect.any(Number) },
    ]);

    const failing = stedi([
      'run',
      '--lake',
      dir,
      '--from',
      'step_trainer',
      '--fail',
      'machine_learning_curated',
      '--json',
    ]);
    expect(failing.code).toBe(1);
    expect(JSON.parse(lastLine(failing.stdout))).toMatchObject({
      status: 'FAILED',
      error: expect.stringMatching(/^States.TaskFailed: job run jr_\S+ ended FAILED: injected fault/),
    });
    expect(failing.stderr).toMatch(/ALERT STEDI pipeline failed: machine_learning_curated/);

    const query = stedi([
      'query',
      '--lake',
      dir,
      '--json',
      'select serialNumber, count(*) as readings from step_trainer_trusted group by 1 order by 1',
    ]);
    expect(query.code).toBe(0);
    expect(JSON.parse(query.stdout)).toEqual([
      { serialNumber: 'S-A', readings: 2 },
      { serialNumber: 'S-C', readings: 2 },
    ]);
  });

  it('runs over what the landing zone holds when --landing is left out, with the chosen consent policy', () => {
    expect(stedi(['generate', '--customers', '30', '--lake', dir, '--seed', '2']).code).toBe(0);
    const any = JSON.parse(lastLine(stedi(['run', '--lake', dir, '--json']).stdout));
    const strict = JSON.parse(lastLine(stedi(['run', '--lake', dir, '--json', '--consent', 'since-consent']).stdout));
    expect(any.tables.customer_landing.rows).toBeGreaterThanOrEqual(30);
    expect(strict.tables.accelerometer_trusted.rows).toBeLessThan(any.tables.accelerometer_trusted.rows);
  });

  it('explains bad input and exits non-zero', () => {
    const missing = stedi(['run', '--landing', path.join(dir, 'nope'), '--lake', dir]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/--landing .*nope: no such folder/);
    const policy = stedi(['run', '--lake', dir, '--consent', 'sometimes']);
    expect(policy.code).not.toBe(0);
    expect(policy.stderr).toMatch(/sometimes.*(any|since-consent)/s);
    const badSql = stedi(['query', '--lake', dir, 'select * from no_such_table']);
    expect(badSql.code).not.toBe(0);
    expect(badSql.stderr).toMatch(/no_such_table/);
  });

  it.each(['run', 'query', 'generate'])('prints help for %s', (command) => {
    const help = stedi([command, '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(new RegExp(`Usage: stedi ${command}`));
    expect(help.stdout).toMatch(/--lake/);
  });
});
