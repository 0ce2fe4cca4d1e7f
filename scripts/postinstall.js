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
// `npx wsgate` inside a clone makes npm "install" the clone into its npx cache (a link to it) and run
// this script there on a fresh cache: 13-22 s of tsc for a build that already exists. The uWS check
// above stays (it is fast, and a no-op on a loaded binary); the build is skipped once there is one.
const selfExec = process.env.npm_command === 'exec' && existsSync(path.join(root, 'dist', 'src', 'cli', 'main.js'));
if (selfExec) console.log('[postinstall] npx/npm exec of an already built clone: skipping the build');
else if (tsc && existsSync(path.join(root, 'src'))) {
  execFileSync(process.execPath, [tsc, '-p', root], { stdio: 'inherit' });
}
