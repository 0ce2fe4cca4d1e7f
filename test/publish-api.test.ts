import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pack } from 'msgpackr';
import { GatewayClient } from '../src/client/gateway-client';
import { type TestGateway, metric, sleep, startGateway, waitFor } from './helpers/gateway';

describe('POST /publish', () => {
  let g: TestGateway;
  let sub: GatewayClient;
  const got: { t: string; s: number; d: unknown }[] = [];
  const post = (body: string | Uint8Array, headers: Record<string, string> = {}) =>
    fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer s3cret', ...headers }, body: body as BodyInit });

  before(async () => {
    g = await startGateway(['--api-key', 's3cret', '--max-batch', '3', '--max-body', '2048']);
    sub = await GatewayClient.connect(g.ws, { topics: ['news', 'sports'] });
    sub.onDelivery = (d) => got.push(d);
  });
  after(async () => {
    await sub.close();
    await g.stop();
  });

  it('publishes one item and replies with its sequence', async () => {
    const res = await post(JSON.stringify({ topic: 'news', data: { headline: 'hi' } }));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { results: [{ topic: 'news', seq: 1 }] });
    await waitFor(() => got.length === 1);
    assert.deepEqual(got[0], { t: 'news', s: 1, d: { headline: 'hi' } });
  });

  it('publishes a batch in order', async () => {
    const res = await post(JSON.stringify([{ topic: 'news', data: 1 }, { topic: 'sports', data: 2 }, { topic: 'news', data: 3 }]));
    assert.deepEqual(await res.json(), { results: [{ topic: 'news', seq: 2 }, { topic: 'sports', seq: 1 }, { topic: 'news', seq: 3 }] });
    await waitFor(() => got.length === 4);
    assert.deepEqual(got.slice(1).map((d) => d.d), [1, 2, 3]);
  });

  it('accepts application/msgpack bodies', async () => {
    const res = await post(pack({ topic: 'news', data: { m: true } }), { 'content-type': 'application/msgpack' });
    assert.equal(res.status, 200);
    await waitFor(() => got.length === 5);
    assert.deepEqual(got[4]?.d, { m: true });
  });

  it('reads a body without Content-Type, or with curl\'s form default, as JSON', async () => {
    // node:http sends exactly the headers given (fetch would add a Content-Type of its own).
    const raw = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${g.http}/publish`, { method: 'POST', headers: { authorization: 'Bearer s3cret', ...headers } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('{"topic":"news","data":"curl"}');
      });
    for (const headers of [{}, { 'content-type': 'application/x-www-form-urlencoded' }] as Record<string, string>[]) {
      const delivered = got.length;
      assert.equal(await raw(headers), 200, JSON.stringify(headers));
      await waitFor(() => got.length === delivered + 1);
      assert.equal(got.at(-1)?.d, 'curl');
    }
  });

  it('reads fetch\'s default for a string body (text/plain;charset=UTF-8) as JSON', async () => {
    const delivered = got.length;
    // As a Node or browser program writes it: no Content-Type given, so fetch sends text/plain.
    const res = await fetch(`${g.http}/publish`, { method: 'POST', headers: { authorization: 'Bearer s3cret' }, body: JSON.stringify({ topic: 'news', data: 'fetch' }) });
    assert.equal(res.status, 200);
    await waitFor(() => got.length === delivered + 1);
    assert.equal(got.at(-1)?.d, 'fetch');
  });

  const refusals: [string, () => Promise<Response>, number, string, string][] = [
    ['no API key', () => post('{"topic":"news","data":1}', { authorization: '' }), 401, 'unauthorized', 'unauthorized'],
    ['a wrong API key', () => post('{"topic":"news","data":1}', { authorization: 'Bearer nope' }), 401, 'unauthorized', 'unauthorized'],
    ['a content type that is neither JSON, text, form nor msgpack', () => post('{"topic":"news","data":1}', { 'content-type': 'application/xml' }), 415, 'unsupported_media_type', 'unsupported_media_type'],
    ['a text/plain body that is not JSON', () => post('x', { 'content-type': 'text/plain' }), 400, 'bad_frame', 'bad_request'],
    ['malformed JSON', () => post('{"topic":'), 400, 'bad_frame', 'bad_request'],
    ['a missing topic', () => post('{"data":1}'), 400, 'bad_request', 'bad_request'],
    ['an invalid topic', () => post('{"topic":"no spaces","data":1}'), 400, 'invalid_topic', 'bad_request'],
    ['missing data', () => post('{"topic":"news"}'), 400, 'bad_request', 'bad_request'],
    ['a batch with one invalid item (nothing of it is published)', () => post('[{"topic":"news","data":1},{"topic":"bad topic","data":2}]'), 400, 'invalid_topic', 'bad_request'],
    ['an empty batch', () => post('[]'), 400, 'bad_request', 'bad_request'],
    ['a batch over max-batch', () => post(JSON.stringify(Array(4).fill({ topic: 'news', data: 1 }))), 400, 'bad_request', 'bad_request'],
    ['a body over max-body', () => post(JSON.stringify({ topic: 'news', data: 'x'.repeat(3000) })), 413, 'payload_too_large', 'too_large'],
  ];
  for (const [what, send, status, code, result] of refusals) {
    it(`refuses ${what}: ${status} ${code}, publishes nothing, counts ${result}`, async () => {
      const before = await metric(g.http, `wsgate_http_publish_requests_total{result="${result}"}`);
      const delivered = got.length;
      const res = await send();
      assert.equal(res.status, status);
      const body = (await res.json()) as { code: string; reason: string };
      assert.equal(body.code, code);
      assert.equal(typeof body.reason, 'string');
      assert.equal(await metric(g.http, `wsgate_http_publish_requests_total{result="${result}"}`), before + 1);
      await sleep(20);
      assert.equal(got.length, delivered);
    });
  }

  it('survives clients that abort mid-request (uWS needs onAborted)', async () => {
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const s = connect(g.port, '127.0.0.1', () => {
          s.write(`POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer s3cret\r\nContent-Length: 100\r\n\r\n{"topic":`);
          setTimeout(() => {
            s.destroy();
            resolve();
          }, 5);
        });
      });
      await new Promise<void>((resolve) => {
        const s = connect(g.port, '127.0.0.1', () => {
          s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
          s.destroy();
          resolve();
        });
      });
    }
    await sleep(50);
    assert.equal((await fetch(`${g.http}/healthz`)).status, 200);
  });

  it('serves /healthz and /readyz', async () => {
    assert.equal(await (await fetch(`${g.http}/healthz`)).text(), 'ok');
    const r = await fetch(`${g.http}/readyz`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'ready');
    assert.equal((await fetch(`${g.http}/nope`)).status, 404);
  });
});
