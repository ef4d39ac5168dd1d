import { expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readDerivedTables } from '../../src/definition/derived-tables';
import { OFFLINE_ENV, ROOT, SERVERLESS, STAGE, template as shared } from './template';

// The derived Iceberg tables' snapshot expiry and orphan file deletion (AWS::Glue::TableOptimizer, docs/iceberg.md),
// read from the template `serverless package` builds offline (package-setup.ts; outputs-and-lint.test.ts lints it).

interface Resource {
  Type: string;
  DependsOn?: string | string[];
  Properties: Record<string, unknown>;
}
interface Template {
  Parameters: Record<string, { Type: string; Default?: unknown; MinValue?: number }>;
  Resources: Record<string, Resource>;
}
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, string[]>>;
  Principal?: unknown;
}
interface OptimizerProperties {
  CatalogId: unknown;
  DatabaseName: unknown;
  TableName: string;
  Type: string;
  TableOptimizerConfiguration: {
    Enabled: boolean;
    RoleArn: unknown;
    RetentionConfiguration?: { IcebergConfiguration: Record<string, unknown> };
    OrphanFileDeletionConfiguration?: { IcebergConfiguration: Record<string, unknown> };
  };
}

const DERIVED = readDerivedTables();
const template = shared as unknown as Template;
const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
const sub = (value: unknown) => (value as { 'Fn::Sub'?: string })['Fn::Sub'];

const optimizers = () =>
  Object.entries(template.Resources)
    .filter(([, r]) => r.Type === 'AWS::Glue::TableOptimizer')
    .map(([id, r]) => ({
      id,
      dependsOn: list(r.DependsOn ?? []),
      ...(r.Properties as unknown as OptimizerProperties),
    }));

/** The allowing statements of a role's inline policies. */
function roleStatements(roleId: string): Statement[] {
  const role = template.Resources[roleId];
  if (role?.Type !== 'AWS::IAM::Role') throw new Error(`${roleId} is not a role of the template`);
  const policies = role.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[];
  return policies.flatMap((p) => p.PolicyDocument.Statement);
}
const actionsOf = (statements: Statement[]) => statements.flatMap((s) => list(s.Action)).sort();
const roleIdOf = (roleArn: unknown) => (roleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];

