'use strict';
// Container health probe: exit 0 when GET /healthz answers 200 within 2 s, else 1.
// Used by the Dockerfile HEALTHCHECK because the slim base image has neither curl nor wget.
// Always asks the loopback address: WSGATE_HOST may be 0.0.0.0 (all interfaces) in a container.
// /healthz lives on the admin listener when WSGATE_ADMIN_PORT is set (non-zero), else on the public port.
const http = require('node:http');

const admin = Number(process.env.WSGATE_ADMIN_PORT || 0);
const port = admin !== 0 ? admin : Number(process.env.WSGATE_PORT || 8080);
const req = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 2000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', () => process.exit(1));
