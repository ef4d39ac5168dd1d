import { expect } from '@jest/globals';
import { AthenaTaskError, localAthena, withParameters } from '../../src/stand-ins/athena/local-athena';

// The local binding of the state machine's Athena tasks, against the shapes Step Functions and Athena
// document: startQueryExecution.sync answers with GetQueryExecution's response; GetQueryResults gives
// a SELECT's column names as its first row and every value as text.

const rows = [
  { table_name: 'customer_curated', column_name: 'serialNumber', n: 2 },
  { table_name: 'machine_learning_curated', column_name: null, n: 1 },
];

function athena(fail?: string) {
  let closed = 0;
  const api = localAthena(
    () =>
      Promise.resolve({
        query: () =>
          fail
            ? Promise.reject(new Error(fail))
            : Promise.resolve({
                columns: ['table_name', 'column_name', 'n'],
                types: ['VARCHAR', 'VARCHAR', 'BIGINT'],
                rows,
              }),
        close: () => void closed++,
      }),
    { workGroup: 'local', database: 'lake' },
  );
  return { ...api, closed: () => closed };
}

describe('the local Athena tasks', () => {
  it('startQueryExecution.sync waits for the query and returns GetQueryExecution: QueryExecution with its id and SUCCEEDED', async () => {
    const a = athena();
    const out = (await a.startQueryExecutionSync({
      QueryString: '-- a check\nselect 1',
      WorkGroup: 'wg',
      QueryExecutionContext: { Database: 'db' },
    })) as { QueryExecution: Record<string, unknown> };
    expect(out.QueryExecution).toMatchObject({
      QueryExecutionId: expect.any(String),
      Query: '-- a check\nselect 1',
      StatementType: 'DML',
      WorkGroup: 'wg',
      QueryExecutionContext: { Database: 'db' },
      Status: { State: 'SUCCEEDED' },
    });
    expect(a.closed()).toBe(1);
  });

  it('getQueryResults gives the column names as the first row, values as text and NULL without VarCharValue', async () => {
    const a = athena();
    const { QueryExecution } = (await a.startQueryExecutionSync({ QueryString: 'select 1' })) as {
      QueryExecution: { QueryExecutionId: string };
    };
    const results = (await a.getQueryResults({ QueryExecutionId: QueryExecution.QueryExecutionId })) as {
      ResultSet: {
        Rows: { Data: { VarCharValue?: string }[] }[];
        ResultSetMetadata: { ColumnInfo: { Name: string; Type: string }[] };
      };
      NextToken?: string;
    };
    expect(results.ResultSet.Rows).toEqual([
      { Data: [{ VarCharValue: 'table_name' }, { VarCharValue: 'column_name' }, { VarCharValue: 'n' }] },
      { Data: [{ VarCharValue: 'customer_curated' }, { VarCharValue: 'serialNumber' }, { VarCharValue: '2' }] },
      { Data: [{ VarCharValue: 'machine_learning_curated' }, {}, { VarCharValue: '1' }] },
    ]);
    expect(results.ResultSet.ResultSetMetadata.ColumnInfo.map((c) => [c.Name, c.Type])).toEqual([
      ['table_name', 'varchar'],
      ['column_name', 'varchar'],
      ['n', 'bigint'],
    ]);
    expect(results.NextToken).toBeUndefined();
  });

  it('getQueryResults counts the header row in MaxResults and pages with NextToken', async () => {
    const a = athena();
    const id = (
      (await a.startQueryExecutionSync({ QueryString: 'select 1' })) as { QueryExecution: { QueryExecutionId: string } }
    ).QueryExecution.QueryExecutionId;
    const first = (await a.getQueryResults({ QueryExecutionId: id, MaxResults: 2 })) as {
      ResultSet: { Rows: unknown[] };
      NextToken?: string;
    };
    expect(first.ResultSet.Rows).toHaveLength(2);
    expect(first.NextToken).toBeDefined();
    const second = (await a.getQueryResults({ QueryExecutionId: id, MaxResults: 2, NextToken: first.NextToken })) as {
      ResultSet: { Rows: { Data: { VarCharValue?: string }[] }[] };
      NextToken?: string;
    };
    expect(second.ResultSet.Rows.map((r) => r.Data[0]?.VarCharValue)).toEqual(['machine_learning_curated']);
    expect(second.NextToken).toBeUndefined();
    await expect(a.getQueryResults({ QueryExecutionId: id, MaxResults: 1001 })).rejects.toMatchObject({
      name: 'Athena.InvalidRequestException',
    });
  });

  it('a failing query fails the .sync task with States.TaskFailed, the cause holding the FAILED QueryExecution', async () => {
    const a = athena('Catalog Error: Table with name customer_curated does not exist!');
    const error = (await a
      .startQueryExecutionSync({ QueryString: 'select 1' })
      .catch((e: unknown) => e)) as AthenaTaskError;
    expect(error.name).toBe('States.TaskFailed');
    expect((JSON.parse(error.message) as { QueryExecution: { Status: unknown } }).QueryExecution.Status).toMatchObject({
      State: 'FAILED',
      StateChangeReason: 'Catalog Error: Table with name customer_curated does not exist!',
    });
    expect(a.closed()).toBe(1);
  });

  it('an unknown query id is an Athena.InvalidRequestException', async () => {
    await expect(athena().getQueryResults({ QueryExecutionId: 'nope' })).rejects.toMatchObject({
      name: 'Athena.InvalidRequestException',
    });
  });
});

// StartQueryExecution's ExecutionParameters (Athena API reference): "The values are applied sequentially to the
// parameters in the query in the order in which the parameters occur"; a string value is given quoted.
describe('the local Athena: ExecutionParameters', () => {
  it('fills each ? in order, leaving a ? in a string, a quoted name or a comment as text', () => {
    const sql = `select ?, '?' as "q?" -- ?\nfrom t /* ? */ where name = ?`;
    expect(withParameters(sql, ["'run_1'", '42'])).toBe(
      `select 'run_1', '?' as "q?" -- ?\nfrom t /* ? */ where name = 42`,
    );
    expect(withParameters("select 'it''s ?'", [])).toBe("select 'it''s ?'");
  });

  it('fails the query when the values and the placeholders differ in number, as Trino does', async () => {
    expect(() => withParameters('select ?, ?', ["'a'"])).toThrow(
      'Incorrect number of parameters: expected 2 but found 1',
    );
    expect(() => withParameters('select 1', ["'a'"])).toThrow('expected 0 but found 1');
    const queried: string[] = [];
    const api = localAthena(
      () =>
        Promise.resolve({
          query: (sql: string) => {
            queried.push(sql);
            return Promise.resolve({ columns: ['x'], types: ['VARCHAR'], rows: [{ x: 'run_1' }] });
          },
          close: () => undefined,
        }),
      { workGroup: 'local', database: 'lake' },
    );
    await api.startQueryExecutionSync({ QueryString: 'select ? as x', ExecutionParameters: ["'run_1'"] });
    expect(queried).toEqual(["select 'run_1' as x"]);
    await expect(
      api.startQueryExecutionSync({ QueryString: 'select ? as x', ExecutionParameters: [] }),
    ).rejects.toMatchObject({ name: 'States.TaskFailed' });
    await expect(
      api.startQueryExecutionSync({ QueryString: 'select 1', ExecutionParameters: [1] }),
    ).rejects.toMatchObject({
      name: 'Athena.InvalidRequestException',
    });
  });
});
