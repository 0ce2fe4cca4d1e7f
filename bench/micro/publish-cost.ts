/**
 * In-process publish cost against its floor: a real Gateway (hub, memory broker, uWS app) with N real
 * subscribers (raw WebSocket connections in a child process, micro/sink.ts), publishing a small message
 * the way a socket `pub` does (view of the frame, PublishReader, broker.publish → Hub.deliver →
 * app.publish), beside the floor: a bare `app.publish` of a prebuilt frame to the same subscribers.
 * Both are measured as this process's CPU time per publish (process.cpuUsage), which includes uWS's
 * native fan-out, in batches with an event-loop turn between them so uWS flushes to the sockets.
 */
import { fork } from 'node:child_process';
import * as path from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';
import { PublishReader } from '../../src/protocol/publish-reader';
import { Gateway } from '../../src/server/gateway';

export interface PublishCost {
  subscribers: number;
  frameBytes: number;
  wsgateNs: number;
  floorNs: number;
  ratio: number;
}

const BATCH = 50;

/** Sends `msg` to a sink (micro/sink.ts) and resolves with its answer's `key`. */
export function ask<T>(child: ReturnType<typeof fork>, msg: object, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (m: Record<string, unknown>) => {
      if ('error' in m) reject(new Error(String(m.error)));
      else if (key in m) {
        child.off('message', on);
        resolve(m[key] as T);
      }
    };
    child.on('message', on);
    child.send(msg);
  });
}

/** Waits until the subscribers have read everything sent (their byte count stops growing). */
export async function settled(sink: ReturnType<typeof fork>): Promise<number> {
  let last = -1;
  for (;;) {
    const bytes = await ask<number>(sink, { cmd: 'bytes' }, 'bytes');
    if (bytes === last) return bytes;
    last = bytes;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function cpuNsPer(publishes: number, publish: () => void): Promise<number> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < publishes; i += BATCH) {
    for (let k = 0; k < BATCH; k++) publish();
    await turn();
  }
  const c = process.cpuUsage(c0);
  return Math.round(((c.user + c.system) * 1000) / publishes);
}

export async function runPublishCost(subscriberCounts: readonly number[], publishes: number, rounds = 3): Promise<PublishCost[]> {
  const out: PublishCost[] = [];
  for (const n of subscriberCounts) {
    const config = loadConfig({ argv: ['--host', '127.0.0.1', '--port', '0', '--log-level', 'silent', '--max-connections', String(n + 100), '--max-backpressure', String(64 * 1024 * 1024)], env: {} });
    const gw = new Gateway(config, createLogger('silent'));
    const port = await gw.start();
    const sink = fork(path.join(__dirname, 'sink.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      await ask(sink, { port, count: n, topic: 't0' }, 'ready');
      const state = gw.hub.get('t0');
      if (state === undefined || state.jsonSubs !== n) throw new Error(`publish-cost: ${state?.jsonSubs ?? 0} of ${n} subscribers`);
      const data = 'x'.repeat(64);
      const frameAb = new Uint8Array(Buffer.from(JSON.stringify({ op: 'pub', topic: 't0', data }))).buffer;
      const prebuilt = Buffer.from(JSON.stringify({ t: 't0', s: 1, d: data }));
      const app = gw['app'];
      const reader = new PublishReader(config.maxTopicLength, config.maxDepth);
      const broker = gw.broker;
      const viaWsgate = (): void => {
        if (!reader.socketPub(Buffer.from(frameAb), true)) throw new Error('publish-cost: frame not taken');
        broker.publish(reader.topic(0), reader.data(0), 'socket', performance.now());
      };
      const floor = (): void => void app.publish(state.jsonKey, prebuilt, false);
      await cpuNsPer(publishes / 5, viaWsgate); // warm up both
      await cpuNsPer(publishes / 5, floor);
      // Interleaved rounds, best of each: the machine is shared, the minimum is the least disturbed.
      let w = Infinity;
      let f = Infinity;
      for (let r = 0; r < rounds; r++) {
        await settled(sink);
        w = Math.min(w, await cpuNsPer(publishes, viaWsgate));
        await settled(sink);
        f = Math.min(f, await cpuNsPer(publishes, floor));
      }
      await settled(sink);
      if (gw.stats.connections !== n || gw.stats.slowConsumerDisconnects !== 0) throw new Error(`publish-cost: subscribers were lost (${gw.stats.connections} of ${n} connected, ${gw.stats.slowConsumerDisconnects} cut as slow)`);
      out.push({ subscribers: n, frameBytes: prebuilt.length, wsgateNs: w, floorNs: f, ratio: Math.round((w / f) * 100) / 100 });
    } finally {
      sink.send({ cmd: 'stop' });
      await gw.close();
    }
  }
  return out;
}
