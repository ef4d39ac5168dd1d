import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../project';

/** What the Glue engine runs with: the project's Python (pyspark, moto, boto3) and the S3A jars. */
export interface GlueSetup {
  python: string;
  jarsDir: string;
}

/** The Glue engine's set-up is incomplete; the message names what is missing and the command that installs it. */
export class GlueSetupError extends Error {
  constructor(readonly missing: string[]) {
    super(
      `the Glue engine cannot run here: ${missing.join('; ')}. ` +
        'Run `npm run setup:glue` (once: it makes .venv and fetches the S3A jars into .cache/glue-jars/)',
    );
    this.name = 'GlueSetupError';
  }
}

/**
 * Checks what `npm run setup:glue` installs (tools/glue-local/setup.sh) and the Java Spark needs, without
 * starting anything slow: the problems found, each naming the file or program missing.
 */
export function glueSetupProblems(root = projectRoot()): string[] {
  const problems: string[] = [];
  const python = path.join(root, '.venv', 'bin', 'python');
  if (!existsSync(python))
    problems.push(`${path.relative(root, python)} is missing (the project's Python environment)`);
  else {
    const lib = path.join(root, '.venv', 'lib');
    const sitePackages = existsSync(lib)
      ? readdirSync(lib)
          .filter((n) => n.startsWith('python'))
          .map((n) => path.join(lib, n, 'site-packages'))
      : [];
    for (const pkg of ['pyspark', 'moto', 'boto3'])
      if (!sitePackages.some((dir) => existsSync(path.join(dir, pkg)))) problems.push(`.venv has no ${pkg}`);
  }
  const jarsDir = path.join(root, '.cache', 'glue-jars');
  for (const line of readFileSync(path.join(root, 'tools', 'glue-local', 'jars.txt'), 'utf8').split('\n')) {
    const coordinates = line.split('#')[0]!.trim().split(/\s+/)[0];
    if (!coordinates) continue;
    const [, artifact, version] = coordinates.split(':');
    const jar = path.join(jarsDir, `${artifact}-${version}.jar`);
    if (!existsSync(jar)) problems.push(`${path.relative(root, jar)} is missing (the S3A connector)`);
  }
  if (!existsSync(path.join(root, 'tools', 'glue-local', 'glue_local', 'worker.py')))
    problems.push('the Glue stand-in tools/glue-local/glue_local/worker.py is missing');
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (java.error || java.status !== 0)
    problems.push(
      'java is not on PATH (Spark needs Java 17, as on AWS Glue 5.1: e.g. apt-get install openjdk-17-jre-headless)',
    );
  return problems;
}

/** The set-up, or GlueSetupError naming what is missing. */
export function checkGlueSetup(root = projectRoot()): GlueSetup {
  const problems = glueSetupProblems(root);
  if (problems.length > 0) throw new GlueSetupError(problems);
  return { python: path.join(root, '.venv', 'bin', 'python'), jarsDir: path.join(root, '.cache', 'glue-jars') };
}
