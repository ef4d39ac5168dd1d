import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { Lake } from '../../src/lake/lake';
import { TEST_SALT, query, removeDir, runPipeline, tempDir } from '../helpers/lake';

// The fixtures and the expected rows, worked out by hand, are described in tests/fixtures/semantics/README.md.
const FIXTURES = path.join(__dirname, '../fixtures/semantics');
const B = 1655564400000;
const M = 1655596800000;
const customerId = (email: string) => createHash('sha256').update(`${TEST_SALT}${email}`).digest('hex');
const ALICE = customerId('Alice.Ames@test.com');
const CAROL = customerId('Carol.Chen@test.com');

describe.each(['any', 'since-consent'] as const)('the five jobs with consent policy %s', (policy) => {
  let lakeDir: string;
  let lake: Lake;
  let results: Awaited<ReturnType<typeof runPipeline>>;

  beforeAll(async () => {
    lakeDir = tempDir('semantics');
    lake = new Lake(lakeDir);
    await lake.dropFolder(FIXTURES);
    results = await runPipeline(lake, policy);
  });

  afterAll(() => removeDir(lakeDir));

  it('customer_trusted keeps one row per consenting customer, from the latest record', async () => {
    const rows = await query(
      lake,
      'select email, lastUpdateDate, shareWithResearchAsOfDate from customer_trusted order by email',
    );
    expect(rows).toEqual([
      { email: 'Alice.Ames@test.com', lastUpdateDate: B, shareWithResearchAsOfDate: B + 1000 },
      // Carol's later record consents; Dave's later record withdrew; Bob's key is missing; Frank's is null;
      // Gina's two records of one lastUpdateDate disagree, and withdrawal wins.
      { email: 'Carol.Chen@test.com', lastUpdateDate: B + 200, shareWithResearchAsOfDate: B },
      { email: 'Erin.Egan@test.com', lastUpdateDate: B, shareWithResearchAsOfDate: B },
    ]);
  });

  it("customer_trusted holds each customer's consent window, which both readings jobs read", async () => {
    const rows = await query(lake, 'select email, readingsSharedFrom from customer_trusted order by email');
    // since-consent: from the consent date; any: every reading (the smallest bigint).
    const from = (consent: number) => (policy === 'since-consent' ? consent : -(2 ** 63));
    expect(rows.map((r) => ({ ...r, readingsSharedFrom: Number(r.readingsSharedFrom) }))).toEqual([
      { email: 'Alice.Ames@test.com', readingsSharedFrom: from(B + 1000) },
      { email: 'Carol.Chen@test.com', readingsSharedFrom: from(B) },
      { email: 'Erin.Egan@test.com', readingsSharedFrom: from(B) },
    ]);
  });

  it('counts the readings left out because their user matches an e-mail only when case is ignored', async () => {
    const accelerometerJob = results.find((r) => r.job === 'accelerometer_landing_to_trusted')!;
    expect(accelerometerJob.diagnostics).toEqual({ email_case_mismatches: 1 }); // alice.ames@test.com
    expect(
      await query(lake, `select count(*) as n from accelerometer_trusted where lower("user") = 'alice.ames@test.com'`),
    ).toEqual([{ n: policy === 'any' ? 3 : 2 }]);
  });

  it('accelerometer_trusted keeps each reading of a consenting customer once', async () => {
    const rows = await query(
      lake,
      'select user, timestamp, x, y, z, reading_date from accelerometer_trusted order by user, timestamp, x, y',
    );
    const alice = [
      { user: 'Alice.Ames@test.com', timestamp: B + 500, x: 0, y: 0, z: 1, reading_date: '2022-06-18' },
      { user: 'Alice.Ames@test.com', timestamp: B + 2000, x: 0, y: 1, z: 0, reading_date: '2022-06-18' },
      { user: 'Alice.Ames@test.com', timestamp: B + 2000, x: 1, y: 0, z: 0, reading_date: '2022-06-18' },
    ];
    const carol = [
      { user: 'Carol.Chen@test.com', timestamp: B + 2000, x: -1, y: 0, z: 0, reading_date: '2022-06-18' },
      { user: 'Carol.Chen@test.com', timestamp: M, x: 1, y: 1, z: 1, reading_date: '2022-06-19' },
    ];
    // since-consent drops Alice's reading at B+500, before her consent at B+1000.
    expect(rows).toEqual(policy === 'any' ? [...alice, ...carol] : [...alice.slice(1), ...carol]);
    const columns = await query(lake, 'select column_name from (describe accelerometer_trusted)');
    expect(columns.map((c) => c.column_name)).toEqual(['user', 'timestamp', 'x', 'y', 'z', 'reading_date']);
  });

  it('customer_curated holds the customers with readings, anonymised', async () => {
    const rows = await query(lake, 'select * from customer_curated order by serialNumber');
    expect(rows).toEqual([
      {
        customerId: ALICE,
        serialNumber: 'S-A',
        birthYear: 983,
        registrationDate: B - 100000,
        lastUpdateDate: B,
        shareWithResearchAsOfDate: B + 1000,
        shareWithPublicAsOfDate: null,
        shareWithFriendsAsOfDate: null,
      },
      {
        customerId: CAROL,
        serialNumber: 'S-C',
        birthYear: 1990,
        registrationDate: B - 100000,
        lastUpdateDate: B + 200,
        shareWithResearchAsOfDate: B,
        shareWithPublicAsOfDate: null,
        shareWithFriendsAsOfDate: null,
      },
    ]); // Erin consents but has no reading.
  });

  it('step_trainer_trusted keeps the readings of curated customers once', async () => {
    const rows = await query(
      lake,
      'select serialNumber, sensorReadingTime, distanceFromObject, reading_date from step_trainer_trusted order by serialNumber, sensorReadingTime',
    );
    const expected = [
      { serialNumber: 'S-A', sensorReadingTime: B + 500, distanceFromObject: 220, reading_date: '2022-06-18' },
      { serialNumber: 'S-A', sensorReadingTime: B + 2000, distanceFromObject: 210, reading_date: '2022-06-18' },
      { serialNumber: 'S-C', sensorReadingTime: B + 4000, distanceFromObject: 240, reading_date: '2022-06-18' },
      { serialNumber: 'S-C', sensorReadingTime: M, distanceFromObject: 230, reading_date: '2022-06-19' },
    ];
    expect(rows).toEqual(policy === 'any' ? expected : expected.slice(1));
  });

  it('machine_learning_curated pairs readings of the same customer only', async () => {
    const rows = await query(lake, 'select * from machine_learning_curated order by sensorReadingTime, x, y');
    const expected = [
      {
        customerId: ALICE,
        serialNumber: 'S-A',
        sensorReadingTime: B + 500,
        distanceFromObject: 220,
        x: 0,
        y: 0,
        z: 1,
        reading_date: '2022-06-18',
      },
      // Carol's reading at B+2000 shares the millisecond but is not Alice's: it must not be paired.
      {
        customerId: ALICE,
        serialNumber: 'S-A',
        sensorReadingTime: B + 2000,
        distanceFromObject: 210,
        x: 0,
        y: 1,
        z: 0,
        reading_date: '2022-06-18',
      },
      {
        customerId: ALICE,
        serialNumber: 'S-A',
        sensorReadingTime: B + 2000,
        distanceFromObject: 210,
        x: 1,
        y: 0,
        z: 0,
        reading_date: '2022-06-18',
      },
      {
        customerId: CAROL,
        serialNumber: 'S-C',
        sensorReadingTime: M,
        distanceFromObject: 230,
        x: 1,
        y: 1,
        z: 1,
        reading_date: '2022-06-19',
      },
    ];
    expect(rows).toEqual(policy === 'any' ? expected : expected.slice(1));
  });

  it('writes the readings tables as reading_date partitions', async () => {
    const files = await query(
      lake,
      "select file from glob('" + lakeDir + "/machine_learning/curated/*/*.parquet') order by file",
    );
    const partitions = files.map((f) => path.basename(path.dirname(String(f.file))));
    expect([...new Set(partitions)]).toEqual(['reading_date=2022-06-18', 'reading_date=2022-06-19']);
  });
});

describe('the e-mail case count', () => {
  let lakeDir: string;
  afterAll(() => removeDir(lakeDir));

  it('is the same when a landing file has a bad line (counted by a scan, not by the check)', async () => {
    lakeDir = tempDir('semantics-bad-line');
    const lake = new Lake(lakeDir);
    await lake.dropFolder(FIXTURES);
    appendFileSync(path.join(lakeDir, 'accelerometer/landing/accelerometer-1.json'), '{"user": "Alice\n');
    const results = await runPipeline(lake);
    const accelerometerJob = results.find((r) => r.job === 'accelerometer_landing_to_trusted')!;
    expect(accelerometerJob.quarantined).toEqual({ accelerometer: 1 });
    expect(accelerometerJob.diagnostics).toEqual({ email_case_mismatches: 1 });
    expect((await lake.readCatalog()).tables.accelerometer_trusted?.diagnostics).toEqual({ email_case_mismatches: 1 });
  });
});
