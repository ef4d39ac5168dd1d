import { AthenaClient } from '@aws-sdk/client-athena';
import { runAthenaQuery } from '../../aws/athena';
import { awsClientConfig } from '../../aws/clients';
import { checksFor } from '../../checks/definitions';
import { CheckResult, runChecks, runLakeChecks } from '../../checks/run';
import { formatTable, seconds } from '../common/format';
import type { Where } from '../common/options';
import { athenaTarget, existingLake } from './targets';

const out = (line: string) => process.stdout.write(`${line}\n`);
const note = (line: string) => process.stderr.write(`${line}\n`);
// --- stedi check --------------------------------------------------------------------------------------

export async function checkCommand(where: Where, options: { json?: boolean }): Promise<number> {
  let results: CheckResult[];
  if ('stage' in where) {
    const target = await athenaTarget(where.stage);
    const athena = new AthenaClient(awsClientConfig());
    const checks = checksFor(target.database);
    if (!options.json) note(`running ${checks.length} checks on Athena (workgroup ${target.workGroup})`);
    results = await runChecks(checks, (sql) => runAthenaQuery(athena, target, sql), {
      concurrency: checks.length,
    });
  } else {
    results = await runLakeChecks(existingLake(where.lake));
  }
  printCheckResults(results, options.json);
  return results.every((r) => r.status === 'pass') ? 0 : 1;
}

export function printCheckResults(results: CheckResult[], json?: boolean): void {
  if (json) {
    out(JSON.stringify(results));
    return;
  }
  out(
    formatTable(
      ['check', 'result', 'violations', 'duration'],
      results.map((r) => ({
        check: r.name,
        result: r.status === 'pass' ? 'pass' : r.status === 'fail' ? 'FAIL' : 'ERROR',
        violations: r.violations,
        duration: seconds(r.durationMs),
      })),
    ),
  );
  for (const r of results.filter((x) => x.status !== 'pass')) {
    out(`\n${r.name}: ${r.summary}`);
    if (r.error) out(`error: ${r.error}`);
    else {
      out(formatTable(r.columns, r.rows));
      if (r.violations > r.rows.length) out(`(the first ${r.rows.length} of ${r.violations} rows)`);
    }
  }
  const failed = results.filter((r) => r.status !== 'pass').length;
  out(failed === 0 ? `\nall ${results.length} checks passed` : `\n${failed} of ${results.length} checks failed`);
}
