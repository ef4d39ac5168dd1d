import { afterAll, expect, jest, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DATASETS, DERIVED_TABLES } from '../../src/definition/layout';
import { Lake } from '../../src/lake/lake';
import { runsOf, tableHistory } from '../../src/lake/lake-history';
import { projectRoot } from '../../src/project';
import { describeWithGlue } from '../helpers/glue';
import { removeDir, tempDir } from '../helpers/lake';

jest.setTimeout(20 * 60_000);

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const ENV = { ...process.env, STEDI_PII_SALT: 'iceberg-history-salt-0123456789' };

function stedi(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface HistoryLine {
  runId: string | null;
  committedAt: string;
  rows: number | null;
  snapshotId?: string;
  current: boolean;
}

type Summary = { tables: Record<string, { rows: number }> };

describeWithGlue('stedi tables --history and query --as-of on the Glue engine: the Iceberg snapshots', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach(removeDir));
  /** The first test's lake and run, which the second runs again on. */
  let first: { dir: string; results: string; summary: Summary; runId: string } | undefined;
  /** The second test's run, which the third's failed run must leave published. */
  let second: { summary: Summary; runId: string; counts: string } | undefined;

  test("lists each derived table's Iceberg snapshot from the metadata the kept bucket holds: the run's id (stedi.run-id) and total-records", () => {
    const dir = tempDir('iceberg-history');
    dirs.push(dir);
    const landing = path.join(dir, 'landing');
    expect(stedi(['generate', '--customers', '60', '--out', landing, '--bad-lines', '0']).code).toBe(0);
    const run = stedi(['run', '--engine', 'glue', '--json', '--lake', path.join(dir, 'lake'), '--landing', landing]);
    expect(run.stderr).toContain('on the Glue engine');
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout.trim().split('\n').pop()!) as Summary;
    const results = path.join(dir, 'lake', '_glue');
    first = { dir, results, summary, runId: runsOf(new Lake(results)).runs[0]!.runId };

    for (const table of DERIVED_TABLES) {
      const listed = stedi(['tables', '--history', table, '--lake', results, '--json']);
      expect(listed.code).toBe(0);
      const history = JSON.parse(listed.stdout) as HistoryLine[];
      // One run, one commit per table (CREATE made the table without a snapshot). The run id is the one the
      // results lake's run log records for the run, read from the Iceberg snapshot summary, not from that log.
      const runLog = tableHistory(new Lake(results), table)!;
      expect(history).toHaveLength(1);
      expect(history[0]).toMatchObject({ runId: runLog[0]!.runId, rows: summary.tables[table]!.rows, current: true });
      expect(history[0]!.snapshotId).toMatch(/^-?\d+$/);
      expect(new Date(history[0]!.committedAt).toISOString()).toBe(history[0]!.committedAt);
    }

    const text = stedi(['tables', '--history', 'customer_trusted', '--lake', results]);
    expect(text.stdout).toMatch(/snapshot/);
    expect(text.stdout).toContain('(1 snapshot of customer_trusted, newest first)');
  });

  test('query --as-of RUN reads each derived table from the Iceberg snapshot RUN left, after a second run on a drop', () => {
    // The first test's lake after its one run; a second run on a drop of new landing files changes the tables.
    expect(first).toBeDefined();
    const { dir, results, summary: firstSummary, runId: firstRun } = first!;
    const more = path.join(dir, 'more');
    expect(stedi(['generate', '--customers', '60', '--seed', '2', '--out', more, '--bad-lines', '0']).code).toBe(0);
    const drop = path.join(dir, 'drop');
    for (const dataset of DATASETS) {
      mkdirSync(path.join(drop, dataset), { recursive: true });
      // New names: the first drop's files keep theirs, so these are new files, not changed ones.
      for (const name of readdirSync(path.join(more, dataset)))
        copyFileSync(path.join(more, dataset, name), path.join(drop, dataset, name.replace(/\.json$/, '-more.json')));
    }
    const run = stedi(['run', '--engine', 'glue', '--json', '--lake', path.join(dir, 'lake'), '--landing', drop]);
    expect(run.code).toBe(0);
    const secondSummary = JSON.parse(run.stdout.trim().split('\n').pop()!) as Summary;
    const secondRun = runsOf(new Lake(results)).runs[0]!.runId;
    expect(secondRun).not.toBe(firstRun);
    // Every derived table changed: reading the first run's counts back proves the time travel.
    for (const table of DERIVED_TABLES)
      expect([table, secondSummary.tables[table]!.rows]).not.toEqual([table, firstSummary.tables[table]!.rows]);

    const counts = `select ${DERIVED_TABLES.map((t) => `(select count(*) from ${t}) as ${t}`).join(', ')}`;
    for (const [runId, summary] of [
      [firstRun, firstSummary],
      [secondRun, secondSummary],
    ] as const) {
      const query = stedi(['query', '--as-of', runId, '--lake', results, '--json', counts]);
      expect(query.code).toBe(0);
      expect(JSON.parse(query.stdout)).toEqual([
        Object.fromEntries(DERIVED_TABLES.map((t) => [t, summary.tables[t]!.rows])),
      ]);
      // Read from the snapshot whose summary names the run (as --history lists it), not the lake's own copies.
      for (const table of DERIVED_TABLES) {
        const history = JSON.parse(
          stedi(['tables', '--history', table, '--lake', results, '--json']).stdout,
        ) as HistoryLine[];
        const snapshot = history.find((h) => h.runId === runId)!.snapshotId!;
        expect(query.stderr).toContain(`${table} snapshot ${snapshot},`);
      }
    }

    const unknown = stedi(['query', '--as-of', 'no-such-run', '--lake', results, counts]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('records run no-such-run');
    second = { summary: secondSummary, runId: secondRun, counts };
  });

  test('write, audit, publish: a run whose check fails wrote only its branch, so main (and the results lake) stay at the last published run', () => {
    expect(first && second).toBeDefined();
    const { dir, results } = first!;
    const { summary, runId, counts } = second!;
    // Every customer withdraws consent: customer_trusted would be emptied while its landing input holds rows,
    // which tables_not_emptied refuses.
    const landing = path.join(dir, 'lake', 'customer', 'landing');
    for (const name of readdirSync(landing)) {
      const file = path.join(landing, name);
      const lines = readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '');
      const withdrawn = lines.map((l) =>
        JSON.stringify({ ...(JSON.parse(l) as object), shareWithResearchAsOfDate: null }),
      );
      writeFileSync(file, `${withdrawn.join('\n')}\n`);
    }
    const run = stedi(['run', '--engine', 'glue', '--verbose', '--lake', path.join(dir, 'lake')]);
    expect(run.code).not.toBe(0);
    expect(run.stdout).toContain('✗ check tables_not_emptied');
    expect(run.stdout).toContain('→ ChecksPassed');
    expect(run.stdout).not.toContain('→ PublishRun');
    // Main's head of every table is still the second run's snapshot: the failed run's commits are on its branch.
    for (const table of DERIVED_TABLES) {
      const history = JSON.parse(
        stedi(['tables', '--history', table, '--lake', results, '--json']).stdout,
      ) as HistoryLine[];
      expect(history.find((h) => h.current)?.runId).toBe(runId);
    }
    // The results lake (the checks' staged exports dropped) reads as the second run left it.
    const now = stedi(['query', '--lake', results, '--json', counts]);
    expect(now.code).toBe(0);
    expect(JSON.parse(now.stdout)).toEqual([
      Object.fromEntries(DERIVED_TABLES.map((t) => [t, summary.tables[t]!.rows])),
    ]);
  });
});
