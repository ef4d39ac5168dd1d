'use strict';
/**
 * The files every Glue job needs in the data bucket, and their keys: the runner and the jobs' SQL,
 * under glue/ as in the repository. deploy/glue-resources.js points the jobs at these keys and
 * deploy/upload-glue-assets.js uploads them after each deploy.
 */
const path = require('node:path');

const PROJECT_ROOT = path.resolve(__dirname, '..');
const ASSET_PREFIX = 'glue/';
const SCRIPT_KEY = `${ASSET_PREFIX}run_sql_job.py`;
const sqlKey = (job) => `${ASSET_PREFIX}jobs/${job}.sql`;

/**
 * A module of the compiled project (dist/, built by `npm ci` or `npm run build`), so the job list,
 * targets and landing DDL come from the same code the local engine runs.
 */
function requireBuilt(modulePath) {
  const file = path.join(PROJECT_ROOT, 'dist', 'src', modulePath);
  try {
    return require(file);
  } catch (error) {
    if (error && error.code === 'MODULE_NOT_FOUND') {
      throw new Error(
        `${path.relative(PROJECT_ROOT, file)} is missing: run \`npm run build\` before \`serverless package\` or \`deploy\``,
      );
    }
    throw error;
  }
}

/** [{ file, key }] for the runner and each job's SQL file. */
function glueAssets() {
  const { JOB_NAMES } = requireBuilt('pipeline.js');
  return [
    { file: path.join(PROJECT_ROOT, 'glue', 'run_sql_job.py'), key: SCRIPT_KEY },
    ...JOB_NAMES.map((job) => ({ file: path.join(PROJECT_ROOT, 'glue', 'jobs', `${job}.sql`), key: sqlKey(job) })),
  ];
}

module.exports = { PROJECT_ROOT, ASSET_PREFIX, SCRIPT_KEY, sqlKey, requireBuilt, glueAssets };
