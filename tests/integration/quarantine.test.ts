import { readFileSync, writeFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Lake } from '../../src/lake/lake';
import { required } from '../../src/required';
import { query, removeDir, runPipeline, tempDir } from '../helpers/lake';

// Whole pipeline runs, some over a 40 MB line: above jest's 5 s default on a loaded 2-core machine.
jest.setTimeout(60_000);

const good = (user: string, timestamp: number) => JSON.stringify({ user, timestamp, x: 1.0, y: 0.0, z: -1.0 });
const CUSTOMER = JSON.stringify({
  customerName: 'Ann Lee',
  email: 'Ann.Lee@test.com',
  phone: '8015551212',
  birthDay: '1990-01-01',
  serialNumber: 'S-1',
  registrationDate: 1655564000000,
  lastUpdateDate: 1655564000000,
  shareWithResearchAsOfDate: 1655564000000,
});

describe('bad landing lines', () => {
  let lakeDir: string;
  let lake: Lake;
  const landing = (dataset: string) => path.join(lakeDir, dataset, 'landing');

  beforeAll(() => {
    lakeDir = tempDir('quarantine');
    lake = new Lake(lakeDir);
    for (const d of ['customer', 'accelerometer', 'step_trainer']) mkdirSync(landing(d), { recursive: true });
    writeFileSync(path.join(landing('customer'), 'customer-1.json'), `${CUSTOMER}\n`);
    writeFileSync(
      path.join(landing('accelerometer'), 'mixed.json'),
      [
        good('Ann.Lee@test.com', 1655564000001),
        '{"user": "Ann.Lee@test.com", "timestamp": 16555',
        '[1, 2, 3]',
        JSON.stringify({ user: 'Ann.Lee@test.com', timestamp: 1655564000002, x: 1, y: 1 }),
        JSON.stringify({ user: 'Ann.Lee@test.com', timestamp: 'soon', x: 1, y: 1, z: 1 }),
        '',
        JSON.stringify({ user: 'Ann.Lee@test.com', timestamp: 1655564000003, x: 1, y: 1, z: null }),
        JSON.stringify({ user: 42, timestamp: 1655564000004, x: 1, y: 1, z: 1 }),
        JSON.stringify({ user: 'Ann.Lee@test.com', timestamp: 1655564000005.5, x: 1, y: 1, z: 1 }),
        good('Ann.Lee@test.com', 1655564000006),
      ].join('\n') + '\n',
    );
    // A BOM and CRLF line ends are valid records; blank lines (spaces, CRs) and an empty file are no records.
    writeFileSync(
      path.join(landing('accelerometer'), 'bom-crlf.json'),
      `\uFEFF${good('Ann.Lee@test.com', 1655564000007)}\r\n  \r\n\r\r\n${good('Ann.Lee@test.com', 1655564000008)}\r\n`,
    );
    writeFileSync(path.join(landing('accelerometer'), 'empty.json'), '');
    writeFileSync(
      path.join(landing('step_trainer'), 'no-final-newline.json'),
      '{"sensorReadingTime":1655564000001,"serialNumber":"S-1","distanceFromObject":250}',
    );
    // Valid JSON throughout, one value of the wrong type: found by the fast check, named line by line.
    writeFileSync(
      path.join(landing('step_trainer'), 'typed.json'),
      [
        '{"sensorReadingTime":1655564000002,"serialNumber":"S-1","distanceFromObject":250}',
        '{"sensorReadingTime":1655564000003,"serialNumber":"S-1","distanceFromObject":"far"}',
        '{"sensorReadingTime":1655564000004,"serialNumber":"S-1","distanceFromObject":3000000000}',
      ].join('\n') + '\n',
    );
  });

  afterAll(() => removeDir(lakeDir));

  it('are quarantined with file, line number and reason; the rest is processed', async () => {
    const landingBefore = snapshot(landing('accelerometer'));
    const results = await runPipeline(lake);

    expect(results.find((r) => r.job === 'accelerometer_landing_to_trusted')!.quarantined).toEqual({
      accelerometer: 7,
    });
    // One part per landing file with rejected lines, JSON lines in line order.
    const parts = readdirSync(path.join(lakeDir, 'accelerometer/quarantine'));
    expect(parts).toHaveLength(1);
    const rejected = readFileSync(
      path.join(lakeDir, 'accelerometer/quarantine', required(parts[0], 'the quarantine part')),
      'utf8',
    )
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { source_file: string; line_number: number; reason: string; line: string });
    expect(rejected.map((r) => [r.source_file, r.line_number, r.reason])).toEqual([
      ['accelerometer/landing/mixed.json', 2, 'not valid JSON'],
      ['accelerometer/landing/mixed.json', 3, 'not a JSON object: found an array'],
      ['accelerometer/landing/mixed.json', 4, 'missing required field "z"'],
      ['accelerometer/landing/mixed.json', 5, 'field "timestamp" must be bigint, found a string'],
      ['accelerometer/landing/mixed.json', 7, 'missing required field "z"'],
      ['accelerometer/landing/mixed.json', 8, 'field "user" must be string, found an integer'],
      ['accelerometer/landing/mixed.json', 9, 'field "timestamp" must be bigint, found a number with a fraction'],
    ]);
    // Nothing is lost: the rejected line is kept as it was.
    expect(rejected[0]?.line).toBe('{"user": "Ann.Lee@test.com", "timestamp": 16555');

    const readings = await query(lake, 'select timestamp from accelerometer_landing order by timestamp');
    expect(readings.map((r) => r.timestamp)).toEqual([1655564000001, 1655564000006, 1655564000007, 1655564000008]);
    const counts = await query(lake, 'select count(*) as n from accelerometer_trusted');
    expect(counts).toEqual([{ n: 4 }]);
    const steps = await query(lake, 'select count(*) as n from step_trainer_landing');
    expect(steps).toEqual([{ n: 2 }]);
    const stepRejects = await query(
      lake,
      'select source_file, line_number, reason from step_trainer_quarantine order by line_number',
    );
    expect(stepRejects).toEqual([
      {
        source_file: 'step_trainer/landing/typed.json',
        line_number: 2,
        reason: 'field "distanceFromObject" must be int, found a string',
      },
      {
        source_file: 'step_trainer/landing/typed.json',
        line_number: 3,
        reason: 'field "distanceFromObject" is out of range for int: 3000000000',
      },
    ]);
    const quarantineView = await query(lake, 'select count(*) as n from accelerometer_quarantine');
    expect(quarantineView).toEqual([{ n: 7 }]);

    expect(snapshot(landing('accelerometer'))).toEqual(landingBefore); // landing is never modified
  });
});

