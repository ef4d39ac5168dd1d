import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { landingFileCounts } from '../../src/glue-engine/runner-output';
import { glueSetupProblems } from '../../src/glue-engine/setup';
import { projectRoot } from '../../src/project';
import { removeDir, tempDir } from '../helpers/lake';

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');

describe('the Glue engine set-up check', () => {
  test('names each missing part of `npm run setup:glue`: the environment, the S3A jars, the worker', () => {
    const root = tempDir('glue-setup');
    try {
      mkdirSync(path.join(root, 'tools', 'glue-local'), { recursive: true });
      cpSync(
        path.join(projectRoot(), 'tools', 'glue-local', 'jars.txt'),
        path.join(root, 'tools', 'glue-local', 'jars.txt'),
      );
      const problems = glueSetupProblems(root);
      expect(problems).toEqual(
        expect.arrayContaining([
          ".venv/bin/python is missing (the project's Python environment)",
          '.cache/glue-jars/hadoop-aws-3.3.4.jar is missing (the S3A connector)',
          '.cache/glue-jars/aws-java-sdk-bundle-1.12.262.jar is missing (the S3A connector)',
          'the Glue stand-in tools/glue-local/glue_local/worker.py is missing',
        ]),
      );
    } finally {
      removeDir(root);
    }
  });

  test('stedi run --engine glue without java says what is missing and the command that installs the rest', () => {
    const lake = tempDir('glue-setup-lake');
    try {
      const result = spawnSync(process.execPath, [BIN, 'run', '--engine', 'glue', '--lake', lake], {
        encoding: 'utf8',
        env: { ...process.env, PATH: '/nonexistent', STEDI_PII_SALT: 'cli-test-salt-0123456789' },
      });
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/the Glue engine cannot run here: .*java is not on PATH/);
      expect(result.stderr).toContain('Run `npm run setup:glue`');
      // Nothing was started or written: no execution, no results lake.
      expect(existsSync(path.join(lake, '_glue'))).toBe(false);
    } finally {
      removeDir(lake);
    }
  });
});

describe('landing file counts from the validated copy manifests before and after a run', () => {
  const entry = (etag: string, size = 10) => ({ etag, size, records: 1, rejected: 0, batch: 'b1' });
  test('unchanged entries are reused, new and changed ones checked, gone ones removed', () => {
    const before = { rules: 'r', files: { 'a.json': entry('1'), 'b.json': entry('2'), 'c.json': entry('3') } };
    const after = { rules: 'r', files: { 'a.json': entry('1'), 'b.json': entry('9'), 'd.json': entry('4') } };
    expect(landingFileCounts(before, after)).toEqual({ checked: 2, reused: 1, removed: 1 });
  });
  test('a first run, or new checking rules, checks every file', () => {
    const after = { rules: 'r2', files: { 'a.json': entry('1') } };
    expect(landingFileCounts(undefined, after)).toEqual({ checked: 1, reused: 0, removed: 0 });
    expect(landingFileCounts({ rules: 'r1', files: { 'a.json': entry('1') } }, after)).toEqual({
      checked: 1,
      reused: 0,
      removed: 0,
    });
  });
});
