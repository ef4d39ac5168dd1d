import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Lake } from '../../src/lake/lake';
import { HeldLakeLock, LakeLock } from '../../src/lake/lake-lock';
import { LOCAL_LOCK_TABLE } from '../../src/stand-ins/step-functions/lock-table';
import { projectRoot } from '../../src/project';
import { query, removeDir, tempDir } from '../helpers/lake';
import { until } from '../helpers/wait';

// One execution at a time on a local lake, across real processes: `stedi run`, `stedi drop` and
// the runs of `stedi watch` wait for each other, --no-wait fails at once, a lock left by a killed
// process is taken over, and `stedi query` reads on.

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const FIXTURES = path.join(__dirname, '../fixtures/semantics');
const ENV = { ...process.env, STEDI_PII_SALT: 'lake-lock-test-salt-0123456789' };

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(args: string[]): Running {
  const child = spawn(process.execPath, [BIN, ...args], { env: ENV });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

function stedi(args: string[]) {
  const run = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** Leftovers a run that was cut short, or ran into another, leaves behind. */
function leftovers(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (/\.(staging|previous)-/.test(e.name)) found.push(path.join(d, e.name));
      if (e.isDirectory()) walk(path.join(d, e.name));
    }
  };
  walk(dir);
  return found;
}

const lockOwner = (dir: string) => {
  const file = path.join(dir, '_dynamodb', `${LOCAL_LOCK_TABLE}.json`);
  if (!existsSync(file)) return undefined;
  const { items } = JSON.parse(readFileSync(file, 'utf8')) as { items: { owner?: { S: string } }[] };
  return items[0]?.owner?.S;
};

const lastJson = (text: string) =>
  JSON.parse(
    text
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop()!,
  ) as { status: string; execution: string; tables: Record<string, { rows: number }> };

/** Holds the lake from this (test) process, as another execution would. */
const hold = (dir: string, execution: string): Promise<HeldLakeLock> =>
  new LakeLock(new Lake(dir)).acquire({ execution, executionArn: `arn:test:${execution}`, command: 'the test' });

