import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { generate } from '../../src/sample/generate';
import { removeDir, tempDir } from '../helpers/lake';

function readAll(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const dataset of readdirSync(dir)) {
    for (const name of readdirSync(path.join(dir, dataset)))
      out[`${dataset}/${name}`] = readFileSync(path.join(dir, dataset, name), 'utf8');
  }
  return out;
}

const lines = (files: Record<string, string>, dataset: string) =>
  Object.entries(files)
    .filter(([k]) => k.startsWith(`${dataset}/`))
    .flatMap(([, v]) => v.trim().split('\n'));

/** The records of a dataset's files, as the fields these tests read. */
const records = <T>(files: Record<string, string>, dataset: string): T[] =>
  lines(files, dataset).map((l) => JSON.parse(l) as T);

describe('stedi generate', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir('generate')));
  afterEach(() => removeDir(dir));

  it('is deterministic: the same options give the same bytes, another seed other bytes', async () => {
    await generate(path.join(dir, 'a'), 'drop', { customers: 50, seed: 42, badLineRate: 0.05 });
    await generate(path.join(dir, 'b'), 'drop', { customers: 50, seed: 42, badLineRate: 0.05 });
    await generate(path.join(dir, 'c'), 'drop', { customers: 50, seed: 43, badLineRate: 0.05 });
    expect(readAll(path.join(dir, 'a'))).toEqual(readAll(path.join(dir, 'b')));
    expect(readAll(path.join(dir, 'a'))).not.toEqual(readAll(path.join(dir, 'c')));
  });

  it('has the shape and quirks of the STEDI data', async () => {
    await generate(dir, 'drop', { customers: 400, seed: 1, recordsPerFile: 5000 });
    const files = readAll(dir);
    const customers = records<{ email: string; serialNumber: string; shareWithResearchAsOfDate?: number | null }>(
      files,
      'customer',
    );
    const accelerometer = records<{ user: string; timestamp: number }>(files, 'accelerometer');
    const steps = records<{ serialNumber: string; sensorReadingTime: number }>(files, 'step_trainer');

    expect(Object.keys(files).filter((k) => k.startsWith('accelerometer/')).length).toBeGreaterThan(1); // split into files
    const consenting = new Set(customers.filter((c) => 'shareWithResearchAsOfDate' in c).map((c) => c.email));
    expect(consenting.size / 400).toBeGreaterThan(0.4);
    expect(consenting.size / 400).toBeLessThan(0.6);
    expect(customers.some((c) => c.shareWithResearchAsOfDate === null)).toBe(false); // missing, never null
    // Volume per customer close to the real data's (85 accelerometer, 30 step-trainer readings).
    expect(accelerometer.length / 400).toBeGreaterThan(70);
    expect(accelerometer.length / 400).toBeLessThan(100);
    expect(steps.length).toBe(400 * 30);

    const perUserMs = new Map<string, number>();
    for (const a of accelerometer)
      perUserMs.set(`${a.user}|${a.timestamp}`, (perUserMs.get(`${a.user}|${a.timestamp}`) ?? 0) + 1);
    expect([...perUserMs.values()].some((n) => n > 1)).toBe(true); // several readings per user and millisecond

    const usersPerMs = new Map<number, Set<string>>();
    for (const a of accelerometer) usersPerMs.set(a.timestamp, (usersPerMs.get(a.timestamp) ?? new Set()).add(a.user));
    expect([...usersPerMs.values()].some((users) => users.size > 1)).toBe(true); // shared milliseconds across customers

    const emailBySerial = new Map(customers.map((c) => [c.serialNumber, c.email]));
    const accelerometerKeys = new Set(accelerometer.map((a) => `${a.user}|${a.timestamp}`));
    expect(
      steps.every((s) => accelerometerKeys.has(`${emailBySerial.get(s.serialNumber)}|${s.sensorReadingTime}`)),
    ).toBe(true);
  });

  it('mixes in malformed lines at the asked rate', async () => {
    const files = await generate(dir, 'drop', { customers: 100, seed: 1, badLineRate: 0.1 });
    const bad = files.reduce((n, f) => n + f.badLines, 0);
    const records = files.reduce((n, f) => n + f.records, 0);
    expect(bad / records).toBeGreaterThan(0.08);
    expect(bad / records).toBeLessThan(0.12);
  });
});