function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .filter((n) => statSync(path.join(dir, n)).isFile())
      .map((n) => [n, readFileSync(path.join(dir, n), 'latin1')]),
  );
}

describe('a landing file that is not all UTF-8', () => {
  let lakeDir: string;
  afterAll(() => removeDir(lakeDir));

  it('has its bad lines quarantined and the rest processed', async () => {
    lakeDir = tempDir('utf8');
    const lake = new Lake(lakeDir);
    for (const d of ['customer', 'accelerometer', 'step_trainer'])
      mkdirSync(path.join(lakeDir, d, 'landing'), { recursive: true });
    writeFileSync(path.join(lakeDir, 'customer/landing/customer-1.json'), `${CUSTOMER}\n`);
    const notUtf8 = Buffer.from('{"user":"Ren\xe9e@test.com","timestamp":1655564000002,"x":1,"y":1,"z":1}', 'latin1');
    const latin1 = Buffer.concat([
      Buffer.from(`${good('Ann.Lee@test.com', 1655564000001)}\n`),
      notUtf8,
      Buffer.from('\n'),
      Buffer.from(`${good('Ann.Lee@test.com', 1655564000003)}\n`),
    ]);
    writeFileSync(path.join(lakeDir, 'accelerometer/landing/latin1.json'), latin1);

    const results = await runPipeline(lake);

    expect(results.find((r) => r.job === 'accelerometer_landing_to_trusted')!.quarantined).toEqual({
      accelerometer: 1,
    });
    expect(await query(lake, 'select source_file, line_number, reason from accelerometer_quarantine')).toEqual([
      { source_file: 'accelerometer/landing/latin1.json', line_number: 2, reason: 'not valid UTF-8 text' },
    ]);
    // Kept byte for byte (issue 18): its bytes in base64, flagged so, never U+FFFD in their place.
    const [kept] = await query(lake, 'select line, line_encoding from accelerometer_quarantine');
    expect(kept?.line_encoding).toBe('base64');
    expect(Buffer.from(String(kept?.line), 'base64')).toEqual(notUtf8);
    expect(await query(lake, 'select timestamp from accelerometer_trusted order by 1')).toEqual([
      { timestamp: 1655564000001 },
      { timestamp: 1655564000003 },
    ]);
    expect(readFileSync(path.join(lakeDir, 'accelerometer/landing/latin1.json'))).toEqual(latin1); // untouched
  });
});

