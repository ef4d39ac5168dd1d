import * as path from 'node:path';

/**
 * Runs before every test file.
 * - The AWS SDK warns once per process that its releases after January 2027 need Node 22; we pin ours, so
 *   the notice is noise in every worker. AWS documents this variable to turn it off, and child processes
 *   (the CLI, handlers) inherit it.
 * - The project's Python environment (`npm run setup:glue`: pyspark, moto, cfn-lint, pinned) comes first on
 *   PATH, so the tests' `python3` and `cfn-lint` are the pinned ones, not whatever the machine has.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const venvBin = path.resolve(__dirname, '..', '..', '.venv', 'bin');
if (!(process.env.PATH ?? '').split(path.delimiter).includes(venvBin)) {
  process.env.PATH = `${venvBin}${path.delimiter}${process.env.PATH ?? ''}`;
}
