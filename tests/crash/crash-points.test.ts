import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  DATASETS,
  DERIVED_TABLES,
  Dataset,
  LANDING_TABLES,
  TABLE_PREFIX,
  TableName,
} from '../../src/definition/layout';
import { LocalEngine } from '../../src/build/engine';
import { Catalog, Lake } from '../../src/lake/lake';
import { projectRoot } from '../../src/project';
import { LOCAL_LOCK_TABLE } from '../../src/stand-ins/step-functions/lock-table';
import { required } from '../../src/required';
import { TEST_SALT, params, query, removeDir, tempDir } from '../helpers/lake';

/*
 * A crash at any instant of a run leaves every table readable, old or new version, matching the catalog.
 *
 * A real `stedi run` is killed (SIGKILL, by strace's fault injection) at the renames, unlinks, rmdirs and
 * links it performs, one point per case. The run replaces a lake built from landing data v1 after a drop
 * of more customers, the deletion of one accelerometer file and the replacement of another (v2), so
 * every table's old and new versions differ and the validated copy gains, replaces and drops entries.
 * After each kill: every table reads with the rows its catalog entry counts, old or new; the quarantine
 * matches its count; the bucket-shaped folders (customer/trusted/..., <dataset>/validated/) hold the
 * same rows. Then the reruns go through the CLI, as a user's would, so each one first meets the lake
 * lock the killed run left (`_lock.json`, and the pipeline lock in the lock table): a partial rerun
 * (`stedi run --from step_trainer`) takes the lock over, saying so, and gives the counts of those jobs
 * rebuilt from scratch; a full `stedi run` then gives the new version of every table.
 *
 * A second set kills `stedi run --landing DIR` while it copies the files into the landing zone (at
 * each copy and each rename of the drop): no landing file is ever seen half-copied under its name, and
 * a rerun drops them all, whole, leaving no partial copy behind.
 *
 * strace follows every thread and child process (-f). It counts a system call per thread ("accounting
 * of syscalls that are subject to injection is done per syscall and per tracee", strace(1)), so
 * `when=N` kills at the first moment some thread makes its Nth such call: the kill points are worked
 * out from a traced dry run by that rule (killPoints). The lake makes all its own file changes
 * synchronously on the main thread (libuv's thread pool would spread them over its threads in no fixed
 * order), so each of them is a kill point, as the first test checks. A change of one of DuckDB's threads
 * can come after the main thread's Nth call of its kind and be out of reach; the first test checks that
 * such changes are only inside the version folders the run itself made, which nothing refers to before
 * its commit. (--seccomp-bpf would make tracing cheaper, but strace 6.1 then does not reliably deliver
 * the injected signal.)
 *
 * Sampled, deterministically, to keep the project's time down: a commit removes the previous snapshot
 * one link at a time (a dozen unlinks in one folder, then its rmdir), so of each run of consecutive
 * calls of one kind in one folder the first and the last are killed at (the ones between differ only
 * in which link of the same snapshot is gone); every other point (every rename, link and rmdir, each
 * unlink on its own) is.
 */

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const ENV = { ...process.env, STEDI_PII_SALT: TEST_SALT };
const SYSCALLS = 'rename,renameat,renameat2,unlink,unlinkat,rmdir,link,linkat';
const haveStrace = spawnSync('strace', ['-V']).status === 0;
if (!haveStrace) console.warn('skipping the crash-point tests: strace is not installed');

function stedi(args: string[], env: NodeJS.ProcessEnv = ENV): { stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env });
  if (result.status !== 0) throw new Error(`stedi ${args.join(' ')} failed: ${result.stderr}`);
  return result;
}

/** The JSON summary `stedi run --json` prints last. */
const summaryOf = (stdout: string) =>
  JSON.parse(stdout.trim().split('\n').pop()!) as {
    status: string;
    jobs: { name: string; rowsOut: number; skipped?: boolean }[];
  };

function copyLake(from: string, to: string): void {
  const result = spawnSync('cp', ['-a', from, to], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`cp -a ${from} ${to}: ${result.stderr}`);
}

type Counts = Record<TableName, number> & { rejected: Record<Dataset, number> };

