import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LocalEngine } from '../../src/build/engine';
import { Lake } from '../../src/lake/lake';
import { checkLandingFiles, isInputError } from '../../src/build/landing';
import { recordsPassSql } from '../../src/build/landing-sql';
import { glueDir } from '../../src/project';
import { required } from '../../src/required';
import { readLandingTables } from '../../src/definition/ddl';
import { params, query, removeDir, tempDir } from '../helpers/lake';

// The same cases are checked against the Glue runner by tests/python/test_run_sql_job.py.
// Some cases are 40 MB lines: generous timeouts on a shared machine.
jest.setTimeout(60_000);
const CASES_FILE = path.join(__dirname, '../fixtures/landing-cases/accelerometer.json');
const fixture = JSON.parse(readFileSync(CASES_FILE, 'utf8')) as {
  blank: string[];
  cases: {
    line?: string;
    long?: { prefix: string; fill: string; bytes: number; suffix: string };
    base64?: string;
    reason: string | null;
    record?: Record<string, unknown>;
  }[];
};
const { blank } = fixture;
// A "long" case is one line too long to keep in the file.
const longLine = ({ prefix, fill, bytes, suffix }: { prefix: string; fill: string; bytes: number; suffix: string }) =>
  `${prefix}${fill.repeat(bytes)}${suffix}`;
// A "base64" case is a line that is not UTF-8 (its bytes): the quarantine keeps it as base64.
const cases = fixture.cases.map((c, i) => {
  const bytes =
    c.base64 !== undefined
      ? Buffer.from(c.base64, 'base64')
      : Buffer.from(c.line ?? longLine(required(c.long, `the line, long line or bytes of case ${i} in ${CASES_FILE}`)));
  const kept =
    c.base64 !== undefined
      ? { line: c.base64, line_encoding: 'base64' }
      : { line: bytes.toString(), line_encoding: 'text' };
  return { ...c, bytes, line: bytes.toString(), kept };
});
/** Lines as one file's bytes, each ended by a line feed. */
const fileOf = (lines: (string | Buffer)[]): Buffer =>
  Buffer.concat(lines.flatMap((l) => [Buffer.from(l), Buffer.from('\n')]));
const valid = cases.filter((c) => c.reason === null);
const rejected = cases.filter((c) => c.reason !== null);
const aValidLine = required(valid[0], `a valid case in ${CASES_FILE}`).line;
const aRejectedLine = required(rejected[0], `a rejected case in ${CASES_FILE}`).line;
// DuckDB's strict reader refuses a repeated key and a line beyond its maximum object size (16 MB): such
// valid lines always take the per-file path.
const strictlyReadable = valid.filter((c) => c.record === undefined && c.line.length < 16 * 1024 * 1024);
const definition = readLandingTables(glueDir()).accelerometer_landing;
const caseFile = (i: number) => `case-${String(i).padStart(2, '0')}.json`;

/** A lake with the given accelerometer landing files and no customers; runs the accelerometer job. */
async function runAccelerometerJob(
  files: Record<string, string | Buffer>,
  batchBytes?: number,
): Promise<{ lake: Lake; dir: string; quarantined: number }> {
  const dir = tempDir('landing-cases');
  const lake = new Lake(dir);
  for (const d of ['customer', 'accelerometer', 'step_trainer'])
    mkdirSync(path.join(dir, d, 'landing'), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, 'accelerometer/landing', name), text);
  const engine = await LocalEngine.open(lake, { memoryLimit: '512MB', batchBytes });
  try {
    await engine.runJob('customer_landing_to_trusted', params());
    const result = await engine.runJob('accelerometer_landing_to_trusted', params());
    return { lake, dir, quarantined: result.quarantined.accelerometer ?? 0 };
  } finally {
    engine.close();
  }
}

const expectedRecords = (list: typeof cases) =>
  list
    .map((c) => {
      const r = c.record ?? (JSON.parse(c.line.replace('NaN', 'null')) as Record<string, unknown>);
      return { user: r.user, timestamp: r.timestamp, x: r.x, y: r.y, z: r.z };
    })
    .sort((a, b) => Number(a.timestamp) - Number(b.timestamp));

describe('landing line cases shared with the Glue runner', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach(removeDir));

  it.each([
    ['in one batch', undefined],
    ['a file per batch', 1],
  ])(
    'rejects each bad line with its reason, even as the only bad line of a file (checked %s)',
    async (_, batchBytes) => {
      const files = Object.fromEntries(rejected.map((c, i) => [caseFile(i), fileOf([aValidLine, c.bytes])]));
      const { lake, dir, quarantined } = await runAccelerometerJob(files, batchBytes);
      dirs.push(dir);

      expect(quarantined).toBe(rejected.length);
      const rows = await query(
        lake,
        'select source_file, line_number, reason, line, line_encoding from accelerometer_quarantine order by source_file',
      );
      // Each line kept byte for byte: as text, or as base64 when it is not UTF-8 (as the Glue runner keeps it).
      expect(rows).toEqual(
        rejected.map((c, i) => ({
          source_file: `accelerometer/landing/${caseFile(i)}`,
          line_number: 2,
          reason: c.reason,
          ...c.kept,
        })),
      );
      expect(await query(lake, 'select count(*) as n from accelerometer_landing')).toEqual([{ n: rejected.length }]);
    },
  );

  it('reads every valid line, on the fast path and beside bad lines and blank lines, with the same values', async () => {
    const fast = await runAccelerometerJob({
      'valid.json': [...strictlyReadable.map((c) => c.line), ...blank].join('\n') + '\n',
    });
    const mixed = await runAccelerometerJob({
      'mixed.json': fileOf([...cases.map((c) => c.bytes), ...blank]),
    });
    dirs.push(fast.dir, mixed.dir);

    expect(fast.quarantined).toBe(0);
    expect(mixed.quarantined).toBe(rejected.length);
    const sql = 'select "user", timestamp, x, y, z from accelerometer_landing order by timestamp';
    expect(await query(fast.lake, sql)).toEqual(expectedRecords(strictlyReadable));
    expect(await query(mixed.lake, sql)).toEqual(expectedRecords(valid));
  });
});

