import { auditedSnapshots, branchHeadsSql, checkOnBranch } from '../../src/aws/branch-checks';

// Iceberg's refs metadata table (name, type, snapshot_id), as Athena's "table$refs" gives it; Athena's version
// travel takes a snapshot id (Athena guide, "Perform time travel and version travel queries").
describe('the data checks on a run’s Iceberg branches', () => {
  it("asks each table's $refs for main and the run's branch, in one query", () => {
    const sql = branchHeadsSql('stedi', ['customer_trusted', 'accelerometer_trusted'], 'run_exec-1');
    expect(sql).toContain(`from "stedi"."customer_trusted$refs"`);
    expect(sql).toContain(`from "stedi"."accelerometer_trusted$refs"`);
    expect(sql.match(/name in \('main', 'run_exec-1'\)/g)).toHaveLength(2);
    expect(sql.split('union all')).toHaveLength(2);
    expect(() => branchHeadsSql('stedi', [], 'run_1')).toThrow('no table');
  });

  it("audits the branch head of a table the run wrote, main's head of one it did not, and leaves out one with neither", () => {
    const audited = auditedSnapshots(
      [
        { table_name: 'customer_trusted', name: 'main', snapshot_id: '8744736658442914487' },
        { table_name: 'customer_trusted', name: 'run_1', snapshot_id: '9000000000000000001' },
        { table_name: 'customer_curated', name: 'main', snapshot_id: '7269112233445566771' },
        { table_name: 'step_trainer_trusted', name: 'run_1', snapshot_id: '9000000000000000002' },
      ],
      'run_1',
    );
    expect([...audited]).toEqual([
      ['customer_trusted', '9000000000000000001'], // beyond 2^53: kept as text
      ['customer_curated', '7269112233445566771'],
      ['step_trainer_trusted', '9000000000000000002'],
    ]);
  });

  it('puts FOR VERSION AS OF after each audited table of a check, leaving other tables, columns and strings alone', () => {
    const audited = new Map([['customer_trusted', '9000000000000000001']]);
    const sql = checkOnBranch(
      "select count(*) from customer_trusted c join table_builds b on b.table_name = 'customer_trusted' where c.email is null",
      audited,
      'exec-1',
    );
    expect(sql).toBe(
      "select count(*) from customer_trusted FOR VERSION AS OF 9000000000000000001 c join table_builds b on b.table_name = 'customer_trusted' where c.email is null",
    );
  });
});
