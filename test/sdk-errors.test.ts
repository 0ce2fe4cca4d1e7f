import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { ClientCode } from '../src/client/sdk';
import { freePort, Recorder, startGateway, waitFor } from './sdk-harness';

/** The SDK's own error codes, each produced for real (docs/client.md, "Errors"). */
describe('SDK error codes and positions()', () => {
  const recorders: Recorder[] = [];
  const recorder = (options: ConstructorParameters<typeof Recorder>[0]) => {
    const r = new Recorder({ backoff: { minDelayMs: 50, baseDelayMs: 50, maxDelayMs: 100 }, ...options });
    recorders.push(r);
    return r;
  };
  after(() => {
    for (const r of recorders) r.client.close();
  });

  test('transport_error names the refused connection, and the client keeps retrying', async () => {
    const r = recorder({ url: `ws://127.0.0.1:${await freePort()}/ws` });
    r.client.connect();
    await waitFor(() => r.errors.filter((e) => e.code === ClientCode.Transport).length >= 2, 5000, 'two transport errors');
    assert.match(r.errors[0]?.reason ?? '', /ECONNREFUSED/);
    assert.equal(r.client.connectionState, 'reconnecting');
  });

  test('token_provider_failed for a provider that throws, called again on every attempt', async () => {
    const g = await startGateway([]);
    try {
      let calls = 0;
      const r = recorder({
        url: g.ws,
        token: () => {
          calls++;
          throw new Error('no session');
        },
      });
      r.client.connect();
      await waitFor(() => calls >= 3, 5000, 'three provider calls');
      assert.ok(r.errors.every((e) => e.code === ClientCode.TokenProvider && e.reason === 'no session'));
      assert.equal(r.opens(), 0);
    } finally {
      await g.stop();
    }
  });

  test('bad_server_frame for a frame that does not decode; the connection stays', async () => {
    const port = await freePort();
    const wss = new WebSocketServer({ host: '127.0.0.1', port });
    wss.on('connection', (ws) => ws.send('not json {'));
    try {
      const r = recorder({ url: `ws://127.0.0.1:${port}/ws` });
      r.client.connect();
      await waitFor(() => r.errors.some((e) => e.code === ClientCode.BadServerFrame), 5000, 'bad_server_frame');
      assert.equal(r.client.connectionState, 'open');
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });

  test('docs/client.md lists every ClientCode in its Errors table', () => {
    const doc = readFileSync(path.join(__dirname, '..', '..', 'docs', 'client.md'), 'utf8');
    const table = doc.slice(doc.indexOf('## Errors'), doc.indexOf('\n## ', doc.indexOf('## Errors') + 1));
    for (const code of Object.values(ClientCode)) assert.ok(table.includes(`| \`${code}\` |`), `${code} has a row`);
  });

  test('positions() is a plain object that JSON.stringify shows', async () => {
    const g = await startGateway(['--client-publish']);
    try {
      const r = recorder({ url: g.ws });
      r.client.connect();
      const { epoch } = await r.client.subscribe('news');
      await r.client.publish('news', 1);
      await r.untilSeq('news', 1);
      assert.equal(JSON.stringify(r.client.positions()), JSON.stringify({ news: { seq: 1, epoch } }));
    } finally {
      await g.stop();
    }
  });
});
