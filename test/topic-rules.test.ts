import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { GatewayClient } from '../src/client/gateway-client';
import { ConfigError, loadConfig } from '../src/config/load';
import { TopicRules, ruleOptions } from '../src/rules/topic-rules';
import { MAIN, startGateway } from './helpers/gateway';

const load = (argv: string[], env: Record<string, string> = {}) => loadConfig({ argv, env });
const GLOBAL = { size: 100, ttlMs: 300_000 };

describe('topic rules: configuration', () => {
  it('reads rules from the config file, WSGATE_TOPICS and --topics, with every option defaulted', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wsgate-rules-'));
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ topics: [{ match: 'chat.*', presence: true, joinLeave: true, history: { size: 500, ttl: 600 } }, { match: 'ticker.*', lastMessage: true }] }));
    const fromFile = load(['--config', file]).topics;
    assert.equal(fromFile.length, 2);
    assert.deepEqual(fromFile[0], { match: 'chat.*', presence: true, joinLeave: true, presenceBy: 'client', presenceGrace: 5000, maxPresence: 1000, lastMessage: false, delta: false, subscribeProxy: false, publishProxy: false, webhookPublish: false, history: { size: 500, ttl: 600 } });
    const fromEnv = load([], { WSGATE_TOPICS: '[{"match":"user:*","presence":true,"presenceBy":"user"}]' }).topics;
    assert.equal(fromEnv[0]?.presenceBy, 'user');
    assert.equal(fromEnv[0]?.history, null, 'no history option: the global flags apply');
    assert.equal(load(['--topics', '[{"match":"*","lastMessage":true}]']).topics[0]?.lastMessage, true);
    assert.deepEqual(load([]).topics, []);
  });

  const bad: [unknown, string, RegExp][] = [
    ['{not json', 'topics', /JSON array of topic rules/],
    [{ match: 'a' }, 'topics', /JSON array of rules/],
    [[{ presence: true }], 'topics[0].match', /exact topic, a prefix ending in \*/],
    [[{ match: 'a*b' }], 'topics[0].match', /topic pattern/],
    [[{ match: 'ok' }, { match: 'chat.*', presence: 'yes' }], 'topics[1].presence', /true or false/],
    [[{ match: 'chat.*', presenceBy: 'everyone' }], 'topics[0].presenceBy', /one of "client", "user"/],
    [[{ match: 'chat.*', maxPresence: 0 }], 'topics[0].maxPresence', /integer 1\.\.1000000/],
    [[{ match: 'chat.*', history: { size: 10 } }], 'topics[0].history', /"size": 0\.\.1000000, "ttl": 1\.\./],
    [[{ match: 'chat.*', history: { size: 10, ttl: 5, extra: 1 } }], 'topics[0].history', /"size"/],
    [[{ match: 'x' }, { match: 'y' }, { match: 'chat.*', presense: true }], 'topics[2].presense', /a known rule key: match, presence, joinLeave/],
    ['[1]', 'topics[0]', /an object with "match"/],
  ];
  for (const [value, key, accepted] of bad) {
    it(`rejects ${JSON.stringify(value)} naming ${key} and what it accepts`, () => {
      const raw = typeof value === 'string' ? value : JSON.stringify(value);
      assert.throws(() => load([], { WSGATE_TOPICS: raw }), (e: unknown) => e instanceof ConfigError && e.key === key && accepted.test(e.message) && e.message.includes('WSGATE_TOPICS'));
    });
  }

  it('wsgate serve exits 2 on a bad rule, naming its index and key', () => {
    const r = spawnSync(process.execPath, [MAIN, 'serve', '--topics', '[{"match":"a.*"},{"match":"b.*","maxPresence":-1}]'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /invalid config topics\[1\]\.maxPresence \(from --topics\): expected an integer 1\.\.1000000/);
  });

  it('serve --help documents --topics and every rule option', () => {
    const r = spawnSync(process.execPath, [MAIN, 'serve', '--help'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--topics/);
    assert.match(r.stdout, /WSGATE_TOPICS/);
    for (const key of ['match', ...Object.keys(ruleOptions)]) assert.match(r.stdout, new RegExp(`^    ${key} `, 'm'), key);
  });
});

describe('topic rules: matching', () => {
  const rules = new TopicRules(load(['--topics', JSON.stringify([{ match: 'chat.vip' }, { match: 'chat.*', presence: true, history: { size: 7, ttl: 9 } }, { match: 'ticker.*', lastMessage: true }])]).topics, GLOBAL);

  it('first match wins, with the token-claim pattern syntax', () => {
    assert.equal(rules.resolve('chat.vip').index, 0, 'the exact rule comes first');
    assert.equal(rules.resolve('chat.vip').presence, false);
    assert.equal(rules.resolve('chat.room1').index, 1);
    assert.equal(rules.resolve('chat.room1').presence, true);
    assert.equal(rules.resolve('ticker.eur').lastMessage, true);
    assert.equal(rules.resolve('chat').index, -1, 'a prefix pattern needs at least one more character');
    assert.equal(rules.resolve('news'), rules.plain);
  });

  it('history bounds come from the rule, else the global flags', () => {
    assert.deepEqual(rules.resolve('chat.a').historyLimits, { size: 7, ttlMs: 9000 });
    assert.deepEqual(rules.resolve('ticker.a').historyLimits, GLOBAL);
    assert.deepEqual(rules.plain.historyLimits, GLOBAL);
  });

  it('a gateway resolves a topic once, onto its state', async () => {
    const g = await startGateway(['--client-publish', '--history-size', '0', '--topics', JSON.stringify([{ match: 'kept.*', history: { size: 3, ttl: 60 } }])]);
    try {
      const c = await GatewayClient.connect(g.ws);
      const kept = await c.sub('kept.a');
      const plain = await c.sub('plain');
      for (let i = 0; i < 5; i++) {
        await c.pub('kept.a', i);
        await c.pub('plain', i);
      }
      assert.equal(g.gw.hub.get('kept.a')?.rule.index, 0);
      assert.equal(g.gw.hub.get('plain')?.rule, g.gw.hub.ruleOf('other'), 'topics without rules share one rule object');
      const d = await GatewayClient.connect(g.ws);
      assert.equal((await d.sub('kept.a', { seq: 2, epoch: kept.epoch as string })).recovered, true, 'the rule keeps 3 messages');
      assert.equal((await d.sub('plain', { seq: 4, epoch: plain.epoch as string })).recovered, false, 'the global flag keeps none');
      await c.close();
      await d.close();
    } finally {
      await g.stop();
    }
  });
});
