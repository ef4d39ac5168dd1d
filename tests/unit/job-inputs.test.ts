import { JOB_PARAMETERS_TABLE, PipelineDefinitionError, declaredReads, loadJobs } from '../../src/definition/pipeline';
import { tablesReadBy } from '../helpers/sql-parsers';

// Each job file declares the tables it reads in its header, as dbt's ref() does; the declaration binds the
// inputs (locally and on Glue, where it becomes the job's --input_tables) and orders the jobs. Here a real
// Spark SQL parser checks every declaration against the SQL it heads.

describe('declared job inputs', () => {
  it.each(loadJobs().map((job) => [job.name, job] as const))(
    '%s declares exactly the tables its SQL reads',
    (_name, job) => {
      const parsed = tablesReadBy(job.sql).filter((table) => table !== JOB_PARAMETERS_TABLE);
      expect([...job.reads].sort()).toEqual(parsed.sort());
    },
  );

  it('reads a declaration that goes on over several comment lines and ends with a period', () => {
    const sql =
      '-- t: one row per x.\n-- Reads: customer_trusted, accelerometer_trusted,\n-- job_parameters, customer_curated.\nselect 1';
    expect(declaredReads(sql, 'x.sql')).toEqual(['customer_trusted', 'accelerometer_trusted', 'customer_curated']);
  });

  it('names the file and the table when a declaration is missing or names no catalog table', () => {
    expect(() => declaredReads('select 1 from customer_trusted', 'glue/jobs/x.sql')).toThrow(PipelineDefinitionError);
    expect(() => declaredReads('select 1', 'glue/jobs/x.sql')).toThrow(/glue\/jobs\/x\.sql has no "-- Reads:/);
    expect(() => declaredReads('-- Reads: customer_trusted, nonsense.\nselect 1', 'glue/jobs/y.sql')).toThrow(
      /glue\/jobs\/y\.sql declares it reads "nonsense", which is not a catalog table/,
    );
  });
});

describe('the Spark SQL parser behind the check', () => {
  // The hand-written scanner it replaces got each of these wrong.
  it.each([
    ['a comma join', 'select * from a, b', ['a', 'b']],
    ['extract and trim, whose FROM is no table', 'select extract(year from birthDay), trim(both from x) from t', ['t']],
    ['a qualified name', 'select * from db.t join u on true', ['db.t', 'u']],
    [
      'CTEs, a semi join',
      'with c as (select 1 from r), d as (select 2 from c) select * from d left semi join p on true',
      ['r', 'p'],
    ],
    ['words in strings and comments', "-- from comment_table\nselect 'from string_table' from real_one", ['real_one']],
  ])('%s', (_name, sql, tables) => {
    expect(tablesReadBy(sql).sort()).toEqual([...tables].sort());
  });
});
