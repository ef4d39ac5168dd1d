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
require(entry).main(process.argv);
