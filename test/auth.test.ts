import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportSPKI, generateKeyPair } from 'jose';
import WebSocket from 'ws';
import { GatewayClient } from '../src/client/gateway-client';
import { RawClient, type TestGateway, metric, startGateway } from './helpers/gateway';

const SECRET = 'a-test-secret-of-enough-length-123';

function hs256(claims: Record<string, unknown>, expiresIn = '1h', secret = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('user-1').setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret));
}

/** The HTTP status of a refused upgrade, or 101 when accepted. */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', reject);
  });
}

describe('JWT auth (HS256)', () => {
  let g: TestGateway;
  before(async () => (g = await startGateway(['--jwt-secret', SECRET, '--client-publish'])));
  after(() => g.stop());

  it('accepts a valid token in the Authorization header or token= query', async () => {
    const t = await hs256({});
    assert.equal(await upgradeStatus(g.ws, { authorization: `Bearer ${t}` }), 101);
    assert.equal(await upgradeStatus(`${g.ws}?token=${t}`), 101);
  });

  it('refuses missing, forged, expired and malformed tokens with 401 before any socket exists', async () => {
    const before = await metric(g.http, 'wsgate_connections_total{result="unauthorized"}');
    assert.equal(await upgradeStatus(g.ws), 401);
    assert.equal(await upgradeStatus(g.ws, { authorization: `Bearer ${await hs256({}, '1h', 'another-secret-of-enough-length')}` }), 401);
    assert.equal(await upgradeStatus(g.ws, { authorization: `Bearer ${await hs256({}, '-1s')}` }), 401);
    assert.equal(await upgradeStatus(`${g.ws}?token=not.a.jwt`), 401);
    assert.equal(await upgradeStatus(g.ws, { authorization: `Bearer ${await hs256({ subscribe: 'chat.*' })}` }), 401, 'claims of the wrong type');
    assert.equal(await metric(g.http, 'wsgate_connections_total{result="unauthorized"}'), before + 5);
    assert.equal(await metric(g.http, 'wsgate_connections'), 0);
  });

  it('restricts subscribe and publish topics by claim patterns', async () => {
    const t = await hs256({ subscribe: ['chat.*', 'news'], publish: ['chat.room1'] });
    assert.equal(await upgradeStatus(`${g.ws}?topics=chat.room1,news`, { authorization: `Bearer ${t}` }), 101);
    assert.equal(await upgradeStatus(`${g.ws}?topics=sports`, { authorization: `Bearer ${t}` }), 403);
    const c = await GatewayClient.connect(g.ws, { token: t });
    await c.sub('chat.anything');
    await assert.rejects(c.sub('chat'), { code: 'forbidden' }, '"chat.*" needs a non-empty suffix');
    await assert.rejects(c.sub('sports'), { code: 'forbidden' });
    await c.pub('chat.room1', 'hi');
    await assert.rejects(c.pub('chat.room2', 'hi'), { code: 'forbidden' });
    await c.close();
  });

  it('closes the connection with 1008 when the token expires', async () => {
    // This test once saw a fresh connection cut with 1006 right after open (4 runs in 28): an upgrade
    // completed after the handler returned, which uWS.js 20.57 mishandles. Upgrades are synchronous now;
    // auth-upgrade.test.ts makes that failure deterministic and checks it stays gone.
    const t = await hs256({}, '2s');
    const c = await RawClient.open(g.ws, undefined, { authorization: `Bearer ${t}` });
    assert.equal(await c.closed(5000), 1008, `close ${c.closeCode} ${c.closeReason} ${c.error}`);
    assert.equal(c.closeReason, 'token expired');
    assert.equal(await metric(g.http, 'wsgate_disconnects_total{reason="token_expired"}'), 1);
  });
});

describe('JWT auth with public keys', () => {
  for (const alg of ['RS256', 'ES256'] as const) {
    it(`verifies ${alg} tokens against a PEM public key file`, async () => {
      const { publicKey, privateKey } = await generateKeyPair(alg);
      const dir = mkdtempSync(path.join(tmpdir(), 'wsgate-key-'));
      const pem = path.join(dir, 'public.pem');
      writeFileSync(pem, await exportSPKI(publicKey));
      const g = await startGateway(['--jwt-public-key', pem]);
      try {
        const good = await new SignJWT({}).setProtectedHeader({ alg }).setExpirationTime('1h').sign(privateKey);
        assert.equal(await upgradeStatus(g.ws, { authorization: `Bearer ${good}` }), 101);
        assert.equal(await upgradeStatus(g.ws, { authorization: `Bearer ${await hs256({})}` }), 401, 'HS256 is not accepted with a public key');
      } finally {
        await g.stop();
      }
    });
  }
});
