/**
 * Delta delivery against full delivery on a state stream: a real Gateway in this process (memory broker,
 * topic rule `delta` on state.*) and N raw WebSocket subscribers in a child process (micro/sink.ts), fed a
 * chain of JSON documents of a given size where each publish changes a few fields. Three topics, same
 * documents, same subscriber count, measured in interleaved rounds:
 *   plain        a topic without the rule (what every topic pays today)
 *   rule, full   a topic with the rule whose subscribers did not ask for deltas (the rule's own cost)
 *   delta        a topic with the rule whose subscribers all asked for fossil deltas
 * Per delivery: wire bytes the subscribers read (WebSocket headers included) and this process's CPU time
 * (process.cpuUsage: hub, delta computation, uWS's native fan-out and socket writes); per publish: JS heap
 * bytes allocated (V8 GC statistics, the publishing loop's own view per publish included in every variant).
 */
import { fork } from 'node:child_process';
import * as path from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';
import { PublishReader } from '../../src/protocol/publish-reader';
import { Gateway } from '../../src/server/gateway';
import { startAllocationMeter } from '../lib/alloc';
import { ask, settled } from './publish-cost';

export type DeltaVariant = 'plain' | 'rule, full' | 'delta';
const VARIANTS: readonly { variant: DeltaVariant; topic: string; delta: boolean }[] = [
  { variant: 'plain', topic: 'plain.s', delta: false },
  { variant: 'rule, full', topic: 'state.f', delta: false },
  { variant: 'delta', topic: 'state.d', delta: true },
];

export interface DeltaCost {
  variant: DeltaVariant;
  subscribers: number;
  docBytes: number;
  wireBytesPerDelivery: number;
  cpuNsPerDelivery: number;
  heapBytesPerPublish: number;
}

const BATCH = 10;

/** A state document of about `bytes` bytes of JSON: fields of numbers, short text and small objects. */
function stateDoc(bytes: number): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  for (let i = 0; JSON.stringify(doc).length < bytes; i++) doc[`k${i}`] = i % 2 === 0 ? { px: 100 + i * 0.25, qty: i * 3, side: i % 4 === 0 ? 'buy' : 'sell' } : `status-${i}`;
  return doc;
}

/** `n` consecutive states: each changes three fields of the previous one (deterministic). */
export function stateChain(bytes: number, n: number): string[] {
  const doc = stateDoc(bytes);
  const keys = Object.keys(doc);
  const out: string[] = [];
  let r = 12345;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      r = (r * 1103515245 + 12345) & 0x7fffffff;
      const k = keys[r % keys.length] as string;
      doc[k] = { px: (r % 100000) / 100, qty: r % 977, side: r % 2 === 0 ? 'buy' : 'sell' };
    }
    out.push(JSON.stringify(doc));
  }
  return out;
}

interface Round {
  cpuNs: number;
  wireBytes: number;
  heapBytes: number;
}

export async function runDeltaCost(subscribers: number, docSizes: readonly number[], publishes: number, rounds = 3): Promise<DeltaCost[]> {
  const out: DeltaCost[] = [];
  const argv = ['--host', '127.0.0.1', '--port', '0', '--log-level', 'silent', '--history-size', '0', '--idle-timeout', '0', '--max-connections', String(3 * subscribers + 100), '--max-backpressure', String(256 * 1024 * 1024)];
  const config = loadConfig({ argv: [...argv, '--topics', JSON.stringify([{ match: 'state.*', delta: true }])], env: {} });
  const gw = new Gateway(config, createLogger('silent'));
  const port = await gw.start();
  const sinks = VARIANTS.map(() => fork(path.join(__dirname, 'sink.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  try {
    for (let i = 0; i < VARIANTS.length; i++) {
      const v = VARIANTS[i] as (typeof VARIANTS)[number];
      await ask(sinks[i] as ReturnType<typeof fork>, { port, count: subscribers, topic: v.topic, delta: v.delta }, 'ready');
    }
    const deadline = Date.now() + 30_000;
    while (VARIANTS.some((v) => (gw.hub.get(v.topic)?.jsonSubs ?? 0) !== subscribers)) {
      if (Date.now() > deadline) throw new Error('delta-cost: subscribers did not all subscribe');
      await new Promise((r) => setTimeout(r, 50));
    }
    const reader = new PublishReader(config.maxTopicLength, config.maxDepth);
    for (const docBytes of docSizes) {
      const chain = stateChain(docBytes, publishes * (rounds + 1));
      const frames = VARIANTS.map((v) => chain.map((doc) => new Uint8Array(Buffer.from(`{"op":"pub","topic":"${v.topic}","data":${doc}}`)).buffer));
      const publishRound = async (i: number, from: number): Promise<Round> => {
        const sink = sinks[i] as ReturnType<typeof fork>;
        const before = await settled(sink);
        const list = frames[i] as ArrayBuffer[];
        const stop = startAllocationMeter();
        const c0 = process.cpuUsage();
        for (let p = 0; p < publishes; p += BATCH) {
          for (let k = p; k < p + BATCH && k < publishes; k++) {
            if (!reader.socketPub(Buffer.from(list[from + k] as ArrayBuffer), true)) throw new Error('delta-cost: frame not taken');
            gw.broker.publish(reader.topic(0), reader.data(0), 'socket', performance.now());
          }
          await turn();
        }
        const c = process.cpuUsage(c0);
        const heapBytes = stop();
        return { cpuNs: (c.user + c.system) * 1000, wireBytes: (await settled(sink)) - before, heapBytes };
      };
      // Warm-up round (also the first full delivery of the delta subscribers), then interleaved rounds.
      for (let i = 0; i < VARIANTS.length; i++) await publishRound(i, 0);
      let next = publishes;
      const best = VARIANTS.map(() => ({ cpuNs: Infinity, wireBytes: 0, heapBytes: Infinity }));
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < VARIANTS.length; i++) {
          const m = await publishRound(i, next);
          const b = best[i] as Round;
          b.cpuNs = Math.min(b.cpuNs, m.cpuNs);
          b.heapBytes = Math.min(b.heapBytes, m.heapBytes);
          b.wireBytes += m.wireBytes / rounds; // bytes do not depend on the machine's load: the mean
        }
        next += publishes;
      }
      // The sinks answer no pings (hence --idle-timeout 0): a lost subscriber would make every figure wrong.
      if (gw.stats.connections !== VARIANTS.length * subscribers || gw.stats.slowConsumerDisconnects !== 0) throw new Error(`delta-cost: subscribers were lost (${gw.stats.connections} connected; closed: ${JSON.stringify(gw.stats.disconnects)})`);
      VARIANTS.forEach((v, i) => {
        const b = best[i] as Round;
        const deliveries = publishes * subscribers;
        out.push({
          variant: v.variant,
          subscribers,
          docBytes,
          wireBytesPerDelivery: Math.round(b.wireBytes / deliveries),
          cpuNsPerDelivery: Math.round(b.cpuNs / deliveries),
          heapBytesPerPublish: Math.round(b.heapBytes / publishes),
        });
      });
    }
  } finally {
    for (const s of sinks) s.send({ cmd: 'stop' });
    await gw.close();
  }
  return out;
}
