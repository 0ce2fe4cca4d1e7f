import { once } from 'node:events';
import path from 'node:path';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/load';
import type { TopicRuleConfig } from '../../src/rules/topic-rules';
import { runHubBenchmark } from '../micro/hub';
import { cpuSeconds, freePort, spawnNode, stopProcess, waitForPort } from '../lib/procs';
import { result } from './common';
import { Scenario } from './types';

const MAIN = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

/** Rules as a deployment with channel features would have them; none matches the benchmark's topic "t0". */
const OTHER_RULES: readonly TopicRuleConfig[] = loadConfig({
  argv: ['--topics', JSON.stringify(Array.from({ length: 50 }, (_, i) => ({ match: `app${i}.*`, presence: true, joinLeave: true, lastMessage: true })))],
  env: {},
}).topics;
const LAST_MESSAGE: readonly TopicRuleConfig[] = loadConfig({ argv: ['--topics', '[{"match":"t0","lastMessage":true}]'], env: {} }).topics;

interface Storm {
  members: number;
  notices: number;
  expected: number;
  seconds: number;
  noticesPerSec: number;
  serverCpuSeconds: number;
}

/**
 * `members` connections subscribe one joinLeave topic, 50 at a time: every join is announced to everyone
 * already there, n(n−1)/2 notices in all. Measured from the first connection until the last notice.
 */
async function joinLeaveStorm(members: number): Promise<Storm> {
  const port = await freePort();
  const rules = JSON.stringify([{ match: 'storm.*', joinLeave: true, presence: true }]);
  const child = spawnNode(null, [MAIN, 'serve', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn', '--api-insecure', '--max-connections-per-ip', '0', '--max-commands-per-second', '0', '--topics', rules], false);
  const sockets: WebSocket[] = [];
  try {
    await waitForPort(port, child, 10_000);
    const expected = (members * (members - 1)) / 2;
    let notices = 0;
    let done: () => void = () => {};
    const all = new Promise<void>((resolve) => (done = resolve));
    const cpu0 = cpuSeconds(child.pid as number);
    const t0 = performance.now();
    for (let i = 0; i < members; i += 50) {
      const batch = Array.from({ length: Math.min(50, members - i) }, () => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?topics=storm.room`);
        ws.on('message', () => {
          if (++notices === expected) done();
        });
        sockets.push(ws);
        return once(ws, 'open');
      });
      await Promise.all(batch);
    }
    await Promise.race([all, new Promise((r) => setTimeout(r, 60_000))]);
    const seconds = (performance.now() - t0) / 1000;
    return { members, notices, expected, seconds: Math.round(seconds * 100) / 100, noticesPerSec: Math.round(notices / seconds), serverCpuSeconds: Math.round((cpuSeconds(child.pid as number) - cpu0) * 100) / 100 };
  } finally {
    for (const ws of sockets) ws.terminate();
    await stopProcess(child);
  }
}

/** What channel features cost: a join/leave storm, and that topics without rules pay nothing. */
export const channels: Scenario = {
  name: 'channels',
  title: 'Channel features: join/leave storm; plain-topic publish cost with and without topic rules',
  inDefault: false,
  async run(ctx) {
    const q = ctx.opts.quick;
    const publishes = q ? 20_000 : 200_000;
    ctx.log('channels: in-process publish cost, no rules / 50 non-matching rules / a lastMessage rule');
    const plain = runHubBenchmark(100, 100, publishes);
    const withRules = runHubBenchmark(100, 100, publishes, 'json', 'scan', OTHER_RULES);
    const lastMessage = runHubBenchmark(100, 100, publishes, 'json', 'scan', LAST_MESSAGE);
    const members = q ? 150 : 1000;
    ctx.log(`channels: join/leave storm, ${members} members`);
    const storm = await joinLeaveStorm(members);
    return {
      ...result(
        'channels',
        this.title,
        { publishes, members },
        { wsgate: { plain, withRules, lastMessage, storm } },
        [
          { metric: 'plain topic: ns per publish (codec + hub, 100 subs)', unit: 'ns', better: 'lower', values: { 'no rules': plain.nsPerPublish, '50 other rules': withRules.nsPerPublish, 'lastMessage rule': lastMessage.nsPerPublish } },
          { metric: 'plain topic: JS heap bytes per publish', unit: 'B', better: 'lower', values: { 'no rules': plain.bytesPerPublish, '50 other rules': withRules.bytesPerPublish, 'lastMessage rule': lastMessage.bytesPerPublish } },
          { metric: `join storm: ${members} members, notices received (expected ${storm.expected})`, unit: '', better: 'higher', values: { wsgate: storm.notices } },
          { metric: 'join storm: seconds from first connection to last notice', unit: 's', better: 'lower', values: { wsgate: storm.seconds } },
          { metric: 'join storm: notices per second received', unit: '/s', better: 'higher', values: { wsgate: storm.noticesPerSec } },
          { metric: 'join storm: server CPU seconds', unit: 's', better: 'lower', values: { wsgate: storm.serverCpuSeconds } },
        ],
        [
          'Publish cost: decode + validate + Hub.deliver into a no-op fan-out, default history; rules are resolved once per topic state, so 50 rules that do not match the topic change nothing per publish. The lastMessage column is a topic whose rule keeps its latest message (one copy per publish).',
          `Join storm: ${members} ws clients subscribe one topic with joinLeave and presence, 50 connecting at a time; each join is encoded once per codec and fanned out natively to those already subscribed: n(n−1)/2 notices. The clients run in the bench process on the same machine.`,
        ],
      ),
      ratioBase: 'no rules',
    };
  },
};
