/**
 * The JetStream layout behind `--nats-jetstream`, measured (docs/cluster.md, "JetStream design,
 * measured"): `node dist/bench/micro/jetstream-design.js [topics]`.
 *
 * 1. Many topics: one stream with a subject per topic (what wsgate does) against a stream per topic,
 *    each topic holding one message: time to set up and nats-server RSS per topic (each layout on a fresh
 *    nats-server -js with a temp store dir).
 * 2. One topic, one node: publishes stored one per request (one in flight: the next needs the previous
 *    ack's sequence) against PublishLanes' group commit, offered open loop at 1,000 … 100,000/s.
 */
import { connect } from 'nats';
import { performance } from 'node:perf_hooks';
import { PublishLanes } from '../../src/broker/jetstream-lanes';
import { TopicStore, storeSubject } from '../../src/broker/jetstream-store';
import { Stats } from '../../src/metrics/stats';
import { Payload } from '../../src/protocol/payload';
import { BrokerServer } from '../lib/brokers';

const LIMITS = { perTopic: 101, maxAgeMs: 3600_000, duplicateWindowMs: 300_000, replicas: 1 };

async function serverRss(server: BrokerServer): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${server.monitorPort}/varz`);
  return ((await res.json()) as { mem: number }).mem;
}

async function layout(kind: 'one stream' | 'stream per topic', topics: number): Promise<string> {
  const server = await BrokerServer.start('nats', null, null, true);
  const nc = await connect({ servers: `127.0.0.1:${server.port}` });
  try {
    const jsm = await nc.jetstreamManager();
    const js = nc.jetstream();
    const { store } = await TopicStore.open(nc, LIMITS, 5000);
    await new Promise((r) => setTimeout(r, 500));
    const before = await serverRss(server);
    const t0 = performance.now();
    for (let i = 0; i < topics; i++) {
      const topic = `t${i}`;
      if (kind === 'one stream') await store.append(topic, Buffer.from('x'.repeat(64)), 0, null);
      else {
        const subject = `per.${topic}`;
        await jsm.streams.add({ name: `per_${topic}`, subjects: [subject], max_msgs: 100, max_age: LIMITS.maxAgeMs * 1e6 });
        await js.publish(subject, Buffer.from('x'.repeat(64)));
      }
    }
    const ms = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 1000));
    const after = await serverRss(server);
    return `${kind}: ${topics} topics set up in ${(ms / 1000).toFixed(1)} s (${((ms * 1000) / topics).toFixed(0)} µs per topic); nats-server RSS +${((after - before) / topics / 1024).toFixed(1)} KiB per topic`;
  } finally {
    await nc.close();
    await server.stop();
  }
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/** `perTick` publishes every 2 ms (open loop) with group commit, or one at a time waiting for each ack. */
async function publishing(mode: 'one per request' | 'group commit', n: number, perTick = 200): Promise<string> {
  const server = await BrokerServer.start('nats', null, null, true);
  const nc = await connect({ servers: `127.0.0.1:${server.port}` });
  try {
    const { store } = await TopicStore.open(nc, LIMITS, 5000);
    const stats = new Stats();
    const lanes = new PublishLanes(() => store, 'bench', 100_000, stats, () => undefined);
    const payload = new Payload();
    const latencies: number[] = [];
    const t0 = performance.now();
    const one = (i: number) => {
      const started = performance.now();
      const p = lanes.publish('bench.topic', payload.setValue({ i, pad: 'x'.repeat(48) }, false), 'http', performance.timeOrigin + started, null);
      return Promise.resolve(p).then(() => void latencies.push(performance.now() - started));
    };
    if (mode === 'one per request') for (let i = 0; i < n; i++) await one(i);
    else {
      const all: Promise<void>[] = [];
      for (let i = 0; i < n; i += perTick) {
        for (let j = i; j < Math.min(n, i + perTick); j++) all.push(one(j));
        await new Promise((r) => setTimeout(r, 2));
      }
      await Promise.all(all);
    }
    const ms = performance.now() - t0;
    latencies.sort((a, b) => a - b);
    const info = await (await nc.jetstreamManager()).streams.info('wsgate_topics', { subjects_filter: storeSubject('bench.topic') });
    return `${mode}${mode === 'group commit' ? ` (${perTick * 500}/s offered)` : ''}: ${n} publishes in ${(ms / 1000).toFixed(2)} s = ${Math.round((n * 1000) / ms).toLocaleString('en-US')}/s, latency p50 ${quantile(latencies, 0.5).toFixed(2)} ms p99 ${quantile(latencies, 0.99).toFixed(2)} ms; stored messages ${info.state.last_seq}`;
  } finally {
    await nc.close();
    await server.stop();
  }
}

async function main(): Promise<void> {
  const topics = Number(process.argv[2] ?? 2000);
  console.log(await layout('one stream', topics));
  console.log(await layout('stream per topic', topics));
  console.log(await publishing('one per request', 3000));
  for (const perTick of [2, 10, 40, 200]) console.log(await publishing('group commit', Math.max(4000, perTick * 1000), perTick));
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