describe('one execution at a time on a lake', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('lake-lock');
    expect(stedi(['generate', '--customers', '400', '--lake', dir, '--seed', '3']).code).toBe(0);
  });
  afterEach(() => removeDir(dir));

  it('three `stedi run` at once: each waits for the one before, saying so, and all end with the same full tables', async () => {
    const gate = await hold(dir, 'gate');
    const runs = [1, 2, 3].map(() => start(['run', '--lake', dir, '--json']));
    try {
      await until(
        () => runs.every((r) => r.output().includes('waiting for execution gate to finish')),
        'all three to wait',
      );
      await gate.release();
      expect(await Promise.all(runs.map((r) => r.exited))).toEqual([0, 0, 0]);
    } finally {
      await gate.release();
      for (const r of runs) r.child.kill('SIGKILL');
    }
    const outputs = runs.map((r) => r.output());
    const summaries = outputs.map(lastJson);
    const names = summaries.map((s) => s.execution);
    // after the gate, two of them waited for another of the three
    const waitedForRun = outputs.filter((o) => names.some((n) => o.includes(`waiting for execution ${n} to finish`)));
    expect(waitedForRun.length).toBeGreaterThanOrEqual(2);
    expect(summaries.map((s) => s.status)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    const [first, second, third] = summaries.map((s) => s.tables);
    expect(second).toEqual(first);
    expect(third).toEqual(first);
    expect(first?.machine_learning_curated?.rows).toBeGreaterThan(0);
    for (const o of outputs) expect(o).not.toMatch(/ENOENT|ALERT/);
    expect(leftovers(dir)).toEqual([]);
    expect(existsSync(path.join(dir, '_lock.json'))).toBe(false);
    expect(existsSync(path.join(dir, '_alerts.jsonl'))).toBe(false);
    expect(lockOwner(dir)).toBeUndefined();
  }, 90_000);

  it('takes over from a run killed with kill -9 while it held the lake, releasing the pipeline lock it left', async () => {
    const victim = start(['run', '--lake', dir, '--verbose']);
    await until(() => victim.output().includes('→ ChooseFirstJob'), 'the run to hold the pipeline lock');
    victim.child.kill('SIGKILL');
    await victim.exited;
    const execution = /execution (local-\S+) of/.exec(victim.output())![1];
    const lockFile = JSON.parse(readFileSync(path.join(dir, '_lock.json'), 'utf8')) as {
      execution: string;
      pid: number;
    };
    expect(lockFile).toMatchObject({ execution, pid: victim.child.pid });
    expect(lockOwner(dir)).toMatch(new RegExp(`:${execution}$`));

    const next = stedi(['run', '--lake', dir, '--json']);
    expect(next.code).toBe(0);
    expect(next.stderr).toContain(
      `execution ${execution} left the lake locked and its process ${victim.child.pid} is gone: taking over`,
    );
    expect(next.stderr).toContain(`lock cleanup: released the pipeline lock of execution ${execution}`);
    expect(lastJson(next.stdout).status).toBe('SUCCEEDED');
    expect(existsSync(path.join(dir, '_lock.json'))).toBe(false);
    expect(lockOwner(dir)).toBeUndefined();
  }, 60_000);

  it('--no-wait fails at once with exit code 75, naming the running execution, and changes nothing', async () => {
    const held = await hold(dir, 'busy-run');
    try {
      const run = stedi(['run', '--lake', dir, '--landing', FIXTURES, '--no-wait']);
      expect(run.code).toBe(75);
      expect(run.stderr).toMatch(
        /^stedi: execution busy-run is running on this lake \(the test, pid \d+ on .+, since .+\); not waiting \(--no-wait\)\n$/,
      );
      const drop = stedi([
        'drop',
        path.join(FIXTURES, 'customer', 'customer-1.json'),
        '--dataset',
        'customer',
        '--lake',
        dir,
        '--no-wait',
      ]);
      expect(drop.code).toBe(75);
      expect(drop.stderr).toMatch(/execution busy-run is running on this lake/);
      expect(existsSync(path.join(dir, '_catalog.json'))).toBe(false);
      expect(existsSync(path.join(dir, 'customer', 'landing', 'customer-1.json'))).toBe(false);
    } finally {
      await held.release();
    }
  }, 60_000);

  it('`stedi generate --lake` replaces the landing zone only when no execution runs on the lake', async () => {
    const landing = path.join(dir, 'customer', 'landing');
    expect(stedi(['generate', '--customers', '5', '--lake', dir, '--force']).code).toBe(0);
    const before = readdirSync(landing).map((f) => readFileSync(path.join(landing, f), 'utf8'));
    const held = await hold(dir, 'busy-run');
    try {
      const refused = stedi(['generate', '--customers', '9', '--lake', dir, '--force', '--no-wait']);
      expect(refused.code).toBe(75);
      expect(refused.stderr).toMatch(/execution busy-run is running on this lake/);
      expect(readdirSync(landing).map((f) => readFileSync(path.join(landing, f), 'utf8'))).toEqual(before);
      const waiting = start(['generate', '--customers', '9', '--lake', dir, '--force']);
      await until(() => waiting.output().includes('waiting for execution busy-run to finish'), 'generate to wait');
      expect(readdirSync(landing).map((f) => readFileSync(path.join(landing, f), 'utf8'))).toEqual(before);
      await held.release();
      expect(await waiting.exited).toBe(0);
      expect(waiting.output()).toMatch(/customer: 9 records/);
    } finally {
      await held.release();
    }
  }, 60_000);

  it('`stedi drop` drops its file, waits for the running execution, saying so, then runs', async () => {
    const gate = await hold(dir, 'gate');
    const drop = start([
      'drop',
      path.join(FIXTURES, 'customer', 'customer-1.json'),
      '--dataset',
      'customer',
      '--lake',
      dir,
    ]);
    try {
      await until(() => drop.output().includes('waiting for execution gate to finish'), 'the drop to wait');
      expect(existsSync(path.join(dir, 'customer', 'landing', 'customer-1.json'))).toBe(true);
      expect(existsSync(path.join(dir, '_catalog.json'))).toBe(false); // nothing ran yet
      await gate.release();
      expect(await drop.exited).toBe(0);
    } finally {
      await gate.release();
      drop.child.kill('SIGKILL');
    }
    expect(drop.output()).toMatch(/execution s3-\w+ SUCCEEDED/);
  }, 60_000);

  // Whichever notices the drop first, `stedi drop` or the watcher, starts the execution; the other finds
  // it by its name (the file version's) and does not start a second one. A short batching window makes
  // the watcher likely to come first, a long one the drop.
  it.each([50, 1500])(
    '`stedi drop` while `stedi watch` (batching window %i ms) runs: one drop, one execution, which processes the file',
    async (window) => {
      expect(stedi(['run', '--lake', dir]).code).toBe(0);
      const watch = start(['watch', '--lake', dir, '--batch-window', String(window)]);
      try {
        await until(() => watch.output().includes('watching'), 'the watcher to start');
        const file = path.join(dir, 'extra-customer.json');
        const customer = {
          customerName: 'Dora Drop',
          email: 'Dora.Drop@test.com',
          phone: '8015551212',
          birthDay: '1980-01-01',
          serialNumber: 'S-DROP',
          registrationDate: 1655564300000,
          lastUpdateDate: 1655564400000,
          shareWithResearchAsOfDate: 1655564401000,
        };
        writeFileSync(file, `${JSON.stringify(customer)}\n`);
        const drop = stedi(['drop', file, '--dataset', 'customer', '--lake', dir]);
        expect(drop.code).toBe(0);
        // The watcher handles the file's notification: it starts the execution (it came first) or leaves the
        // file out, saying so, as the drop had started one.
        await until(
          () => /extra-customer\.json: left out|execution s3-\w+ started/.test(watch.output()),
          'the watcher to start an execution for the file or leave it out',
        );
        if (/execution s3-\w+ started/.test(watch.output()))
          await until(() => /execution s3-\w+ (SUCCEEDED|FAILED)/.test(watch.output()), 'the watch run to end');
        const started = [
          ...`${drop.stdout}${watch.output()}`.matchAll(/execution (s3-\w+) started: from customer/g),
        ].map((m) => m[1]);
        expect(started).toHaveLength(1);
        const name = started[0];
        // The drop reports the execution that processed its file, whoever started it.
        expect(drop.stdout).toMatch(new RegExp(`execution ${name} SUCCEEDED`));
        expect(readdirSync(path.join(dir, '_executions'))).toEqual([`${name}.json`]);
        expect(
          await query(new Lake(dir), "select count(*) as n from customer_trusted where email = 'Dora.Drop@test.com'"),
        ).toEqual([{ n: 1 }]);
      } finally {
        watch.child.kill('SIGINT');
        await watch.exited;
      }
    },
    60_000,
  );

  it('`stedi query` reads while a run holds the lake, saying so', async () => {
    expect(stedi(['run', '--lake', dir]).code).toBe(0);
    const before = await query(new Lake(dir), 'select count(*) as n from customer_curated');
    const held = await hold(dir, 'long-run');
    try {
      const q = stedi(['query', '--lake', dir, '--json', 'select count(*) as n from customer_curated']);
      expect(q.code).toBe(0);
      expect(JSON.parse(q.stdout)).toEqual(before);
      expect(q.stderr).toMatch(/^note: execution long-run is running on this lake .*reads the last committed version/);
    } finally {
      await held.release();
    }
  }, 60_000);

  it('`stedi query` on a lake whose lock file is garbage or a folder names the file and reads on; `stedi run` refuses', async () => {
    expect(stedi(['run', '--lake', dir]).code).toBe(0);
    const before = await query(new Lake(dir), 'select count(*) as n from customer_curated');
    const file = path.join(dir, '_lock.json');
    const bad: [string, () => void][] = [
      ['not JSON', () => writeFileSync(file, 'garbage{')],
      ['JSON without the fields', () => writeFileSync(file, '{"pid":"abc","host":5}\n')],
      ['a folder', () => mkdirSync(file)],
    ];
    for (const [what, make] of bad) {
      make();
      try {
        const q = stedi(['query', '--lake', dir, '--json', 'select count(*) as n from customer_curated']);
        expect([what, q.code, JSON.parse(q.stdout)]).toEqual([what, 0, before]);
        expect(q.stderr).toMatch(
          new RegExp(
            `^warning: the lake lock file ${file} (is not a lake lock file this version wrote|is a folder); remove it if no run is going on; the query reads the last committed version of each table\n$`,
          ),
        );
        // A run must not guess whether someone holds the lake: it stops, naming the file.
        const run = stedi(['run', '--lake', dir]);
        expect([what, run.code]).toEqual([what, 1]);
        expect(run.stderr).toMatch(new RegExp(`^stedi: the lake lock file ${file} `, 'm'));
        expect(run.stderr).not.toMatch(/\n\s+at |EISDIR|undefined/);
      } finally {
        rmSync(file, { recursive: true, force: true });
      }
    }
  }, 60_000);

  it('`stedi watch` and a manual `stedi run` take turns', async () => {
    const watch = start(['watch', '--lake', dir, '--batch-window', '200']);
    const gate = await hold(dir, 'gate');
    let manual: Running | undefined;
    try {
      await until(() => watch.output().includes('watching'), 'the watcher to start');
      await new Lake(dir).drop(path.join(FIXTURES, 'customer', 'customer-1.json'), 'customer');
      await until(() => watch.output().includes('waiting for execution gate to finish'), 'the watch run to wait');
      manual = start(['run', '--lake', dir]);
      await until(() => manual!.output().includes('waiting for execution gate to finish'), 'the manual run to wait');
      await gate.release();
      expect(await manual.exited).toBe(0);
      await until(() => /execution s3-\w+ (SUCCEEDED|FAILED)/.test(watch.output()), 'the watch run to end');
    } finally {
      await gate.release();
      manual?.child.kill('SIGKILL');
      watch.child.kill('SIGINT');
      await watch.exited;
    }
    const watchRun = /execution (s3-\w+) started/.exec(watch.output())![1];
    const manualRun = /execution (local-\S+) of/.exec(manual.output())![1];
    expect(watch.output()).toMatch(new RegExp(`execution ${watchRun} SUCCEEDED`));
    expect(manual.output()).toMatch(/\nSUCCEEDED in \d/);
    // whichever went first, the other waited for it
    const waited =
      watch.output().includes(`waiting for execution ${manualRun} to finish`) ||
      manual.output().includes(`waiting for execution ${watchRun} to finish`);
    expect(waited).toBe(true);
    expect(leftovers(dir)).toEqual([]);
  }, 90_000);
});
