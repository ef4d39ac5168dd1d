import { expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/project';
import { removeDir, tempDir } from '../helpers/lake';

// The CLI at the edges of its input (issue 18): the built CLI, run as `npx stedi` runs it.
const BIN = path.join(projectRoot(), 'bin', 'stedi.js');
const FIXTURES = path.join(__dirname, '../fixtures/semantics');

function stedi(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, STEDI_PII_SALT: 'cli-edges-salt-0123456789', ...env },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

// A line that is not UTF-8: "Renée" in Latin-1 (E9).
const LATIN1_LINE = Buffer.from('{"customerName":"Ren\xe9e"}', 'latin1');
// A landing line that would recolour the terminal, ring its bell and retitle its window if printed as is.
const ESCAPES_LINE = '\u001b[31mred\u001b[0m\u0007\u001b]0;pwned\u0007';

describe('a lake whose path holds glob characters ([, *, ?)', () => {
  let dir: string;
  let lake: string;
  beforeAll(() => {
    dir = tempDir('cli-edges');
    lake = path.join(dir, 'la[k]e*?');
    mkdirSync(path.join(lake, 'customer', 'landing'), { recursive: true });
    writeFileSync(
      path.join(lake, 'customer', 'landing', 'odd.json'),
      Buffer.concat([Buffer.from(`${ESCAPES_LINE}\n`), LATIN1_LINE, Buffer.from('\n')]),
    );
    const run = stedi(['run', '--landing', FIXTURES, '--lake', lake, '--json']);
    expect(run.code).toBe(0);
  });
  afterAll(() => removeDir(dir));

  it('is queried like any other: derived tables, landing tables and quarantines', () => {
    const derived = stedi(['query', 'select count(*) as n from customer_trusted', '--lake', lake, '--json']);
    expect(derived.stderr).toBe('');
    expect(JSON.parse(derived.stdout)).toEqual([{ n: 3 }]);
    const landing = stedi(['query', 'select count(*) as n from customer_landing', '--lake', lake, '--json']);
    expect(JSON.parse(landing.stdout)).toEqual([{ n: 10 }]);
  });

  it('lists its quarantine, the line exactly in --json and its escape sequences shown escaped in the table', () => {
    const json = stedi(['quarantine', '--lake', lake, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({
        source_file: 'customer/landing/odd.json',
        line_number: 1,
        line: ESCAPES_LINE,
        line_encoding: 'text',
      }),
      expect.objectContaining({
        line_number: 2,
        reason: 'not valid UTF-8 text',
        line: LATIN1_LINE.toString('base64'),
        line_encoding: 'base64',
      }),
    ]);

    const table = stedi(['quarantine', '--lake', lake, '--width', '200']);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('\\x1b[31mred\\x1b[0m\\x07\\x1b]0;pwned\\x07');
    // The line that is not UTF-8 reads as itself, its bad byte named.
    expect(table.stdout).toContain('{"customerName":"Ren\\xe9e"}');
    expect([...table.stdout].filter((ch) => ch < ' ' && ch !== '\n')).toEqual([]);
  });

  it('refuses an empty query and a query of several statements, saying why (usage errors)', () => {
    for (const sql of ['', '  ;  ', '/* only a comment */']) {
      const empty = stedi(['query', sql, '--lake', lake]);
      expect(empty.code).toBe(2);
      expect(empty.stderr).toBe('stedi: the query is empty: give one SQL statement\n');
    }
    const several = stedi(['query', 'select 1 as a; select 2 as b', '--lake', lake]);
    expect(several.code).toBe(2);
    expect(several.stdout).toBe('');
    expect(several.stderr).toContain('the query holds 2 statements: give one at a time');
    // One statement with its semicolon is one statement.
    expect(JSON.parse(stedi(['query', 'select 1 as a;', '--lake', lake, '--json']).stdout)).toEqual([{ a: 1 }]);
  });
});

describe('stedi drop refuses what the pipeline would never read, locally as with --stage', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir('cli-drop')));
  afterEach(() => removeDir(dir));

  it('refuses a file not named .json, leaving the lake untouched (exit code 2)', () => {
    const file = path.join(dir, 'customers.jsonl');
    writeFileSync(file, '{"email":"a@test.com"}\n');
    const lake = path.join(dir, 'lake');
    const message = `stedi: ${file}: the pipeline starts only for .json files and reads only them; rename it first\n`;
    const local = stedi(['drop', file, '--dataset', 'customer', '--lake', lake]);
    expect([local.code, local.stderr]).toEqual([2, message]);
    expect(existsSync(lake)).toBe(false);
    // Refused before any AWS call: no stack is needed to see it.
    const onStage = stedi(['drop', file, '--dataset', 'customer', '--stage', 'nope']);
    expect([onStage.code, onStage.stderr]).toEqual([2, message]);
  });

  it('says a folder is a folder (exit code 2), never a raw EISDIR', () => {
    const folder = path.join(dir, 'customer.json');
    mkdirSync(folder);
    const lake = path.join(dir, 'lake');
    for (const where of [
      ['--lake', lake],
      ['--stage', 'nope'],
    ]) {
      const drop = stedi(['drop', folder, '--dataset', 'customer', ...where]);
      expect(drop.code).toBe(2);
      expect(drop.stderr).toBe(
        `stedi: ${folder} is a folder: give one JSON-lines file (\`stedi run --landing DIR\` drops a folder's files)\n`,
      );
    }
    expect(existsSync(lake)).toBe(false);
  });
});

describe('stedi start and stedi status name their stage', () => {
  it.each([['start'], ['status']])('stedi %s without --stage is a usage error, not a run on dev', (command) => {
    // An endpoint nothing listens on: had the command gone to AWS, it would fail otherwise.
    const result = stedi([command], { AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_REGION: 'us-east-1' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^error: required option '--stage <name>' not specified/);
  });
});

describe('a landing entry whose name holds terminal escape sequences', () => {
  // S3 keys and file names may hold control characters; the warnings about an entry that cannot be read
  // name it, escaped as the tables escape text, so the name can neither drive the terminal nor hide itself.
  let dir: string;
  beforeEach(() => (dir = tempDir('cli-escaped-names')));
  afterEach(() => removeDir(dir));

  it('is named escaped in the warnings of stedi run --landing, stedi run and stedi query', () => {
    const name = 'evil\u001b[2J\u001b]0;pwned\u0007.json';
    const shown = 'evil\\x1b[2J\\x1b]0;pwned\\x07.json';
    const landing = path.join(dir, 'landing');
    mkdirSync(path.join(landing, 'customer', name), { recursive: true }); // a folder named *.json: not read
    writeFileSync(path.join(landing, 'customer', 'ok.json'), '{"email":"a@test.com"}\n');
    const lake = path.join(dir, 'lake');
    mkdirSync(path.join(lake, 'customer', 'landing', name), { recursive: true });

    const run = stedi(['run', '--landing', landing, '--lake', lake]);
    expect(run.stderr).toContain(`warning: --landing ${path.join(landing, 'customer', shown)} not dropped`);
    expect(run.stderr).toContain(`warning: landing file customer/landing/${shown} not read: a folder, not a file`);
    const query = stedi(['query', 'select count(*) as n from customer_landing', '--lake', lake]);
    expect(query.stderr).toContain(`warning: landing file customer/landing/${shown} not read: a folder, not a file`);
    for (const output of [run.stderr, query.stderr])
      expect([...output].filter((ch) => ch < ' ' && ch !== '\n')).toEqual([]);
  });
});