// The two passes that decide which files skip the line-by-line parse, each on one case at a time:
// a bad line they let through would never be quarantined.
describe('the strict and lenient passes, case by case', () => {
  let dir: string;
  let db: DuckDBInstance;
  let connection: DuckDBConnection;
  beforeAll(async () => {
    dir = tempDir('landing-checks');
    db = await DuckDBInstance.create(':memory:');
    connection = await db.connect();
  });
  afterAll(() => {
    connection.closeSync();
    db.closeSync();
    removeDir(dir);
  });

  /** The strict pass's rows, or 'error' when DuckDB raises an input error (the batch is then taken apart). */
  async function strictPass(file: string): Promise<number | 'error'> {
    try {
      // Written as the check writes a segment: every row computes every column (a count alone would not).
      const sql = recordsPassSql(definition, [{ path: file, key: 'k' }], 'strict');
      const target = path.join(dir, 'strict.parquet');
      const result = await connection.runAndReadAll(`copy (${sql}) to '${target}' (format parquet)`);
      return Number(required(result.getRows()[0]?.[0], 'the row count of the copy'));
    } catch (error) {
      if (!isInputError(error)) throw error;
      return 'error';
    }
  }

  const write = (name: string, lines: (string | Buffer)[]): string => {
    const file = path.join(dir, name);
    writeFileSync(file, fileOf(lines));
    return file;
  };

  it.each(rejected.map((c, i) => [i, c.line.slice(0, 120), c.bytes] as const))(
    'finds bad case %i (%s)',
    async (i, _, line) => {
      const file = write(`bad-${i}.json`, [aValidLine, line]);
      expect(await strictPass(file)).toBe('error');
      // The lenient pass calls a file clean when it reads one record per line (two here) and none breaks a
      // rule; when it raises, the file is parsed line by line.
      const sql = recordsPassSql(definition, [{ path: file, key: 'k' }], 'lenient');
      const lenient = await connection
        .runAndReadAll(`select count(*)::int, count(*) filter (where broken)::int from (${sql})`)
        .then((result) => result.getRows()[0] as [number, number])
        .catch((error: unknown) => {
          if (!isInputError(error)) throw error;
          return [0, 0] as [number, number];
        });
      expect(lenient[0] === 2 && lenient[1] === 0).toBe(false);
    },
  );

  it('parses line by line only the files that need it, each file once into the segment', async () => {
    const landing = path.join(dir, 'landing');
    const out = path.join(dir, 'out');
    mkdirSync(landing);
    mkdirSync(out);
    const files = {
      'clean.json': strictlyReadable.map((c) => c.line).join('\n') + '\n',
      'empty.json': '',
      'bad.json': `${aValidLine}\n${aRejectedLine}\n`,
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(landing, name), text);
    const checked = await checkLandingFiles(
      connection,
      definition,
      Object.keys(files).map((name) => ({ path: path.join(landing, name), key: `accelerometer/landing/${name}` })),
      { segments: out, quarantine: out, scratch: dir },
    );
    expect(
      checked.map(({ key, records, rejected, segment, quarantine }) => ({
        key,
        records,
        rejected,
        segment: !!segment,
        quarantine: !!quarantine,
      })),
    ).toEqual([
      {
        key: 'accelerometer/landing/clean.json',
        records: strictlyReadable.length,
        rejected: 0,
        segment: true,
        quarantine: false,
      },
      { key: 'accelerometer/landing/empty.json', records: 0, rejected: 0, segment: false, quarantine: false },
      { key: 'accelerometer/landing/bad.json', records: 1, rejected: 1, segment: true, quarantine: true },
    ]);
    const segment = required(
      checked.map((c) => c.segment).find((s) => s !== undefined),
      'the segment of the checked files',
    );
    const rows = await connection.runAndReadAll(
      `select source_file, count(*)::int from read_parquet('${path.join(out, segment)}') group by 1 order by 1`,
    );
    expect(rows.getRows()).toEqual([
      ['accelerometer/landing/bad.json', 1],
      ['accelerometer/landing/clean.json', strictlyReadable.length],
    ]);
  });

  it('passes the valid lines and blank lines in the strict pass', async () => {
    const file = write('valid.json', [...strictlyReadable.map((c) => c.line), ...blank]);
    expect(await strictPass(file)).toBe(strictlyReadable.length);
  });
});