describe('serverless package: Iceberg snapshot expiry and orphan file deletion (Glue table optimizers)', () => {
  it('gives every derived table a retention and an orphan_file_deletion optimizer, after the table exists', () => {
    const found = optimizers();
    expect(found.map((o) => `${o.TableName} ${o.Type}`).sort()).toEqual(
      DERIVED.flatMap((t) => [`${t.name} orphan_file_deletion`, `${t.name} retention`]).sort(),
    );
    for (const o of found) {
      expect(o.DatabaseName).toEqual({ Ref: 'GlueDatabase' });
      expect(o.CatalogId).toEqual({ Ref: 'AWS::AccountId' });
      expect(o.TableOptimizerConfiguration.Enabled).toBe(true);
      // The table's AWS::Glue::Table (its Iceberg CREATE) comes first: an optimizer needs an Iceberg table.
      const table = o.dependsOn.map((id) => template.Resources[id]);
      expect(table.map((t) => (t?.Properties.TableInput as { Name: string }).Name)).toEqual([o.TableName]);
    }
  });

  it('expires snapshots older than SnapshotRetentionDays (default 30), always keeps the newest, and deletes their files; orphans after 3 days', () => {
    expect(template.Parameters.SnapshotRetentionDays).toMatchObject({ Type: 'Number', Default: 30, MinValue: 1 });
    for (const o of optimizers()) {
      const config = o.TableOptimizerConfiguration;
      if (o.Type === 'retention') {
        expect(config.RetentionConfiguration?.IcebergConfiguration).toEqual({
          SnapshotRetentionPeriodInDays: { Ref: 'SnapshotRetentionDays' },
          NumberOfSnapshotsToRetain: 1,
          CleanExpiredFiles: true,
        });
        expect(config.OrphanFileDeletionConfiguration).toBeUndefined();
      } else {
        expect(config.OrphanFileDeletionConfiguration?.IcebergConfiguration).toEqual({
          OrphanFileRetentionPeriodInDays: 3,
        });
        expect(config.RetentionConfiguration).toBeUndefined();
      }
    }
  });

  it('takes the retention from `--param snapshotRetentionDays=N`', () => {
    // `serverless print` resolves the same variables as package, without writing .serverless/ (which the
    // package and deploy of other deploy tests use).
    const print = spawnSync(
      SERVERLESS,
      ['print', '--stage', STAGE, '--param', 'snapshotRetentionDays=7', '--format', 'json'],
      { cwd: ROOT, env: OFFLINE_ENV, encoding: 'utf8', timeout: 60_000 },
    );
    if (print.status !== 0) throw new Error(`serverless print failed:\n${print.stdout}\n${print.stderr}`);
    const resolved = JSON.parse(print.stdout) as { resources: { Parameters: Template['Parameters'] } };
    // A CLI --param comes through as text; CloudFormation takes a Number parameter's Default either way.
    expect(String(resolved.resources.Parameters.SnapshotRetentionDays?.Default)).toBe('7');
  }, 70_000);

  it("runs each optimizer as a role Glue assumes, allowed only the derived tables' files, Catalog entries and its own logs", () => {
    const prefixes = DERIVED.map((t) => t.location.replace(/\/+$/, ''));
    const tableArns = DERIVED.map(
      (t) => `arn:\${AWS::Partition}:glue:\${AWS::Region}:\${AWS::AccountId}:table/\${GlueDatabase}/${t.name}`,
    );
    for (const type of ['retention', 'orphan_file_deletion']) {
      const roles = new Set(
        optimizers()
          .filter((o) => o.Type === type)
          .map((o) => roleIdOf(o.TableOptimizerConfiguration.RoleArn)),
      );
      expect(roles.size).toBe(1);
      const roleId = [...roles][0]!;
      const trust = (template.Resources[roleId]!.Properties.AssumeRolePolicyDocument as { Statement: Statement[] })
        .Statement;
      expect(trust).toEqual([
        { Effect: 'Allow', Principal: { Service: 'glue.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ]);
      const statements = roleStatements(roleId);
      expect(statements.every((s) => s.Effect === 'Allow')).toBe(true);
      // "The orphan file deletion optimizer doesn't require the glue:updateTable or s3:putObject permissions"
      // (AWS Glue guide, "Table optimization prerequisites").
      const writes = type === 'retention' ? ['glue:UpdateTable', 's3:PutObject'] : [];
      expect(actionsOf(statements)).toEqual(
        [
          'glue:GetTable',
          's3:GetObject',
          's3:DeleteObject',
          's3:ListBucket',
          'logs:CreateLogGroup',
          'logs:CreateLogStream',
          'logs:PutLogEvents',
          ...writes,
        ].sort(),
      );
      for (const s of statements) {
        const actions = list(s.Action);
        const resources = list(s.Resource);
        if (actions.includes('s3:ListBucket')) {
          expect(resources).toEqual([{ 'Fn::GetAtt': ['DataBucket', 'Arn'] }]);
          expect(s.Condition?.StringLike?.['s3:prefix']).toEqual(prefixes.flatMap((p) => [p, `${p}/*`]));
        } else if (actions.some((a) => a.startsWith('s3:')))
          expect(resources.map(sub)).toEqual(prefixes.map((p) => `\${DataBucket.Arn}/${p}/*`));
        else if (actions.some((a) => a.startsWith('glue:')))
          expect(resources.map(sub)).toEqual([
            'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog',
            'arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/${GlueDatabase}',
            ...tableArns,
          ]);
        else {
          const group = type === 'retention' ? 'iceberg-retention' : 'iceberg-orphan-file-deletion';
          expect(resources.map((r) => String(sub(r)).replace(/^.*:log-group:/, ''))).toEqual([
            `/aws-glue/${group}/logs`,
            `/aws-glue/${group}/logs:*`,
          ]);
        }
      }
    }
  });
});
