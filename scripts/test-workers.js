'use strict';
// `npm run test:workers`: the behaviour suites again with the gateway in workers mode, first with
// --workers 2, then with --workers 3 (test/helpers/gateway.ts reads WSGATE_TEST_WORKERS). Tests that read
// one gateway's internals are skipped there (SINGLE_THREAD_ONLY). Run after `npm run build`.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const FILES = [
  // protocol
  'protocol', 'handshake', 'publish-api', 'topics-list', 'idempotency', 'slow-consumer',
  // history and resume
  'history', 'history-api', 'positions', 'last-message',
  // channels: presence, join/leave, server control
  'presence', 'join-leave', 'sdk-channels', 'server-control',
  // proxies and webhooks
  'connect-proxy', 'topic-proxies', 'webhooks',
  // the Pusher door
  'pusher', 'pusher-presence', 'pusher-webhooks', 'pusher-lifecycle',
  // drain
  'drain-upgrade',
  // guardrails
  'guard-upgrade', 'guard-commands', 'guard-admin', 'guard-browser-origin',
];

const counts = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['2', '3'];
const files = FILES.map((f) => path.join(__dirname, '..', 'dist', 'test', `${f}.test.js`));
let failed = false;
for (const workers of counts) {
  const started = Date.now();
  console.log(`# --workers ${workers}: ${files.length} files`);
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit', env: { ...process.env, WSGATE_TEST_WORKERS: workers } });
  console.log(`# --workers ${workers}: exit ${r.status} in ${Math.round((Date.now() - started) / 1000)} s`);
  failed ||= r.status !== 0;
}
process.exitCode = failed ? 1 : 0;
