import { AthenaClient } from '@aws-sdk/client-athena';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { statSync } from 'node:fs';
import { STSClient } from '@aws-sdk/client-sts';
import { AthenaTarget, runAthenaQuery, userResultsLocation } from '../../aws/athena';
import { callerUserId } from '../../aws/caller';
import { requireOutputs } from '../../aws/stack';
import { awsClientConfig } from '../../aws/clients';
import { ConfigError } from '../../config';
import { Lake } from '../../lake/lake';
import { formatTable } from '../common/format';

// A command's target: an existing local lake, or the Athena workgroup of a deployed stage.

export type Row = Record<string, unknown>;

const out = (line: string) => process.stdout.write(`${line}\n`);

export function existingLake(dir: string): Lake {
  const lake = new Lake(dir);
  let missing = false;
  try {
    statSync(lake.root);
  } catch (error) {
    missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
  if (missing) throw new ConfigError(`--lake ${dir}: no such folder; run \`stedi run\` first`);
  lake.checkAccess({ write: false }); // a file, or below one: said as such, not as an ENOTDIR on an inner path
  return lake;
}

/** The stack's Athena workgroup and Glue database, from its outputs, and this caller's results location. */
export async function athenaTarget(stage: string): Promise<AthenaTarget> {
  const outputs = await requireOutputs(new CloudFormationClient(awsClientConfig()), stage, [
    'AthenaWorkGroupName',
    'GlueDatabaseName',
    'DataBucketName',
  ]);
  const userId = await callerUserId(new STSClient(awsClientConfig()));
  return {
    workGroup: outputs.AthenaWorkGroupName,
    database: outputs.GlueDatabaseName,
    outputLocation: userResultsLocation(outputs.DataBucketName, userId),
  };
}

export function printRows(columns: string[], rows: Row[], json?: boolean): void {
  out(
    json ? JSON.stringify(rows) : `${formatTable(columns, rows)}\n(${rows.length} row${rows.length === 1 ? '' : 's'})`,
  );
}

// --- stedi query --stage ------------------------------------------------------------------------------

/** `stedi query --stage`: the SQL on Athena, in the stack's workgroup and database. */
export async function queryOnStage(sql: string, options: { stage: string; json?: boolean }): Promise<number> {
  const target = await athenaTarget(options.stage);
  const { columns, rows } = await runAthenaQuery(new AthenaClient(awsClientConfig()), target, sql);
  printRows(columns, rows, options.json);
  return 0;
}