function catalogCounts(catalog: Catalog): Counts {
  const counts = Object.fromEntries(
    [...LANDING_TABLES, ...DERIVED_TABLES].map((t) => [t, catalog.tables[t]?.rows ?? -1]),
  ) as unknown as Counts;
  counts.rejected = Object.fromEntries(
    DATASETS.map((d) => [d, catalog.tables[`${d}_landing`]?.rejected ?? -1]),
  ) as Record<Dataset, number>;
  return counts;
}

function expectOldOrNew(label: string, value: number, before: number, after: number): void {
  if (value !== before && value !== after)
    throw new Error(`${label}: the catalog counts ${value} rows, neither the old ${before} nor the new ${after}`);
}

/** A file-changing system call of a traced run: the thread that made it, its name and first path. */
interface TracedCall {
  tid: number;
  syscall: string;
  path: string;
}

/** The file-changing system calls of a run, in order, as `strace -f` logs them (a line per call). */
function tracedCalls(args: string[], syscalls: string, log: string, env: NodeJS.ProcessEnv = ENV): TracedCall[] {
  const result = spawnSync('strace', ['-f', '-o', log, '-e', `trace=${syscalls}`, process.execPath, BIN, ...args], {
    env,
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`traced run failed: ${result.stderr}`);
  return readFileSync(log, 'utf8')
    .split('\n')
    .flatMap((line) => {
      // "<pid> rename(\"a\", \"b\") = 0", or "<pid> rename(\"a\", \"b\" <unfinished ...>" then "<... rename resumed>"
      const call = /^(\d+)\s+(\w+)\((?:"((?:[^"\\]|\\.)*)")?/.exec(line);
      if (!call || line.includes('resumed>')) return [];
      return [{ tid: Number(call[1]), syscall: required(call[2], 'the syscall name'), path: call[3] ?? '' }];
    });
}

/** A kill point: `inject=<syscall>:signal=SIGKILL:when=<nth>` kills the run at `call`. */
interface KillPoint {
  syscall: string;
  nth: number;
  call: TracedCall;
}

/**
 * Where `when=N` kills, for each syscall and N: strace counts per thread, so at the first call (in the
 * run's order) that is some thread's Nth of that syscall. Calls no N reaches are returned as masked.
 */
function killPoints(calls: TracedCall[]): { points: KillPoint[]; masked: TracedCall[] } {
  const perThread = new Map<string, number>();
  const reached = new Set<string>();
  const points: KillPoint[] = [];
  const masked: TracedCall[] = [];
  for (const call of calls) {
    const nth = (perThread.get(`${call.tid} ${call.syscall}`) ?? 0) + 1;
    perThread.set(`${call.tid} ${call.syscall}`, nth);
    if (reached.has(`${call.syscall} ${nth}`)) masked.push(call);
    else {
      reached.add(`${call.syscall} ${nth}`);
      points.push({ syscall: call.syscall, nth, call });
    }
  }
  return { points, masked };
}

/**
 * The sample (see the top): of each run of consecutive points of one syscall in one folder, its first
 * and its last; every point that is alone in its run.
 */
function sample(points: KillPoint[]): KillPoint[] {
  const runs: KillPoint[][] = [];
  for (const point of points) {
    const last = runs.at(-1);
    const prior = last?.at(-1);
    if (last && prior?.syscall === point.syscall && path.dirname(prior.call.path) === path.dirname(point.call.path))
      last.push(point);
    else runs.push([point]);
  }
  return runs.flatMap((run) => [
    ...new Set([required(run[0], 'a run of calls'), required(run.at(-1), 'its last call')]),
  ]);
}

/** Kills `stedi <args>` at a kill point (an error when the run is not killed there). */
function killAt(point: Pick<KillPoint, 'syscall' | 'nth'>, args: string[], scratch: string): void {
  const killed = spawnSync(
    'strace',
    [
      '-f',
      '-o',
      '/dev/null',
      '-e',
      `inject=${point.syscall}:signal=SIGKILL:when=${point.nth}`,
      process.execPath,
      BIN,
      ...args,
    ],
    // A killed run cannot remove its scratch folders: keep them in this case's folder.
    { env: { ...ENV, TMPDIR: scratch }, encoding: 'utf8' },
  );
  if (killed.signal !== 'SIGKILL')
    throw new Error(`stedi ${args.join(' ')} was not killed at ${point.syscall} #${point.nth}: ${killed.stderr}`);
}

