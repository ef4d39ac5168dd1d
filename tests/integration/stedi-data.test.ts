import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Lake } from '../../src/lake/lake';
import { projectRoot } from '../../src/project';
import { TEST_SALT, query, removeDir, runPipeline, tempDir } from '../helpers/lake';

// The public STEDI landing files, read in place (never copied into the project).
const STEDI = path.resolve(projectRoot(), '../shared/data/stedi/landing');
const haveData = existsSync(STEDI);
if (!haveData) console.warn(`skipping the real STEDI data tests: ${STEDI} not found`);
const describeIfData = haveData ? describe : describe.skip;

// The fields of the real landing records these tests read (glue/tables/ has them all).
interface CustomerRecord {
  customerName: string;
  email: string;
  phone: string;
  serialNumber: string;
  shareWithResearchAsOfDate?: number | null;
}
interface AccelerometerRecord {
  user: string;
  timestamp: number;
  x: number;
  y: number;
  z: number;
}
interface StepTrainerRecord {
  sensorReadingTime: number;
  serialNumber: string;
}

const readDataset = <T>(dataset: string): T[] =>
  readdirSync(path.join(STEDI, dataset))
    .sort()
    .flatMap((f) =>
      readFileSync(path.join(STEDI, dataset, f), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as T),
    );

describeIfData('the pipeline over the real STEDI data', () => {
  let dir: string;
  let lake: Lake;
  const customers = haveData ? readDataset<CustomerRecord>('customer') : [];
  const accelerometer = haveData ? readDataset<AccelerometerRecord>('accelerometer') : [];
  const steps = haveData ? readDataset<StepTrainerRecord>('step_trainer') : [];

  beforeAll(async () => {
    dir = tempDir('stedi');
    lake = new Lake(dir);
    await lake.dropFolder(STEDI);
    await runPipeline(lake);
  }, 60_000);

  afterAll(() => removeDir(dir));

  it('counts every landing record', async () => {
    const counts = await query(
      lake,
      `select
      (select count(*) from customer_landing) as customers,
      (select count(*) from accelerometer_landing) as accelerometer,
      (select count(*) from step_trainer_landing) as steps`,
    );
    expect(counts).toEqual([{ customers: 956, accelerometer: 81273, steps: 28680 }]);
  });

  it('matches an independent computation of every table in plain JavaScript', async () => {
    // The real data has one record per customer, so consent is just the key's presence.
    const consenting = new Map(customers.filter((c) => c.shareWithResearchAsOfDate != null).map((c) => [c.email, c]));
    const accelerometerTrusted = accelerometer.filter((a) => consenting.has(a.user));
    const withReadings = new Set(accelerometerTrusted.map((a) => a.user));
    const curatedSerials = new Map(
      [...consenting.values()].filter((c) => withReadings.has(c.email)).map((c) => [c.serialNumber, c.email]),
    );
    const stepTrusted = steps.filter((s) => curatedSerials.has(s.serialNumber));
    const readingsAt = new Map<string, number>();
    for (const a of accelerometerTrusted)
      readingsAt.set(`${a.user}|${a.timestamp}`, (readingsAt.get(`${a.user}|${a.timestamp}`) ?? 0) + 1);
    const pairs = stepTrusted.reduce(
      (n, s) => n + (readingsAt.get(`${curatedSerials.get(s.serialNumber)}|${s.sensorReadingTime}`) ?? 0),
      0,
    );

    const counts = await query(
      lake,
      `select
      (select count(*) from customer_trusted) as customer_trusted,
      (select count(*) from accelerometer_trusted) as accelerometer_trusted,
      (select count(*) from customer_curated) as customer_curated,
      (select count(*) from step_trainer_trusted) as step_trainer_trusted,
      (select count(*) from machine_learning_curated) as machine_learning_curated`,
    );
    expect(counts).toEqual([
      {
        customer_trusted: consenting.size,
        accelerometer_trusted: accelerometerTrusted.length,
        customer_curated: curatedSerials.size,
        step_trainer_trusted: stepTrusted.length,
        machine_learning_curated: pairs,
      },
    ]);
    expect(consenting.size).toBe(482);
  });

  it('traces every curated row back to a consenting customer', async () => {
    const consentingIds = new Map(
      customers
        .filter((c) => c.shareWithResearchAsOfDate != null)
        .map((c) => [createHash('sha256').update(`${TEST_SALT}${c.email}`).digest('hex'), c]),
    );
    const curated = await query(lake, 'select customerId, serialNumber from customer_curated');
    for (const row of curated) expect(consentingIds.get(String(row.customerId))?.serialNumber).toBe(row.serialNumber);
    const orphans = await query(
      lake,
      `select count(*) as n from machine_learning_curated m
      where not exists (select 1 from customer_curated c where c.customerId = m.customerId and c.serialNumber = m.serialNumber)`,
    );
    expect(orphans).toEqual([{ n: 0 }]);
  });

  it('never pairs two different customers in a machine-learning row', async () => {
    const rows = await query(
      lake,
      'select customerId, serialNumber, sensorReadingTime, x, y, z from machine_learning_curated',
    );
    const emailById = new Map(
      customers.map((c) => [createHash('sha256').update(`${TEST_SALT}${c.email}`).digest('hex'), c.email]),
    );
    const readings = new Set(accelerometer.map((a) => `${a.user}|${a.timestamp}|${a.x}|${a.y}|${a.z}`));
    const serialByEmail = new Map(customers.map((c) => [c.email, c.serialNumber]));
    const mismatched = rows.filter((r) => {
      const email = emailById.get(String(r.customerId))!;
      return (
        serialByEmail.get(email) !== r.serialNumber ||
        !readings.has(`${email}|${String(r.sensorReadingTime)}|${String(r.x)}|${String(r.y)}|${String(r.z)}`)
      );
    });
    expect(rows.length).toBeGreaterThan(0);
    expect(mismatched).toEqual([]);
  });

  it('lets no email, name or phone into a curated table', async () => {
    const pii = new Set(customers.flatMap((c) => [c.email, c.customerName, c.phone]));
    for (const table of ['customer_curated', 'machine_learning_curated']) {
      const columns = (await query(lake, `select column_name from (describe ${table})`)).map((c) =>
        String(c.column_name),
      );
      expect(columns.filter((c) => /email|name|phone|user/i.test(c))).toEqual([]);
      const rows = await query(lake, `select * from ${table}`);
      const leaks = rows.flatMap((r) => Object.values(r)).filter((v) => typeof v === 'string' && pii.has(v));
      expect(leaks).toEqual([]);
    }
  });
});
