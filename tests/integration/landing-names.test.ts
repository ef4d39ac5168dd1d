import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LocalEngine } from '../../src/build/engine';
import { Lake } from '../../src/lake/lake';
import { params, query, removeDir, tempDir } from '../helpers/lake';

/*
 * A landing file's name is a name, never a pattern: DuckDB's readers expand * ? [ in a path, so a file
 * named acc*.json would read every acc….json (counted twice, and SUCCEEDED). Each character S3 allows in
 * a key is read literally on every path a landing file can take: the whole-table check and the typed
 * read (clean files), the per-file check and the line-by-line parse (files with a bad line).
 */

// Each name next to the files its pattern would match, were it one.
const NAMES: [string, string[]][] = [
  ['acc*.json', ['accX.json']],
  ['**.json', []],
  ['a?.json', ['ab.json']],
  ['[x].json', ['x.json']],
  ['b]c.json', []],
  ['[!q].json', ['z.json']],
  ['{a,b}.json', ['a.json', 'b.json']],
  ["it's.json", []],
  ['say "hi".json', []],
  ['with space .json', []],
  ['ünïcødé 日本 🚀.json', []],
  ['back\\slash.json', []],
  ['back\\*slash.json', ['back\\Xslash.json']],
  ['tab\there.json', []],
  ['new\nline.json', []],
  ['%41+~$&=;,@.json', []],
];

const reading = (timestamp: number) => JSON.stringify({ user: 'Ann.Lee@test.com', timestamp, x: 1.0, y: 0.0, z: -1.0 });

interface Landing {
  /** File name → its lines. */
  files: Map<string, string[]>;
  timestamps: number[];
  bad: { key: string; line: number }[];
}

/** Every name and decoy with two readings of its own; with `badLine`, the special names also hold a bad line. */
function landing(badLine: boolean): Landing {
  const files = new Map<string, string[]>();
  const timestamps: number[] = [];
  const bad: { key: string; line: number }[] = [];
  let t = 1655564000000;
  for (const [name, decoys] of NAMES) {
    for (const file of [name, ...decoys]) {
      if (files.has(file)) continue;
      const lines = [reading(++t), reading(++t)];
      timestamps.push(t - 1, t);
      if (badLine && file === name) {
        lines.push('{"user": "Ann.Lee@test.com", "timestamp": 16555');
        bad.push({ key: `accelerometer/landing/${file}`, line: 3 });
      }
      files.set(file, lines);
    }
  }
  return { files, timestamps, bad };
}

describe('landing file names with characters DuckDB reads as patterns', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach(removeDir));

  it.each([
    ['clean files (whole-table check, typed read)', false],
    ['files with a bad line (per-file check, line-by-line parse)', true],
  ])('are read literally: %s', async (_, badLine) => {
    const { files, timestamps, bad } = landing(badLine);
    const dir = tempDir('names');
    dirs.push(dir);
    const lake = new Lake(dir);
    for (const d of ['customer', 'accelerometer', 'step_trainer'])
      mkdirSync(path.join(dir, d, 'landing'), { recursive: true });
    for (const [name, lines] of files)
      writeFileSync(path.join(dir, 'accelerometer', 'landing', name), `${lines.join('\n')}\n`);

    const engine = await LocalEngine.open(lake, { memoryLimit: '256MB' });
    try {
      await engine.runJob('customer_landing_to_trusted', params());
      const result = await engine.runJob('accelerometer_landing_to_trusted', params());
      expect(result.rowsIn).toEqual({ accelerometer_landing: timestamps.length, customer_trusted: 0 });
      expect(result.quarantined).toEqual({ accelerometer: bad.length });
    } finally {
      engine.close();
    }
    const read = await query(lake, 'select timestamp from accelerometer_landing order by timestamp');
    expect(read.map((r) => r.timestamp)).toEqual(timestamps);
    const rejected = await query(lake, 'select source_file, line_number from accelerometer_quarantine');
    expect(rejected.map((r) => ({ key: r.source_file, line: r.line_number }))).toEqual(expect.arrayContaining(bad));
    expect(rejected).toHaveLength(bad.length);
  });
});
