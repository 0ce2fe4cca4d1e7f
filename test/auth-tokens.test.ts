import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type JWK, SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/load';
import { redactSecrets } from '../src/log';
import { type TestGateway, sleep, spawnGateway, startGateway, waitFor } from './helpers/gateway';

const SECRET = 'a-test-secret-of-enough-length-123';
const now = () => Math.floor(Date.now() / 1000);

function hs256(claims: Record<string, unknown>, secret: string | Uint8Array = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(typeof secret === 'string' ? new TextEncoder().encode(secret) : secret);
}

/** A token with `alg: none` and an empty signature, as an attacker would send it. */
function unsigned(claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
}

/** The HTTP status of an upgrade with this bearer token (101 when accepted), and the refusal body. */
function upgrade(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    ws.once('open', () => {
      ws.terminate();
      resolve({ status: 101, body: '' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
}
const status = async (url: string, token: string) => (await upgrade(url, token)).status;

describe('token claims: audience, issuer, nbf, clock skew', () => {
  let strict: TestGateway;
  let lenient: TestGateway;
  before(async () => {
    strict = await startGateway(['--jwt-secret', SECRET, '--jwt-audience', 'api, web', '--jwt-issuer', 'https://issuer.example']);
    lenient = await startGateway(['--jwt-secret', SECRET, '--jwt-clock-skew', '60']);
  });
  after(async () => {
    await strict.stop();
    await lenient.stop();
  });

  it('requires one of the configured audiences and the issuer', async () => {
    const iss = 'https://issuer.example';
    assert.equal(await status(strict.ws, await hs256({ aud: 'web', iss })), 101);
    assert.equal(await status(strict.ws, await hs256({ aud: ['other', 'api'], iss })), 101, 'an aud array naming one accepted audience');
    assert.equal(await status(strict.ws, await hs256({ aud: 'other', iss })), 401);
    assert.equal(await status(strict.ws, await hs256({ iss })), 401, 'no aud');
    assert.equal(await status(strict.ws, await hs256({ aud: 'api', iss: 'https://evil.example' })), 401);
    assert.equal(await status(strict.ws, await hs256({ aud: 'api' })), 401, 'no iss');
    const refused = await upgrade(strict.ws, await hs256({ aud: 'other', iss }));
    assert.deepEqual(JSON.parse(refused.body), { code: 'unauthorized', reason: 'invalid token: wrong audience' });
  });

  it('honours nbf and exp, each widened by --jwt-clock-skew', async () => {
    assert.equal(await status(strict.ws, await hs256({ aud: 'api', iss: 'https://issuer.example', nbf: now() + 30 })), 401, 'not valid yet');
    assert.equal(await status(lenient.ws, await hs256({ nbf: now() + 30 })), 101, 'nbf 30 s ahead, 60 s skew');
    assert.equal(await status(lenient.ws, await hs256({ nbf: now() + 120 })), 401);
    assert.equal(await status(lenient.ws, await hs256({ exp: now() - 30 })), 101, 'expired 30 s ago, 60 s skew');
    assert.equal(await status(lenient.ws, await hs256({ exp: now() - 120 })), 401);
    assert.equal(await status(lenient.ws, await hs256({ exp: 'tomorrow' })), 401, 'exp of the wrong type');
  });

  it('reads every flag from WSGATE_* env and from the config file too', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wsgate-cfg-'));
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ jwtAudience: 'a', jwtIssuer: 'i', jwtClockSkew: 5, jwtJwksUrl: 'https://idp.example/jwks', jwtJwksMaxAge: 60, jwtJwksCooldown: 2 }));
    const fromFile = loadConfig({ argv: ['--config', file], env: {} });
    assert.deepEqual([fromFile.jwtAudience, fromFile.jwtIssuer, fromFile.jwtClockSkew, fromFile.jwtJwksUrl, fromFile.jwtJwksMaxAge, fromFile.jwtJwksCooldown], ['a', 'i', 5, 'https://idp.example/jwks', 60, 2]);
    const env = { WSGATE_JWT_AUDIENCE: 'b', WSGATE_JWT_ISSUER: 'j', WSGATE_JWT_CLOCK_SKEW: '7', WSGATE_JWT_JWKS_URL: 'http://127.0.0.1:1/k', WSGATE_JWT_JWKS_MAX_AGE: '61', WSGATE_JWT_JWKS_COOLDOWN: '3' };
    const fromEnv = loadConfig({ argv: [], env });
    assert.deepEqual([fromEnv.jwtAudience, fromEnv.jwtIssuer, fromEnv.jwtClockSkew, fromEnv.jwtJwksUrl, fromEnv.jwtJwksMaxAge, fromEnv.jwtJwksCooldown], ['b', 'j', 7, 'http://127.0.0.1:1/k', 61, 3]);
    assert.throws(() => loadConfig({ argv: ['--jwt-jwks-url', 'ftp://x'], env: {} }), /http:\/\/ or https:\/\//);
    assert.throws(() => loadConfig({ argv: ['--jwt-clock-skew', '601'], env: {} }), /jwtClockSkew/);
    assert.throws(() => loadConfig({ argv: ['--jwt-secret', SECRET, '--jwt-jwks-url', 'https://idp.example/jwks'], env: {} }), /at most one of/);
  });
});

describe('the algorithm is pinned by the key type', () => {
  it('refuses alg:none with a shared secret', async () => {
    const g = await startGateway(['--jwt-secret', SECRET]);
    try {
      assert.equal(await status(g.ws, unsigned({ sub: 'mallory' })), 401);
      assert.equal(await status(g.ws, await hs256({})), 101, 'control: the signed token passes');
    } finally {
      await g.stop();
    }
  });

  for (const alg of ['RS256', 'ES256'] as const) {
    it(`refuses alg:none and HS256 keyed with the ${alg} public key PEM`, async () => {
      const { publicKey, privateKey } = await generateKeyPair(alg);
      const pem = await exportSPKI(publicKey);
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'wsgate-key-')), 'public.pem');
      writeFileSync(file, pem);
      const g = await startGateway(['--jwt-public-key', file]);
      try {
        assert.equal(await status(g.ws, await new SignJWT({}).setProtectedHeader({ alg }).sign(privateKey)), 101, 'control: a real signature passes');
        // The classic confusion attack: the public key is public, so HMAC over it is forgeable by anyone.
        assert.equal(await status(g.ws, await hs256({ sub: 'mallory' }, new TextEncoder().encode(pem))), 401);
        assert.equal(await status(g.ws, unsigned({ sub: 'mallory' })), 401);
      } finally {
        await g.stop();
      }
    });
  }
});