/** The pid in the lake lock a killed run left, if it got as far as taking it. */
function lockHolder(lake: string): number | undefined {
  const file = path.join(lake, '_lock.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid : undefined;
}

/** The execution the lake's lock table says holds the pipeline lock, if any. */
function pipelineLockOwner(lake: string): string | undefined {
  const file = path.join(lake, '_dynamodb', `${LOCAL_LOCK_TABLE}.json`);
  if (!existsSync(file)) return undefined;
  const { items } = JSON.parse(readFileSync(file, 'utf8')) as { items: { owner?: { S: string } }[] };
  return items[0]?.owner?.S;
}

/** Every file under a folder, by path relative to it (hidden ones too). */
function filesUnder(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => !e.isDirectory())
        .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
        .sort()
    : [];
}

// Built once, synchronously, so that each kill point is a test of its own.
const work = haveStrace ? tempDir('crash') : '';
const template = path.join(work, 'template');
/** v1 built, with v1 in landing: what `stedi run --landing extra` is killed on. */
const v1 = path.join(work, 'v1');
const extra = path.join(work, 'extra');
let old: Counts;
let fresh: Counts;
/** v1 after `stedi run --landing extra`, run whole. */
let dropped: Counts;
let traced: TracedCall[] = [];
let masked: TracedCall[] = [];
let points: KillPoint[] = [];
/** The drop's own kill points: each copy into the landing zone and each rename into place. */
let dropPoints: KillPoint[] = [];
/** Cuts a landing file into `parts` files of consecutive lines: `<name>-part-<i>.json`. */
function splitFile(file: string, parts: number): void {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  const size = Math.ceil(lines.length / parts);
  for (let i = 0; i < parts; i++)
    writeFileSync(
      file.replace(/\.json$/, `-part-${i + 1}.json`),
      lines.slice(i * size, (i + 1) * size).join('\n') + '\n',
    );
  unlinkSync(file);
}

/**
 * v2 of the landing zone: the extra files added, the second accelerometer part deleted and the third
 * replaced by its first half, so a run adds, replaces and removes validated entries.
 */
