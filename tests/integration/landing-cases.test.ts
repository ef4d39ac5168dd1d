import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LocalEngine } from '../../src/local/engine';
import { Lake } from '../../src/local/lake';
import { params, query, removeDir, tempDir } from '../helpers/lake';

// The same cases are checked against the Glue runner by tests/python/test_run_sql_job.py.
const CASES_FILE = path.join(__dirname, '../fixtures/landing-cases/accelerometer.json');
const { cases } = JSON.parse(readFileSync(CASES_FILE, 'utf8')) as {
  cases: { line: string; reason: string | null; record?: Record<string, unknown> }[];
};
const valid = cases.filter((c) => c.reason === null);
const rejected = cases.filter((c) => c.reason !== null);

/** A lake with the given accelerometer landing files and no customers; runs the accelerometer job. */
async function runAccelerometerJob(files: Record<string, string>, parseBatchBytes?: number): Promise<{ lake: Lake; dir: string; quarantined: number }> {
  const dir = tempDir('landing-cases');
  const lake = new Lake(dir);
  for (const d of ['customer', 'accelerometer', 'step_trainer']) mkdirSync(path.join(dir, d, 'landing'), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, 'accelerometer/landing', name), text);
  const engine = await LocalEngine.open(lake, { memoryLimit: '512MB', parseBatchBytes });
  try {
    await engine.runJob('customer_landing_to_trusted', params());
    const result = await engine.runJob('accelerometer_landing_to_trusted', params());
    return { lake, dir, quarantined: result.quarantined.accelerometer ?? 0 };
  } finally {
    engine.close();
  }
}

describe('landing line cases shared with the Glue runner', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach(removeDir));

  it.each([['in one query', undefined], ['a file per query', 1]])('rejects each bad line with its reason, even as the only bad line of a file (parsed %s)', async (_, parseBatchBytes) => {
    // One file per bad line: the whole-table check, the per-file check and the line parse must each catch it.
    const files = Object.fromEntries(rejected.map((c, i) => [`case-${String(i).padStart(2, '0')}.json`, `${valid[0].line}\n${c.line}\n`]));
    const { lake, dir, quarantined } = await runAccelerometerJob(files, parseBatchBytes);
    dirs.push(dir);

    expect(quarantined).toBe(rejected.length);
    const rows = await query(lake, 'select source_file, line_number, reason, line from accelerometer_quarantine order by source_file');
    expect(rows).toEqual(rejected.map((c, i) => ({
      source_file: `accelerometer/landing/case-${String(i).padStart(2, '0')}.json`, line_number: 2, reason: c.reason, line: c.line,
    })));
    expect(await query(lake, 'select count(*) as n from accelerometer_landing')).toEqual([{ n: rejected.length }]);
  });

  it('reads every valid line, on the fast path and beside bad lines, with the same values', async () => {
    const alone = await runAccelerometerJob({ 'valid.json': valid.map((c) => c.line).join('\n') + '\n' });
    const mixed = await runAccelerometerJob({ 'mixed.json': cases.map((c) => c.line).join('\n') + '\n' });
    dirs.push(alone.dir, mixed.dir);

    expect(alone.quarantined).toBe(0);
    expect(mixed.quarantined).toBe(rejected.length);
    const sql = 'select "user", timestamp, x, y, z from accelerometer_landing order by timestamp';
    const expected = valid.map((c) => {
      const r = c.record ?? (JSON.parse(c.line.replace('NaN', 'null')) as Record<string, unknown>);
      return { user: r.user, timestamp: r.timestamp, x: r.x, y: r.y, z: r.z };
    }).sort((a, b) => Number(a.timestamp) - Number(b.timestamp));
    expect(await query(alone.lake, sql)).toEqual(expected);
    expect(await query(mixed.lake, sql)).toEqual(expected);
  });
});