describe('one line never stops the pipeline', () => {
  let lakeDir: string;
  afterAll(() => removeDir(lakeDir));

  it('quarantines a timestamp beyond the date conversions, a pretty-printed record and a 40 MB line, of a consenting customer', async () => {
    lakeDir = tempDir('one-line');
    const lake = new Lake(lakeDir);
    for (const d of ['customer', 'accelerometer', 'step_trainer'])
      mkdirSync(path.join(lakeDir, d, 'landing'), { recursive: true });
    writeFileSync(
      path.join(lakeDir, 'customer/landing/customer-1.json'),
      [CUSTOMER, CUSTOMER.replace('"registrationDate":1655564000000', '"registrationDate":9223372036854775807')].join(
        '\n',
      ) + '\n',
    );
    const pretty = JSON.stringify({ user: 'Ann.Lee@test.com', timestamp: 1655564000004, x: 1, y: 1, z: 1 }, null, 2);
    const huge = JSON.stringify({
      user: 'Ann.Lee@test.com',
      timestamp: 1655564000005,
      x: 1,
      y: 1,
      z: 1,
      pad: 'a'.repeat(40 << 20),
    });
    writeFileSync(
      path.join(lakeDir, 'accelerometer/landing/readings.json'),
      [
        good('Ann.Lee@test.com', 1655564000001),
        '{"user":"Ann.Lee@test.com","timestamp":9223372036854775807,"x":1,"y":1,"z":1}',
        pretty,
        huge,
        good('Ann.Lee@test.com', 1655564000002),
      ].join('\n') + '\n',
    );
    writeFileSync(
      path.join(lakeDir, 'step_trainer/landing/steps.json'),
      [
        '{"sensorReadingTime":1655564000001,"serialNumber":"S-1","distanceFromObject":250}',
        '{"sensorReadingTime":9223372036854775807,"serialNumber":"S-1","distanceFromObject":250}',
      ].join('\n') + '\n',
    );

    const results = await runPipeline(lake);

    expect(results.map((r) => [r.job, r.quarantined])).toEqual([
      ['customer_landing_to_trusted', { customer: 1 }],
      ['accelerometer_landing_to_trusted', { accelerometer: 1 + 7 + 1 }],
      ['customer_trusted_to_curated', {}],
      ['step_trainer_landing_to_trusted', { step_trainer: 1 }],
      ['machine_learning_curated', {}],
    ]);
    const implausible = (field: string) =>
      `field "${field}" is not a plausible epoch-ms time (from 1970-01-01 to 2100-01-01): 9223372036854775807`;
    expect(await query(lake, 'select line_number, reason from accelerometer_quarantine')).toEqual([
      { line_number: 2, reason: implausible('timestamp') },
      ...[3, 4, 5, 6, 7, 8, 9].map((n) => ({ line_number: n, reason: 'not valid JSON' })),
      { line_number: 10, reason: 'line longer than 16777216 bytes' },
    ]);
    expect(await query(lake, 'select length(line) as n from accelerometer_quarantine where line_number = 10')).toEqual([
      { n: huge.length },
    ]);
    expect(await query(lake, 'select reason from customer_quarantine')).toEqual([
      { reason: implausible('registrationDate') },
    ]);
    expect(await query(lake, 'select timestamp from accelerometer_trusted order by 1')).toEqual([
      { timestamp: 1655564000001 },
      { timestamp: 1655564000002 },
    ]);
    expect(await query(lake, 'select count(*) as n from machine_learning_curated')).toEqual([{ n: 1 }]);
  }, 60_000);
});
