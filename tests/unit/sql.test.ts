import path from 'node:path';
import { readFileSync } from 'node:fs';
import { readLandingTables, readLandingTableDdl } from '../../src/sql/ddl';
import { tablesReadBy } from '../../src/sql/references';
import { glueDir } from '../../src/project';

describe('landing table DDL', () => {
  it('reads the columns, types and required fields of the SOURCE.md schemas', () => {
    const tables = readLandingTables(glueDir());

    const customer = tables.get('customer_landing')!;
    expect(customer.location).toBe('s3://${bucket}/customer/landing/');
    expect(customer.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      'customerName:string',
      'email:string',
      'phone:string',
      'birthDay:string',
      'serialNumber:string',
      'registrationDate:bigint',
      'lastUpdateDate:bigint',
      'shareWithResearchAsOfDate:bigint',
      'shareWithPublicAsOfDate:bigint',
      'shareWithFriendsAsOfDate:bigint',
    ]);
    expect(customer.columns.filter((c) => c.required).map((c) => c.name)).toEqual([
      'email',
      'serialNumber',
      'lastUpdateDate',
    ]);

    const accelerometer = tables.get('accelerometer_landing')!;
    expect(accelerometer.columns.map((c) => `${c.name}:${c.type}:${c.required}`)).toEqual([
      'user:string:true',
      'timestamp:bigint:true',
      'x:double:true',
      'y:double:true',
      'z:double:true',
    ]);
    const stepTrainer = tables.get('step_trainer_landing')!;
    expect(stepTrainer.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      'sensorReadingTime:bigint',
      'serialNumber:string',
      'distanceFromObject:int',
    ]);
  });

  it('names the file and the column it cannot read', () => {
    const bad = path.join(__dirname, '../fixtures/ddl/bad_type.sql');
    expect(() => readLandingTableDdl(bad)).toThrow(/bad_type\.sql: column when has type timestamp/);
  });
});

describe('tablesReadBy', () => {
  it('lists FROM and JOIN tables, not CTEs, not words inside strings or comments', () => {
    const sql = `-- reads from nowhere_in_comment
      with a as (select x from source_one), b as (select y from a join source_two t on t.k = a.k)
      select 'from string_table' as s from b semi join source_three on true cross join a`;
    expect(tablesReadBy(sql)).toEqual(['source_one', 'source_two', 'source_three']);
  });

  it('finds the inputs of every job SQL file', () => {
    const read = (job: string) => tablesReadBy(readFileSync(path.join(glueDir(), 'jobs', `${job}.sql`), 'utf8'));
    expect(read('customer_landing_to_trusted')).toEqual(['customer_landing']);
    expect(read('accelerometer_landing_to_trusted').sort()).toEqual([
      'accelerometer_landing',
      'customer_trusted',
      'job_parameters',
    ]);
    expect(read('machine_learning_curated').sort()).toEqual([
      'accelerometer_trusted',
      'customer_curated',
      'customer_trusted',
      'job_parameters',
      'step_trainer_trusted',
    ]);
  });
});
