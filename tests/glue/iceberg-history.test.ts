import { afterAll, expect, jest, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { DERIVED_TABLES } from '../../src/definition/layout';
import { Lake } from '../../src/lake/lake';
import { tableHistory } from '../../src/lake/lake-history';
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

describeWithGlue('stedi tables --history on the Glue engine: the Iceberg snapshots', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach(removeDir));

  test("lists each derived table's Iceberg snapshot from the metadata the kept bucket holds: the run's id (stedi.run-id) and total-records", () => {
    const dir = tempDir('iceberg-history');
    dirs.push(dir);
    const landing = path.join(dir, 'landing');
    expect(stedi(['generate', '--customers', '60', '--out', landing, '--bad-lines', '0']).code).toBe(0);
    const run = stedi(['run', '--engine', 'glue', '--json', '--lake', path.join(dir, 'lake'), '--landing', landing]);
    expect(run.stderr).toContain('on the Glue engine');
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout.trim().split('\n').pop()!) as { tables: Record<string, { rows: number }> };
    const results = path.join(dir, 'lake', '_glue');

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
});
