import { expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Dataset, TableName } from '../../src/definition/layout';
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

/** The JSON summary `stedi run --json` prints as its last line. */
interface RunSummary {
  status: string;
  execution: string;
  tables: Record<TableName, { rows: number }>;
  quarantined: Record<Dataset, number>;
  emailCaseMismatches: number;
  landingFiles: Record<Dataset, { checked: number; reused: number; removed: number }>;
  skippedLandingFiles?: { file: string; reason: string }[];
  jobs: {
    name: string;
    status: string;
    rowsIn?: Record<string, number>;
    rowsOut: number;
    skipped?: boolean;
    durationMs: number;
  }[];
  error?: string;
}
const summaryOf = (stdout: string) => JSON.parse(lastLine(stdout)) as RunSummary;

describe('the stedi CLI', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir('cli')));
  afterEach(() => removeDir(dir));

  it('runs the pipeline over dropped files and prints a JSON summary naming all eight tables', () => {
    const run = stedi(['run', '--landing', FIXTURES, '--lake', dir, '--json', '--verbose'], {
      STEDI_PII_SALT: 'cli-test-salt-0123456789',
    });
    expect(run.stderr).not.toMatch(/development salt/);
    expect(run.code).toBe(0);
    const summary = summaryOf(run.stdout);
    expect(summary).toEqual({
      status: 'SUCCEEDED',
      execution: expect.stringMatching(/^local-/),
      jobs: expect.any(Array),
      tables: {
        customer_landing: { rows: 10 },
        accelerometer_landing: { rows: 9 },
        step_trainer_landing: { rows: 7 },
        customer_trusted: { rows: 3 },
        accelerometer_trusted: { rows: 5 },
        step_trainer_trusted: { rows: 4 },
        customer_curated: { rows: 2 },
        machine_learning_curated: { rows: 4 },
      },
      quarantined: { customer: 0, accelerometer: 0, step_trainer: 0 },
      // Each dataset's one landing file, checked into the validated copy.
      landingFiles: {
        customer: { checked: 1, reused: 0, removed: 0 },
        accelerometer: { checked: 1, reused: 0, removed: 0 },
        step_trainer: { checked: 1, reused: 0, removed: 0 },
      },
      // alice.ames@test.com: Alice's e-mail in other case (tests/fixtures/semantics/README.md).
      emailCaseMismatches: 1,
    });
    expect(summary.jobs.map((j) => `${j.name} ${j.status}`)).toEqual([
      'customer_landing_to_trusted SUCCEEDED',
      'accelerometer_landing_to_trusted SUCCEEDED',
      'customer_trusted_to_curated SUCCEEDED',
      'step_trainer_landing_to_trusted SUCCEEDED',
      'machine_learning_curated SUCCEEDED',
    ]);
    // Rows in per input table, in the order each job declares its inputs: never one sum of unlike tables.
    expect(summary.jobs.map((j) => [j.name, j.rowsIn])).toEqual([
      ['customer_landing_to_trusted', { customer_landing: 10 }],
      ['accelerometer_landing_to_trusted', { accelerometer_landing: 9, customer_trusted: 3 }],
      ['customer_trusted_to_curated', { customer_trusted: 3, accelerometer_trusted: 5 }],
      ['step_trainer_landing_to_trusted', { step_trainer_landing: 7, customer_curated: 2, customer_trusted: 3 }],
      [
        'machine_learning_curated',
        { step_trainer_trusted: 4, accelerometer_trusted: 5, customer_curated: 2, customer_trusted: 3 },
      ],
    ]);
    expect(run.stderr).toMatch(
      /\n {2}✓ accelerometer_landing_to_trusted: rebuilt, 9 accelerometer_landing \+ 3 customer_trusted rows in, 5 out;/,
    );
    expect(run.stderr).toMatch(
      /→ MachineLearningCurated\n {2}✓ machine_learning_curated: rebuilt, 4 step_trainer_trusted \+ 5 accelerometer_trusted \+ 2 customer_curated \+ 3 customer_trusted rows in, 4 out/,
    );

    // Nothing changed since: both jobs are skipped.
    const downstream = stedi(['run', '--lake', dir, '--from', 'step_trainer', '--json']);
    expect(downstream.code).toBe(0);
    const skipped = summaryOf(downstream.stdout);
    expect(skipped.jobs).toEqual([
      // A skipped job reads nothing: its rows in are its inputs' catalog counts.
      {
        name: 'step_trainer_landing_to_trusted',
        status: 'SUCCEEDED',
        rowsIn: { step_trainer_landing: 7, customer_curated: 2, customer_trusted: 3 },
        rowsOut: 4,
        skipped: true,
        durationMs: expect.any(Number),
      },
      {
        name: 'machine_learning_curated',
        status: 'SUCCEEDED',
        rowsIn: { step_trainer_trusted: 4, accelerometer_trusted: 5, customer_curated: 2, customer_trusted: 3 },
        rowsOut: 4,
        skipped: true,
        durationMs: expect.any(Number),
      },
    ]);
    expect(downstream.stderr).toMatch(
      /✓ step_trainer_landing_to_trusted: skipped, inputs unchanged \(7 step_trainer_landing \+ 2 customer_curated \+ 3 customer_trusted rows in, 4 out\)/,
    );
    // Reused, even when the run came within the file system's clock tick of the drop: the racy entry
    // stands, since its file still has the SHA-256 it recorded (landing-identity.ts).
    expect(skipped.landingFiles.step_trainer).toEqual({ checked: 0, reused: 1, removed: 0 });
    const rebuilt = stedi(['run', '--lake', dir, '--from', 'step_trainer', '--rebuild', '--json']);
    expect(rebuilt.code).toBe(0);
    expect(JSON.parse(lastLine(rebuilt.stdout))).toMatchObject({
      jobs: [
        { name: 'step_trainer_landing_to_trusted', status: 'SUCCEEDED', rowsOut: 4 },
        { name: 'machine_learning_curated', status: 'SUCCEEDED', rowsOut: 4 },
      ],
      landingFiles: { step_trainer: { checked: 1, reused: 0, removed: 0 } },
    });
    expect(rebuilt.stdout).not.toMatch(/skipped/);

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
    expect(summaryOf(failing.stdout)).toMatchObject({
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
    const any = summaryOf(stedi(['run', '--lake', dir, '--json']).stdout);
    // The lake keeps the policy it was built with: another one is refused (exit 2), naming both.
    const refused = stedi(['run', '--lake', dir, '--json', '--consent', 'since-consent']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/was built with consent policy any, and --consent asks for since-consent/);
    expect(refused.stderr).toMatch(/--change-consent/);
    const strict = summaryOf(
      stedi(['run', '--lake', dir, '--json', '--consent', 'since-consent', '--change-consent']).stdout,
    );
    expect(any.tables.customer_landing.rows).toBeGreaterThanOrEqual(30);
    expect(strict.tables.accelerometer_trusted.rows).toBeLessThan(any.tables.accelerometer_trusted.rows);
    // A run that names no policy keeps the lake's: a forgotten flag does not widen consent.
    const again = summaryOf(stedi(['run', '--lake', dir, '--json', '--rebuild']).stdout);
    expect(again.tables.accelerometer_trusted.rows).toBe(strict.tables.accelerometer_trusted.rows);
    // So does a drop, and it refuses another policy before the file lands.
    const landing = path.join(dir, 'accelerometer', 'landing');
    const before = readdirSync(landing);
    const drop = stedi([
      'drop',
      path.join(landing, before[0]!),
      '--dataset',
      'accelerometer',
      '--lake',
      dir,
      '--consent',
      'any',
    ]);
    expect(drop.code).toBe(2);
    expect(readdirSync(landing)).toEqual(before);
  });

  it('reports in text one line per job, the tables, and where to look next; states only with --verbose', () => {
    const run = stedi(['run', '--landing', FIXTURES, '--lake', dir]);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toMatch(/→ /);
    const jobLines = run.stdout.split('\n').filter((l) => /^ {2}✓ \w+: (rebuilt|appended|skipped)/.test(l));
    expect(jobLines.map((l) => /✓ (\w+):/.exec(l)?.[1])).toEqual([
      'customer_landing_to_trusted',
      'accelerometer_landing_to_trusted',
      'customer_trusted_to_curated',
      'step_trainer_landing_to_trusted',
      'machine_learning_curated',
    ]);
    expect(run.stdout).toMatch(/\nmachine_learning_curated +4\n/);
    expect(run.stdout).toMatch(/\nSUCCEEDED in \d+\.\d\ds\n/);
    expect(run.stdout).toContain(`The lake is in ${path.resolve(dir)}`);
    expect(run.stdout).toMatch(/ query "select count\(\*\) from machine_learning_curated" --lake \S+\n/);
    expect(run.stdout).toMatch(/ tables --lake \S+\n/);
    // No landing line was quarantined, so there is nothing for `stedi quarantine` to show.
    expect(run.stdout).not.toMatch(/ quarantine --lake/);
    expect(run.stdout).toMatch(
      /accelerometer readings left out because their user matches a customer's email only when case is ignored: 1 \(emails join exactly as written/,
    );
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

  it('reads a landing file through a symbolic link, and names a link it cannot read instead of passing it over', () => {
    // The lake's landing zone: customer and step-trainer files as dropped, the accelerometer file linked.
    const outside = path.join(dir, 'outside');
    mkdirSync(outside);
    const lake = path.join(dir, 'lake');
    const source = path.join(dir, 'source');
    for (const dataset of ['customer', 'step_trainer']) {
      mkdirSync(path.join(source, dataset), { recursive: true });
      copyFileSync(path.join(FIXTURES, dataset, `${dataset}-1.json`), path.join(source, dataset, `${dataset}-1.json`));
    }
    // --landing copies a linked file's content; a link to nothing is named, not dropped.
    mkdirSync(path.join(source, 'accelerometer'));
    copyFileSync(path.join(FIXTURES, 'accelerometer', 'accelerometer-1.json'), path.join(outside, 'readings.json'));
    symlinkSync(path.join(outside, 'readings.json'), path.join(source, 'accelerometer', 'linked.json'));
    symlinkSync(path.join(outside, 'gone.json'), path.join(source, 'accelerometer', 'dangling.json'));
    const dropped = stedi(['run', '--landing', source, '--lake', lake, '--json']);
    expect(dropped.code).toBe(0);
    expect(dropped.stderr).toMatch(
      `warning: --landing ${path.join(source, 'accelerometer', 'dangling.json')} not dropped: a symbolic link to ${path.join(outside, 'gone.json')}, which does not exist\n`,
    );
    expect(summaryOf(dropped.stdout).tables.accelerometer_landing).toEqual({ rows: 9 });

    // In the landing zone itself: a link to a file is read as the file, a link to nothing and a folder
    // named *.json are named in a warning and in the summary.
    const landing = path.join(lake, 'accelerometer', 'landing');
    unlinkSync(path.join(landing, 'linked.json'));
    symlinkSync(path.join(outside, 'readings.json'), path.join(landing, 'readings.json'));
    symlinkSync(path.join(outside, 'gone.json'), path.join(landing, 'dangling.json'));
    mkdirSync(path.join(landing, 'folder.json'));
    const run = stedi(['run', '--lake', lake, '--json']);
    expect(run.code).toBe(0);
    const summary = summaryOf(run.stdout);
    expect(summary.tables.accelerometer_landing).toEqual({ rows: 9 });
    expect(summary.skippedLandingFiles).toEqual([
      {
        file: 'accelerometer/landing/dangling.json',
        reason: `a symbolic link to ${path.join(outside, 'gone.json')}, which does not exist`,
      },
      { file: 'accelerometer/landing/folder.json', reason: 'a folder, not a file' },
    ]);
    expect(run.stderr).toMatch(
      /warning: landing file accelerometer\/landing\/dangling\.json not read: a symbolic link to /,
    );
    expect(run.stderr).toMatch(
      /warning: landing file accelerometer\/landing\/folder\.json not read: a folder, not a file/,
    );

    // The link's file changes: the next run sees it (its identity is the target's) and reads it again.
    const lines = readFileSync(path.join(outside, 'readings.json'), 'utf8').trim().split('\n');
    writeFileSync(path.join(outside, 'readings.json'), `${lines.slice(0, 4).join('\n')}\n`);
    const again = summaryOf(stedi(['run', '--lake', lake, '--json']).stdout);
    expect(again.landingFiles.accelerometer.checked).toBe(1);
    expect(again.tables.accelerometer_landing).toEqual({ rows: 4 });
    const query = stedi(['query', '--lake', lake, '--json', 'select count(*) as n from accelerometer_landing']);
    expect(JSON.parse(query.stdout)).toEqual([{ n: 4 }]);
    expect(query.stderr).toMatch(/warning: landing file accelerometer\/landing\/dangling\.json not read/);
  });

  it.each(['run', 'query', 'generate'])('prints help for %s', (command) => {
    const help = stedi([command, '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(new RegExp(`Usage: stedi ${command}`));
    expect(help.stdout).toMatch(/--lake/);
  });
});

describe('usage errors and unusable lakes', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir('cli-usage')));
  afterEach(() => removeDir(dir));

  it.each([
    [['run', '--bogus'], /unknown option '--bogus'/],
    [['run', '--consent', 'bogus'], /argument 'bogus' is invalid. Allowed choices are any, since-consent/],
    [['run', '--from', 'bogus'], /argument 'bogus' is invalid. Allowed choices are all, customer/],
    [['run', '--fail', 'bogus_job'], /unknown job "bogus_job"/],
    [['run', '--fail', 'machine_learning_curated:Glue.X:0'], /TIMES must be a whole number >= 1/],
    [
      ['run', '--lake', 'x', '--from', 'step_trainer', '--fail', 'customer_landing_to_trusted'],
      /--fail customer_landing_to_trusted: that job does not run when the run starts --from step_trainer \(it runs step_trainer_landing_to_trusted, machine_learning_curated\)/,
    ],
    [
      ['run', '--lake', 'x', '--from', 'accelerometer', '--fail', 'customer_landing_to_trusted:STOPPED'],
      /does not run when/,
    ],
    [['generate', '--customers', 'many', '--out', 'x'], /'many' is invalid. expected a whole number >= 1/],
    [['generate', '--customers', '3', '--bad-lines', '2', '--out', 'x'], /expected a number in \[0, 1\)/],
    [['generate', '--customers', '3'], /give exactly one of --out DIR, --lake DIR or --stage NAME/],
    [['status', '--limit', '0'], /expected a whole number >= 1/],
    [['drop', '--dataset', 'customer'], /missing required argument 'file'/],
    [['drop', 'no-such-file.json', '--dataset', 'customer'], /no-such-file.json: no such file/],
    [['drop', 'x.json', '--dataset', 'bogus'], /Allowed choices are customer, accelerometer, step_trainer/],
    [['query'], /missing required argument 'sql'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [[], /Usage: stedi/],
  ])('exit code 2 for stedi %j', (args, message) => {
    const result = stedi(args.map((a) => (a === 'x' ? path.join(dir, 'x') : a)));
    expect(result.stderr).toMatch(message);
    expect(result.code).toBe(2);
  });

  it('names a lake path that is a file as such, for every command that takes one', () => {
    const file = path.join(dir, 'not-a-folder');
    writeFileSync(file, 'x');
    // A file drop would take (a file it refuses is named first, before the lake is looked at).
    const droppable = path.join(dir, 'customer-1.json');
    writeFileSync(droppable, '{}\n');
    for (const args of [
      ['run', '--lake', file],
      ['query', '--lake', file, 'select 1'],
      ['drop', droppable, '--dataset', 'customer', '--lake', file],
      ['generate', '--customers', '2', '--lake', file],
      ['tables', '--lake', file],
      ['check', '--lake', file],
      ['quarantine', '--lake', file],
      ['watch', '--lake', file],
      ['run', '--lake', path.join(file, 'below')],
      ['tables', '--lake', path.join(file, 'below')],
    ]) {
      const result = stedi(args);
      expect([args, result.code]).toEqual([args, 2]);
      expect(result.stderr).toMatch(
        /^stedi: the lake .*not-a-folder.* (is a file, not a folder|a folder above it is a file)\n$/,
      );
    }
  });

  const canMountReadOnly =
    spawnSync('unshare', [
      '-rm',
      'sh',
      '-c',
      `mount --bind ${tmpdir()} ${tmpdir()} && mount -o remount,ro,bind ${tmpdir()} ${tmpdir()}`,
    ]).status === 0;
  (canMountReadOnly ? it : it.skip)(
    'names a read-only lake as such (a read-only bind mount in a namespace of its own)',
    () => {
      const lake = path.join(dir, 'lake');
      expect(stedi(['run', '--landing', FIXTURES, '--lake', lake]).code).toBe(0);
      const script = `mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"`;
      const readOnly = (args: string[]) => {
        const result = spawnSync('unshare', ['-rm', 'sh', '-c', script, 'sh', lake, process.execPath, BIN, ...args], {
          encoding: 'utf8',
          env: { ...process.env, STEDI_PII_SALT: 'cli-test-salt-0123456789' },
        });
        return { code: result.status, stdout: result.stdout, stderr: result.stderr };
      };
      const run = readOnly(['run', '--lake', lake]);
      expect(run.stderr).toMatch(/^stedi: the lake .* cannot be written: it is on a read-only file system\n$/);
      expect(run.code).toBe(2);
      const drop = readOnly([
        'drop',
        path.join(FIXTURES, 'customer', 'customer-1.json'),
        '--dataset',
        'customer',
        '--lake',
        lake,
      ]);
      expect(drop.stderr).toMatch(/read-only file system/);
      expect(drop.code).toBe(2);
      // Reading needs no writing.
      const query = readOnly(['query', '--lake', lake, '--json', 'select count(*) as n from customer_trusted']);
      expect([query.code, query.stdout]).toEqual([0, '[{"n":3}]\n']);
    },
  );

  it('warns that there is nothing to process when the lake has no landing files and no --landing is given', () => {
    const run = stedi(['run', '--lake', dir]);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/warning: nothing to process: .* has no landing files/);
    const withFiles = stedi(['run', '--landing', FIXTURES, '--lake', dir]);
    expect(withFiles.stderr).not.toMatch(/nothing to process/);
    expect(stedi(['run', '--lake', dir]).stderr).not.toMatch(/nothing to process/);
  });

  it('generate refuses a folder that is not empty, or a lake with landing files, unless --force', () => {
    const out = path.join(dir, 'out');
    mkdirSync(path.join(out, 'customer'), { recursive: true });
    writeFileSync(path.join(out, 'customer', 'precious.json'), '{"keep": true}\n');
    const refused = stedi(['generate', '--customers', '3', '--out', out]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--out .*out is not empty; give an empty or new folder, or --force/);
    expect(readdirSync(path.join(out, 'customer'))).toEqual(['precious.json']);
    expect(stedi(['generate', '--customers', '3', '--out', out, '--force']).code).toBe(0);
    expect(readdirSync(path.join(out, 'customer'))).not.toContain('precious.json');

    const lake = path.join(dir, 'lake');
    expect(stedi(['generate', '--customers', '3', '--lake', lake]).code).toBe(0);
    const again = stedi(['generate', '--customers', '4', '--lake', lake]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already has landing files; give --force/);
    expect(stedi(['generate', '--customers', '4', '--lake', lake, '--force']).code).toBe(0);
  });
});
