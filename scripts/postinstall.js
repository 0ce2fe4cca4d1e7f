#!/usr/bin/env node
// @ts-check
'use strict';
// After `npm install`: make the uWebSockets.js binary load on this host, then compile TypeScript so
// `npm start` runs right away. Production images install with --omit=dev and build in their own
// stage, so a missing compiler (or source tree) is not an error here.
const { execFileSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
execFileSync(process.execPath, [path.join(__dirname, 'uws-glibc-compat.js')], { stdio: 'inherit' });
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
} catch {
  console.log('[postinstall] typescript not installed (production install): skipping build');
}
if (tsc && existsSync(path.join(root, 'src'))) {
  execFileSync(process.execPath, [tsc, '-p', root], { stdio: 'inherit' });
}
