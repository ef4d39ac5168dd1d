import path from 'node:path';
import { readLandingTables, readLandingTableDdl } from '../../src/definition/ddl';
import { glueDir } from '../../src/project';

describe('landing table DDL', () => {
  it('reads the columns, types and required fields of the STEDI landing schemas', () => {
    const tables = readLandingTables(glueDir());

    const customer = tables.customer_landing;
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

    const accelerometer = tables.accelerometer_landing;
    expect(accelerometer.columns.map((c) => `${c.name}:${c.type}:${c.required}`)).toEqual([
      'user:string:true',
      'timestamp:bigint:true',
      'x:double:true',
      'y:double:true',
      'z:double:true',
    ]);
    const stepTrainer = tables.step_trainer_landing;
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
