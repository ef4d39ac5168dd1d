#!/usr/bin/env node
'use strict';
const path = require('node:path');
const entry = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
try {
  require.resolve(entry);
} catch {
  process.stderr.write('stedi: the CLI is not built yet; run `npm run build` (npm ci does it for you)\n');
  process.exit(2);
}
// The AWS SDK warns on every start that its releases after January 2027 need Node 22; we pin ours.
// This is the switch the SDK documents for it (@aws-sdk/core emitWarningIfUnsupportedVersion).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// A reader that closes the pipe early (`stedi quarantine | head`) is no error of ours: stop writing to it,
// quietly, and let the command finish what it does (a run still commits its tables).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
  });
}
require(entry).main(process.argv);
