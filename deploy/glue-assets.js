'use strict';
/**
 * The files every Glue job needs, the runner and the jobs' SQL, under content-addressed keys of the
 * framework's deployment bucket: glue-assets/<sha256 of the file>/<file name>. deploy/glue-resources.js
 * points the jobs at these keys (ScriptLocation, --sql_bucket and --sql_key); deploy/upload-glue-assets.js
 * copies the files into the package and uploads them before the stack update. A key never changes content,
 * so a job run reads one consistent version of the runner and its SQL whatever is deployed meanwhile, and an
 * upload that fails leaves the stack, and what its jobs read, as they were.
 */
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const path = require('node:path');

const PROJECT_ROOT = path.resolve(__dirname, '..');
const ASSET_PREFIX = 'glue-assets/';
/** The deployment bucket's logical id in the template osls compiles (it exists before the stack update). */
const ASSETS_BUCKET_LOGICAL_ID = 'ServerlessDeploymentBucket';

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
        { cause: error },
      );
    }
    throw error;
  }
}

const sha256 = (content) => createHash('sha256').update(content).digest('hex');

/** The key of a file's content: glue-assets/<sha256>/<name>. */
const assetKey = (name, content) => `${ASSET_PREFIX}${sha256(content)}/${name}`;

function asset(file) {
  const content = readFileSync(file);
  const name = path.basename(file);
  return { file, name, sha256: sha256(content), key: assetKey(name, content) };
}

/** The runner: { file, name, sha256, key }. */
const scriptAsset = () => asset(path.join(PROJECT_ROOT, 'glue', 'run_sql_job.py'));

/** A job's SQL file: { file, name, sha256, key }. */
const sqlAsset = (job) => asset(path.join(PROJECT_ROOT, 'glue', 'jobs', `${job}.sql`));

/** A job's diagnostic, a query of glue/queries/ its "-- Diagnostics:" header names: { file, name, sha256, key }. */
const queryAsset = (name) => asset(path.join(PROJECT_ROOT, 'glue', 'queries', `${name}.sql`));

/** [{ file, name, sha256, key }] for the runner, each job's SQL file and each job's diagnostics. */
function glueAssets() {
  const { JOB_NAMES, loadJobs } = requireBuilt('definition/pipeline.js');
  const diagnostics = [...new Set(loadJobs().flatMap((job) => job.diagnostics.map((d) => d.name)))];
  return [scriptAsset(), ...JOB_NAMES.map(sqlAsset), ...diagnostics.map(queryAsset)];
}

module.exports = {
  PROJECT_ROOT,
  ASSET_PREFIX,
  ASSETS_BUCKET_LOGICAL_ID,
  sha256,
  assetKey,
  scriptAsset,
  sqlAsset,
  queryAsset,
  requireBuilt,
  glueAssets,
};
