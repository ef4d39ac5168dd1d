import { describe, expect, it } from '@jest/globals';
import { cliInvocation, formatRunReport } from '../../src/cli/common/run-report';
import type { LakeSummary } from '../../src/lake/summary';

const TABLES = {
  customer_landing: { rows: 3 },
  accelerometer_landing: { rows: 2 },
  step_trainer_landing: { rows: 1 },
  customer_trusted: { rows: 2 },
  accelerometer_trusted: { rows: 2 },
  customer_curated: { rows: 1 },
  step_trainer_trusted: { rows: 1 },
  machine_learning_curated: { rows: 1 },
} as LakeSummary['tables'];

const report = (quarantined: LakeSummary['quarantined'], lakeArgument = '.lake') =>
  formatRunReport({
    status: 'SUCCEEDED',
    summary: { tables: TABLES, quarantined, emailCaseMismatches: 0 },
    lakeArgument,
    lakeRoot: '/home/me/stedi/.lake',
    elapsedMs: 1234,
    invocation: 'node bin/stedi.js',
  }).join('\n');

describe("stedi run's closing report", () => {
  it('names the lake and the commands to look at it; stedi quarantine only when lines were quarantined', () => {
    const clean = report({ customer: 0, accelerometer: 0, step_trainer: 0 });
    expect(clean).toMatch(/\nmachine_learning_curated +1\n/);
    expect(clean).toContain('\nSUCCEEDED in 1.23s\n');
    expect(clean).toContain('The lake is in /home/me/stedi/.lake');
    expect(clean).toContain('  node bin/stedi.js query "select count(*) from machine_learning_curated" --lake .lake\n');
    expect(clean).toContain('  node bin/stedi.js tables --lake .lake');
    expect(clean).not.toContain('quarantine');

    const dirty = report({ customer: 2, accelerometer: 0, step_trainer: 1 });
    expect(dirty).toContain('quarantined landing lines: 2 customer, 1 step_trainer');
    expect(dirty).toContain('  node bin/stedi.js quarantine --lake .lake    # the 3 landing line(s) the run rejected');
  });

  it('quotes a lake path the shell would split', () => {
    expect(report({ customer: 0, accelerometer: 0, step_trainer: 0 }, "my lake's")).toContain(
      `tables --lake 'my lake'\\''s'`,
    );
  });

  it('gives the command as it was started: node and the script in a checkout, stedi once installed', () => {
    expect(cliInvocation(['/usr/bin/node', '/repo/bin/stedi.js'], '/repo')).toBe('node bin/stedi.js');
    expect(cliInvocation(['/usr/bin/node', '/repo/bin/stedi.js'], '/elsewhere')).toBe('node /repo/bin/stedi.js');
    expect(cliInvocation(['/usr/bin/node', '/usr/local/bin/stedi'], '/repo')).toBe('stedi');
  });
});