/** A local JWKS endpoint whose key set the test can rotate; counts fetches. */
class JwksServer {
  keys: JWK[] = [];
  fetches = 0;
  /** Answer 500, as a provider in trouble would. */
  failing = false;
  private constructor(private readonly server: Server) {}
  static async start(): Promise<JwksServer> {
    const server = createServer();
    const s = new JwksServer(server);
    server.on('request', (_req, res) => {
      s.fetches++;
      if (s.failing) return void res.writeHead(500).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: s.keys }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return s;
  }
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}/.well-known/jwks.json`;
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

async function signingKey(alg: 'RS256' | 'ES256', kid: string) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { jwk, sign: (claims: Record<string, unknown> = {}) => new SignJWT(claims).setProtectedHeader({ alg, kid }).setExpirationTime('1h').sign(privateKey) };
}

describe('JWKS (--jwt-jwks-url)', () => {
  let idp: JwksServer;
  let g: TestGateway;
  before(async () => {
    idp = await JwksServer.start();
  });
  after(async () => {
    await g?.stop();
    await idp.close();
  });

  it('caches the key set, and picks up a rotated key after one refetch', async () => {
    const k1 = await signingKey('RS256', 'k1');
    const k2 = await signingKey('ES256', 'k2');
    idp.keys = [k1.jwk];
    g = await startGateway(['--jwt-jwks-url', idp.url, '--jwt-jwks-cooldown', '1']);
    assert.equal(idp.fetches, 1, 'fetched once at start');
    for (let i = 0; i < 5; i++) assert.equal(await status(g.ws, await k1.sign()), 101);
    assert.equal(idp.fetches, 1, 'keys are cached, not fetched per connection');
    assert.equal(await status(g.ws, await k1.sign({ iss: 'x' }).then((t) => t.slice(0, -4) + 'AAAA')), 401, 'a bad signature');

    // Rotation: the provider now publishes k2 only.
    idp.keys = [k2.jwk];
    await sleep(1100); // past the 1 s cooldown since the start-up fetch
    const first = await upgrade(g.ws, await k2.sign());
    assert.equal(first.status, 503, 'an unknown kid starts a refetch and is told to retry');
    assert.equal(JSON.parse(first.body).code, 'unavailable');
    await waitFor(() => idp.fetches === 2, 5000, 'the refetch');
    await sleep(50);
    assert.equal(await status(g.ws, await k2.sign()), 101, 'the rotated key verifies');
    assert.equal(await status(g.ws, await k1.sign()), 401, 'the retired key no longer does (within the cooldown: no refetch)');
    assert.equal(idp.fetches, 2);
  });

  it('answers 503 and /readyz not ready while the key set cannot be fetched, without asking the provider on every upgrade', async () => {
    const sick = await JwksServer.start();
    sick.failing = true;
    const g2 = await startGateway(['--jwt-jwks-url', sick.url]);
    try {
      const token = await (await signingKey('RS256', 'k')).sign();
      for (let i = 0; i < 5; i++) {
        const r = await upgrade(g2.ws, token);
        assert.equal(r.status, 503);
        assert.equal(JSON.parse(r.body).code, 'unavailable');
      }
      assert.equal(sick.fetches, 1, 'failed fetches are spaced by the cooldown too');
      const ready = await fetch(`${g2.http}/readyz`);
      assert.equal(ready.status, 503);
      assert.equal(await ready.text(), 'JWT keys not loaded');
    } finally {
      await g2.stop();
      await sick.close();
    }
  });
});

describe('tokens never reach the logs', () => {
  it('redacts token= values, Authorization credentials, bare JWTs and URL passwords from any text', () => {
    assert.equal(redactSecrets('GET /ws?topics=a&token=abc.def.ghi&x=1'), 'GET /ws?topics=a&token=[redacted]&x=1');
    assert.equal(redactSecrets('{"authorization":"Bearer s3cr3t"}'), '{"authorization":"Bearer [redacted]"}');
    assert.equal(redactSecrets('failed: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'), 'failed: [redacted jwt]');
    assert.equal(redactSecrets('connect nats://user:pa55@nats:4222 failed'), 'connect nats://[redacted]@nats:4222 failed');
    assert.equal(redactSecrets('{"topic":"chat.token","n":1}'), '{"topic":"chat.token","n":1}', 'ordinary text is left alone');
  });

  it('a gateway at debug level logs refused upgrades without the token, its query value or the Authorization header', async () => {
    const g = await spawnGateway(['--jwt-secret', SECRET, '--log-level', 'debug']);
    try {
      const good = await hs256({ sub: 'alice', exp: now() + 3600 });
      const forged = await hs256({ sub: 'mallory' }, 'another-secret-of-enough-length-1');
      const ws = `ws://127.0.0.1:${g.port}/ws`;
      assert.equal(await status(`${ws}?token=${good}`, ''), 101);
      assert.equal(await status(`${ws}?topics=a&token=${forged}&x=1`, ''), 401);
      assert.equal(await status(ws, forged), 401);
      assert.equal(await status(`${ws}?token=not-a-jwt-but-secret-ish`, ''), 401);
      await waitFor(() => (g.output().match(/upgrade refused/g) ?? []).length >= 3, 5000, 'the debug lines');
      const out = g.output();
      for (const secret of [good, forged, good.split('.')[2] as string, forged.split('.')[2] as string, 'not-a-jwt-but-secret-ish']) {
        assert.ok(!out.includes(secret), `log output contains a token part: ${secret.slice(0, 12)}…`);
      }
      assert.match(out, /token=\[redacted\]/, 'the query was logged, redacted');
    } finally {
      await g.stop();
    }
  });
});
