import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { SERVERS, startServer, stopServer } from '../lib/servers';
import { newHistogram, summarize, type LatencySummary } from '../lib/histogram';
import { perServer, result, row } from './common';
import type { Scenario } from './types';

type Variant = 'plain' | 'proxied';

interface HooksRun {
  upgrade: LatencySummary;
  upgradesPerSecond: number;
  publish: LatencySummary;
  publishesPerSecond: number;
}

/** The application: answers the connect and publish proxies at once (the cost measured is the gateway's round trip). */
async function startBackend(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.url === '/connect' ? '{"user":"bench","subscribe":["*"],"publish":["*"]}' : '{"allow":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

const open = (url: string): Promise<WebSocket> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });

/** Upgrades one after the other (closed loop): time from request to open. */
async function upgrades(url: string, n: number): Promise<Pick<HooksRun, 'upgrade' | 'upgradesPerSecond'>> {
  const h = newHistogram();
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const ws = await open(url);
    h.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
    ws.terminate();
  }
  return { upgrade: summarize(h), upgradesPerSecond: Math.round(n / ((performance.now() - started) / 1000)) };
}

/** Publishes over one connection with one in flight: time from `pub` to its `ok`. */
async function publishes(url: string, n: number): Promise<Pick<HooksRun, 'publish' | 'publishesPerSecond'>> {
  const ws = await open(url);
  const h = newHistogram();
  let sentAt = 0;
  let next: () => void = () => {};
  ws.on('message', () => {
    h.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
    next();
  });
  const started = performance.now();
  for (let i = 1; i <= n; i++) {
    await new Promise<void>((r) => {
      next = r;
      sentAt = performance.now();
      ws.send(`{"op":"pub","topic":"bench","data":${i},"id":${i}}`);
    });
  }
  const seconds = (performance.now() - started) / 1000;
  ws.terminate();
  return { publish: summarize(h), publishesPerSecond: Math.round(n / seconds) };
}

/** What the connect proxy adds to an upgrade and the publish proxy to a publish, against a local backend. */
export const hooks: Scenario = {
  name: 'hooks',
  title: 'Connect-proxy cost per upgrade and publish-proxy cost per publish (wsgate, local backend)',
  inDefault: false,
  async run(ctx) {
    const q = ctx.opts.quick;
    const p = { upgrades: q ? 100 : 1000, publishes: q ? 500 : 5000 };
    const backend = await startBackend();
    try {
      const outcomes = await perServer<HooksRun, Variant>(ctx, ['plain', 'proxied'], async (variant) => {
        const flags = variant === 'plain' ? [] : ['--connect-proxy-url', `${backend.url}/connect`, '--publish-proxy-url', `${backend.url}/publish`, '--topics', '[{"match":"*","publishProxy":true}]'];
        const server = await startServer(SERVERS.wsgate, flags);
        try {
          const url = `ws://127.0.0.1:${server.port}/ws`;
          await upgrades(url, 20); // warm-up: JIT, keep-alive pool
          return { ...(await upgrades(url, p.upgrades)), ...(await publishes(url, p.publishes)) };
        } finally {
          await stopServer(server);
        }
      });
      const r = result('hooks', this.title, p, outcomes, [
        row(outcomes, 'upgrade p50', 'ms', 'lower', (x) => x.upgrade.p50),
        row(outcomes, 'upgrade p99', 'ms', 'lower', (x) => x.upgrade.p99),
        row(outcomes, 'upgrades/s (one at a time)', '/s', 'higher', (x) => x.upgradesPerSecond),
        row(outcomes, 'publish→ok p50', 'ms', 'lower', (x) => x.publish.p50),
        row(outcomes, 'publish→ok p99', 'ms', 'lower', (x) => x.publish.p99),
        row(outcomes, 'publishes/s (one in flight)', '/s', 'higher', (x) => x.publishesPerSecond),
      ], [
        'plain: no proxies. proxied: --connect-proxy-url and --publish-proxy-url to a Node http backend in the bench process that answers at once, so the difference is the proxy round trip (HTTP over keep-alive loopback, JSON both ways), not application work.',
        'Closed loop, one upgrade or one publish in flight: these are latencies, not capacity.',
      ]);
      r.ratioBase = 'plain';
      return r;
    } finally {
      await backend.close();
    }
  },
};