function applyV2(lake: string, extra: string): void {
  const accelerometer = path.join(lake, 'accelerometer', 'landing');
  const parts = readdirSync(accelerometer)
    .filter((n) => n.includes('-part-'))
    .sort();
  unlinkSync(path.join(accelerometer, required(parts[1], 'a second accelerometer part')));
  const third = path.join(accelerometer, required(parts[2], 'a third accelerometer part'));
  const lines = readFileSync(third, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  writeFileSync(third, lines.slice(0, Math.ceil(lines.length / 2)).join('\n') + '\n');
  for (const dataset of DATASETS) {
    for (const name of readdirSync(path.join(extra, dataset)))
      writeFileSync(path.join(lake, dataset, 'landing', name), readFileSync(path.join(extra, dataset, name)));
  }
}

if (haveStrace) {
  stedi(['generate', '--customers', '8', '--seed', '11', '--bad-lines', '0.01', '--lake', template]);
  const accelerometerFile = required(
    readdirSync(path.join(template, 'accelerometer', 'landing'))[0],
    'the generated accelerometer file',
  );
  splitFile(path.join(template, 'accelerometer', 'landing', accelerometerFile), 3);
  stedi(['generate', '--customers', '5', '--seed', '12', '--bad-lines', '0.01', '--out', extra]);
  // v2 adds customers of their own (other e-mail domain), under file names of their own.
  for (const dataset of DATASETS) {
    for (const name of readdirSync(path.join(extra, dataset))) {
      const text = readFileSync(path.join(extra, dataset, name), 'utf8').replace(/@test\.com/g, '@extra.test.com');
      writeFileSync(path.join(extra, dataset, `extra-${name}`), text);
      spawnSync('rm', [path.join(extra, dataset, name)]);
    }
  }
  stedi(['run', '--lake', template]);
  old = catalogCounts(new Lake(template).snapshotSync().catalog);
  copyLake(template, v1);
  const newLake = path.join(work, 'new');
  copyLake(template, newLake);
  applyV2(newLake, extra);
  stedi(['run', '--lake', newLake]);
  fresh = catalogCounts(new Lake(newLake).snapshotSync().catalog);
  const droppedLake = path.join(work, 'dropped');
  copyLake(v1, droppedLake);
  stedi(['run', '--lake', droppedLake, '--landing', extra]);
  dropped = catalogCounts(new Lake(droppedLake).snapshotSync().catalog);
  applyV2(template, extra);

  const dry = path.join(work, 'dry');
  mkdirSync(path.join(dry, 'tmp'), { recursive: true });
  copyLake(template, path.join(dry, 'lake'));
  const env = { ...ENV, TMPDIR: path.join(dry, 'tmp') };
  traced = tracedCalls(['run', '--lake', path.join(dry, 'lake')], SYSCALLS, path.join(dry, 'trace.log'), env);
  ({ points, masked } = killPoints(traced));
  points = sample(points);

  copyLake(v1, path.join(dry, 'v1'));
  const drop = killPoints(
    tracedCalls(
      ['run', '--lake', path.join(dry, 'v1'), '--landing', extra],
      `${SYSCALLS},copy_file_range,sendfile`,
      path.join(dry, 'drop.log'),
      env,
    ),
  ).points;
  // The drop comes first, under the lake lock: its copies, and its renames up to the last into landing.
  const renames = drop.map((p, i) => (p.syscall === 'rename' && p.call.path.endsWith('.uploading') ? i : -1));
  dropPoints = drop.slice(0, Math.max(...renames) + 1).filter((p) => p.syscall !== 'link' && p.syscall !== 'unlink');
}

const describeIfStrace = haveStrace ? describe : describe.skip;

describeIfStrace('a run killed at each of its file-system changes', () => {
  let db: DuckDBInstance;
  let plain: DuckDBConnection;
  beforeAll(async () => {
    db = await DuckDBInstance.create(':memory:');
    plain = await db.connect();
  });
  afterAll(() => {
    plain.closeSync();
    db.closeSync();
    removeDir(work);
  });

  it('has old and new versions that differ in every table, and kill points at every change the run makes in the lake', () => {
    for (const table of [...LANDING_TABLES, ...DERIVED_TABLES]) expect(fresh[table]).not.toBe(old[table]);
    const dryLake = path.join(work, 'dry', 'lake');
    const inLake = traced.filter((c) => c.path.startsWith(dryLake));
    // The lock's own changes are among them: its file linked into place and removed, the lock table written.
    expect(inLake.map((c) => `${c.syscall} ${path.relative(dryLake, c.path).split('.')[0]}`)).toEqual(
      expect.arrayContaining(['link _lock', 'unlink _lock', 'rename _dynamodb/stedi-pipeline-lock']),
    );
    // strace counts per thread: a change some other thread's Nth call comes before is out of reach. The
    // lake's own changes are all on the main thread, so only DuckDB's can be, and those are inside the
    // version folders the run itself made, which nothing refers to until its commit.
    const { versions = {} } = new Lake(template).snapshotSync().catalog;
    const committed = new Set(Object.values(versions).flatMap((v) => [v.id, v.previous]));
    const versionOf = (file: string) => /\/_versions\/.+?\/(v-[^/]+)\//.exec(file)?.[1];
    const mainThread = required(traced[0], 'a traced call').tid;
    const outOfReach = masked.filter((c) => c.path.startsWith(dryLake));
    expect(outOfReach.filter((c) => c.tid === mainThread)).toEqual([]);
    for (const call of outOfReach) expect([call.path, committed.has(versionOf(call.path))]).toEqual([call.path, false]);
    expect(points.filter((p) => p.syscall === 'rename').length).toBeGreaterThanOrEqual(5);
    expect(points.length).toBeGreaterThan(20);
    // Each sampled run of calls keeps its first and last: no kind of change in no folder is left out.
    const kinds = (list: TracedCall[]) => new Set(list.map((c) => `${c.syscall} ${path.dirname(c.path)}`));
    expect(kinds(points.map((p) => p.call))).toEqual(kinds(killPoints(traced).points.map((p) => p.call)));
    expect(dropPoints.map((p) => p.syscall).sort()).toEqual([
      ...Array<string>(3).fill('copy_file_range'),
      ...Array<string>(3).fill('rename'),
    ]);
  });

  it.each(points.map((p) => [p.syscall, p.nth, path.relative(path.join(work, 'dry'), p.call.path)] as const))(
    'leaves every table readable, old or new, after a kill at %s #%i (%s), and a rerun takes the lake over',
    async (syscall, nth) => {
      const dir = path.join(work, `${syscall}-${nth}`);
      mkdirSync(dir);
      const lakeDir = path.join(dir, 'lake');
      const scratch = path.join(dir, 'tmp');
      mkdirSync(scratch);
      copyLake(template, lakeDir);
      try {
        killAt({ syscall, nth }, ['run', '--lake', lakeDir], scratch);

        // Each table reads as its catalog entry says, and that is its old or its new version.
        const lake = new Lake(lakeDir);
        const counts = catalogCounts(await lake.readCatalog());
        const views = [...LANDING_TABLES, ...DERIVED_TABLES, ...DATASETS.map((d) => `${d}_quarantine`)];
        const [counted] = await query(
          lake,
          `select ${views.map((v) => `(select count(*) from ${v}) as ${v}`).join(', ')}`,
        );
        const read = required(counted, 'the row of counts');
        for (const table of DERIVED_TABLES) {
          expectOldOrNew(table, counts[table], old[table], fresh[table]);
          expect([table, read[table]]).toEqual([table, counts[table]]);
        }
        for (const table of LANDING_TABLES) {
          expectOldOrNew(table, counts[table], old[table], fresh[table]);
          // Landing tables read the landing files, which hold v2 from the start.
          expect([table, read[table]]).toEqual([table, fresh[table]]);
        }
        for (const dataset of DATASETS) {
          const rejected = counts.rejected[dataset];
          expectOldOrNew(`${dataset} quarantine`, rejected, old.rejected[dataset], fresh.rejected[dataset]);
          expect([dataset, read[`${dataset}_quarantine`]]).toEqual([dataset, rejected]);
        }
        // The bucket-shaped folders show the same versions: the validated copy's Parquet holds the
        // records its landing table's catalog entry counts (never a record of a file gone or changed).
        for (const dataset of DATASETS) {
          const glob = path.join(lakeDir, dataset, 'validated', '*.parquet');
          const rows = (await plain.runAndReadAll(`select count(*)::int from read_parquet('${glob}')`)).getRows();
          expect([dataset, rows[0]?.[0]]).toEqual([dataset, counts[`${dataset}_landing` as TableName]]);
        }
        for (const table of DERIVED_TABLES) {
          const glob = path.join(lakeDir, TABLE_PREFIX[table], '**', '*.parquet');
          const rows =
            counts[table] === 0
              ? [[0]]
              : (await plain.runAndReadAll(`select count(*)::int from read_parquet('${glob}')`)).getRows();
          expect([table, rows[0]?.[0]]).toEqual([table, counts[table]]);
        }

        // The reruns go through the CLI: the first meets the lock the killed run left and takes it over.
        const holder = lockHolder(lakeDir);
        const owner = pipelineLockOwner(lakeDir);
        // A partial rerun (from step_trainer) builds on whatever is committed, skipping what it may: the
        // same as those two jobs rebuilt from scratch over the same inputs.
        const rerun = stedi(['run', '--lake', lakeDir, '--from', 'step_trainer', '--json'], {
          ...ENV,
          TMPDIR: scratch,
        });
        if (holder !== undefined)
          expect(rerun.stderr).toMatch(
            new RegExp(`execution local-\\S+ left the lake locked and its process ${holder} is gone: taking over`),
          );
        else expect(rerun.stderr).not.toMatch(/taking over/);
        if (owner !== undefined)
          expect(rerun.stderr).toMatch(
            new RegExp(`lock cleanup: released the pipeline lock of execution ${owner.split(':').pop()}`),
          );
        const partial = summaryOf(rerun.stdout);
        expect(partial.status).toBe('SUCCEEDED');
        const engine = await LocalEngine.open(lake, { memoryLimit: '256MB', threads: 1, rebuild: true });
        try {
          const steps = await engine.runJob('step_trainer_landing_to_trusted', params('any', 'rebuilt'));
          const pairs = await engine.runJob('machine_learning_curated', params('any', 'rebuilt'));
          expect(partial.jobs.map((j) => [j.name, j.rowsOut])).toEqual([
            ['step_trainer_landing_to_trusted', steps.rowsOut],
            ['machine_learning_curated', pairs.rowsOut],
          ]);
        } finally {
          engine.close();
        }
        expect(existsSync(path.join(lakeDir, '_lock.json'))).toBe(false);
        // A full rerun then gives the new version of every table.
        const full = stedi(['run', '--lake', lakeDir, '--json'], { ...ENV, TMPDIR: scratch });
        expect(full.stderr).not.toMatch(/taking over|lock cleanup/);
        expect(summaryOf(full.stdout).status).toBe('SUCCEEDED');
        expect(catalogCounts(await lake.readCatalog())).toEqual(fresh);
        expect(await query(lake, 'select count(*) as n from machine_learning_curated')).toEqual([
          { n: fresh.machine_learning_curated },
        ]);
        // The rerun's commit cleared what the crash left: only current and previous versions remain, and
        // those the snapshots kept for the lake's newest runs link to (run-log.ts).
        const catalog = await lake.readCatalog();
        const retained = (catalog.retainedSnapshots ?? []).filter((g) => g !== catalog.generation);
        const linked = retained.map(
          (g) =>
            (JSON.parse(readFileSync(path.join(lakeDir, '_snapshots', `g${g}`, 'catalog.json'), 'utf8')) as Catalog)
              .versions ?? {},
        );
        for (const [key, version] of Object.entries(catalog.versions ?? {})) {
          const kept = readdirSync(path.join(lakeDir, '_versions', key)).sort();
          const expected = new Set([version.id, version.previous, ...linked.map((v) => v[key]?.id)]);
          expect([key, kept]).toEqual([key, [...expected].filter((v): v is string => v !== undefined).sort()]);
        }
        expect(readdirSync(path.join(lakeDir, '_snapshots')).sort()).toEqual(
          [catalog.generation!, ...retained].map((g) => `g${g}`).sort(),
        );
      } finally {
        removeDir(dir);
      }
    },
    90_000,
  );

  it.each(dropPoints.map((p) => [p.syscall, p.nth] as const))(
    'loses no file and shows none half-copied after `stedi run --landing` is killed at %s #%i of its drop',
    (syscall, nth) => {
      const dir = path.join(work, `drop-${syscall}-${nth}`);
      mkdirSync(dir);
      const lakeDir = path.join(dir, 'lake');
      const scratch = path.join(dir, 'tmp');
      mkdirSync(scratch);
      copyLake(v1, lakeDir);
      const before = Object.fromEntries(
        filesUnder(lakeDir)
          .filter((f) => f.includes('/landing/'))
          .map((f) => [f, readFileSync(path.join(lakeDir, f), 'utf8')]),
      );
      const sources = DATASETS.flatMap((d) =>
        readdirSync(path.join(extra, d)).map((name) => ({
          key: `${d}/landing/${name}`,
          text: readFileSync(path.join(extra, d, name), 'utf8'),
        })),
      );
      try {
        killAt({ syscall, nth }, ['run', '--lake', lakeDir, '--landing', extra], scratch);
        // Under its name each landing file is whole: as before, or the dropped file, never part of one.
        const landing = filesUnder(lakeDir).filter((f) => f.includes('/landing/'));
        for (const file of landing.filter((f) => !path.basename(f).startsWith('.'))) {
          const text = readFileSync(path.join(lakeDir, file), 'utf8');
          const whole = [before[file], sources.find((s) => s.key === file)?.text].filter((t) => t !== undefined);
          expect([file, whole.includes(text)]).toEqual([file, true]);
        }
        for (const file of Object.keys(before)) expect(landing).toContain(file);

        // The rerun drops every file again, whole, takes the lock over, and leaves no partial copy.
        const rerun = stedi(['run', '--lake', lakeDir, '--landing', extra, '--json'], { ...ENV, TMPDIR: scratch });
        expect(rerun.stderr).toMatch(/left the lake locked and its process \d+ is gone: taking over/);
        expect(summaryOf(rerun.stdout).status).toBe('SUCCEEDED');
        for (const { key, text } of sources)
          expect([key, readFileSync(path.join(lakeDir, key), 'utf8')]).toEqual([key, text]);
        expect(filesUnder(lakeDir).filter((f) => f.includes('/landing/'))).toEqual(
          [...Object.keys(before), ...sources.map((s) => s.key)].sort(),
        );
        expect(catalogCounts(new Lake(lakeDir).snapshotSync().catalog)).toEqual(dropped);
      } finally {
        removeDir(dir);
      }
    },
    60_000,
  );
});
