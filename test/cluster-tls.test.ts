import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Delivery, GatewayClient } from '../src/client/gateway-client';
import { ConfigError, loadConfig } from '../src/config/load';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';
import { makeTestPki, type TestPki } from './helpers/tls-certs';

/**
 * Broker connections over TLS with a private CA and a client certificate (mutual TLS): real nats-server
 * and redis-server requiring client certificates, two gateway nodes.
 */
let pki: TestPki;
before(() => {
  pki = makeTestPki();
});
after(() => pki.remove());

for (const kind of ['nats', 'redis'] as const) {
  describe(`broker over mutual TLS via ${kind}`, { timeout: 30_000 }, () => {
    let broker: BrokerServer;
    const nodes: { gateway: Gateway; url: string }[] = [];

    before(async () => {
      broker = await BrokerServer.start(kind, null, { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca });
    });

    after(async () => {
      await Promise.all(nodes.map((n) => n.gateway.close()));
      await broker.stop();
    });

    it('fans out across nodes with the CA and client certificate from the options', async () => {
      assert.match(broker.url, kind === 'nats' ? /^tls:\/\// : /^rediss:\/\//);
      const tlsArgs = ['--broker-tls-ca', pki.ca, '--broker-tls-cert', pki.clientCert, '--broker-tls-key', pki.clientKey];
      for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, tlsArgs));
      await eventually('both nodes connected', () => nodes.every((n) => n.gateway.broker.ready()));
      const [a, b] = nodes as [{ gateway: Gateway; url: string }, { gateway: Gateway; url: string }];
      const sub = await GatewayClient.connect(b.url);
      const got: Delivery[] = [];
      sub.onDelivery = (d) => got.push(d);
      await sub.sub('secure');
      const pub = await GatewayClient.connect(a.url);
      for (let n = 0; n < 20; n++) await pub.pub('secure', { n });
      await eventually('deliveries over TLS', () => got.length === 20);
      assert.deepEqual(got.map((d) => (d.d as { n: number }).n), [...Array(20).keys()]);
      await Promise.all([sub.close(), pub.close()]);
    });

    it('stays unready without a client certificate or with a CA that did not sign the server', async () => {
      const bare = await startNode(broker.url, ['--broker-tls-ca', pki.ca]);
      const wrongCa = await startNode(broker.url, ['--broker-tls-ca', pki.otherCa, '--broker-tls-cert', pki.clientCert, '--broker-tls-key', pki.clientKey]);
      try {
        await sleep(1500);
        assert.equal(bare.gateway.broker.ready(), false, 'refused without a client certificate');
        assert.equal(wrongCa.gateway.broker.ready(), false, 'server certificate not trusted');
        assert.equal((await fetch(`http://127.0.0.1:${bare.port}/readyz`)).status, 503);
        // Still serving its own clients.
        const c = await GatewayClient.connect(bare.url);
        await c.ping();
        await c.close();
      } finally {
        await Promise.all([bare.gateway.close(), wrongCa.gateway.close()]);
      }
    });
  });
}

describe('broker TLS options', () => {
  const load = (argv: string[]) => loadConfig({ argv, env: {} });
  it('refuses TLS files with a plain broker URL, a certificate without its key, and unreadable files', () => {
    assert.throws(() => load(['--broker', 'nats://127.0.0.1:4222', '--broker-tls-ca', pki.ca]), (e) => e instanceof ConfigError && e.key === 'brokerTlsCa');
    assert.throws(() => load(['--broker', 'tls://127.0.0.1:4222', '--broker-tls-cert', pki.clientCert]), (e) => e instanceof ConfigError && e.key === 'brokerTlsCert');
    assert.throws(() => load(['--broker', 'rediss://127.0.0.1:6379', '--broker-tls-ca', '/nonexistent/ca.pem']), (e) => e instanceof ConfigError && e.key === 'brokerTlsCa');
    const ok = load(['--broker', 'rediss://127.0.0.1:6379', '--broker-tls-ca', pki.ca, '--broker-tls-cert', pki.clientCert, '--broker-tls-key', pki.clientKey]);
    assert.equal(ok.brokerTlsKey, pki.clientKey);
  });
});
