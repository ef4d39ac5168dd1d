#!/usr/bin/env node
'use strict';
/**
 * `npm start`'s build step: runs `npm run build` only when a source is newer than the last build
 * (dist/.tsbuildinfo, its time set after every build). tsc's own incremental check of an unchanged tree
 * still takes seconds; this look at modification times takes milliseconds.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const SOURCES = ['src', 'functions', 'bench', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];

function newestSourceTime(entry) {
  const stat = fs.statSync(entry, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return entry.endsWith('.ts') || entry.endsWith('.json') ? stat.mtimeMs : 0;
  return Math.max(0, ...fs.readdirSync(entry).map((name) => newestSourceTime(path.join(entry, name))));
}

const built = fs.statSync(path.join(root, 'dist', '.tsbuildinfo'), { throwIfNoEntry: false });
const newest = Math.max(...SOURCES.map((name) => newestSourceTime(path.join(root, name))));
if (!built || newest > built.mtimeMs) {
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
  // tsc leaves its build info as it was when nothing it emits changed (a source only touched): mark it built.
  const now = new Date();
  fs.utimesSync(path.join(root, 'dist', '.tsbuildinfo'), now, now);
}
