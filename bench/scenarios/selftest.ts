import * as path from 'node:path';
import { Generator } from '../gen/handle';
import { RunResult } from '../gen/control';
import { cpuSeconds, freePort, pinning, spawnNode, stopProcess, waitForPort } from '../lib/procs';
import { Scenario } from './types';
import { requireConnected, result } from './common';

/**
 * Generator self-test: the blaster server writes pre-framed deliveries as fast as sockets take
 * them, so the rate the generator sustains (doing its full per-message work: scan, stamp parse,
 * histogram, sequence check) is its receive capacity. Every report prints it next to the results.
 */
export const selftest: Scenario = {
  name: 'selftest',
  title: 'Load generator receive capacity (blaster server, 64 B payloads)',
  inDefault: true,
  async run(ctx) {
    const q = ctx.opts.quick;
    const p = { subscribers: q ? 20 : 1000, payloadBytes: 64, warmupMs: q ? 300 : 1000, durationMs: q ? 1000 : 5000 };
    const port = await freePort();
    const pin = pinning();
    const blaster = spawnNode(
      pin?.server ?? null,
      [path.join(__dirname, '..', 'baselines', 'blaster.js'), '--port', String(port), '--payload', String(p.payloadBytes), '--conns', String(p.subscribers)],
      false,
    );
    let gen: Generator | null = null;
    try {
      await waitForPort(port, blaster, 10000);
      gen = await Generator.start(pin?.generator ?? null, { host: '127.0.0.1', port, dialect: 'plain' }, ctx.opts.threads);
      requireConnected(
        await gen.connect({ subs: p.subscribers, numTopics: 1, publishers: 0, publisherIds: 1, concurrency: 200, timeoutMs: 30000 }),
        p.subscribers,
      );
      const t0 = performance.now();
      const b0 = cpuSeconds(blaster.pid ?? 0);
      const g0 = cpuSeconds(gen.pid);
      const r: RunResult = await gen.run({
        mode: 'listen',
        rate: 0,
        warmupMs: p.warmupMs,
        durationMs: p.durationMs,
        drainMs: 0,
        payloadBytes: p.payloadBytes,
        numTopics: 1,
        fanout: 1,
        windowPerSub: 0,
        totalSubs: p.subscribers,
        httpConnections: 0,
      });
      const wall = (performance.now() - t0) / 1000;
      const blasterCpu = Math.round(((cpuSeconds(blaster.pid ?? 0) - b0) / wall) * 100);
      const generatorCpu = Math.round(((cpuSeconds(gen.pid) - g0) / wall) * 100);
      ctx.generatorCapacity = r.deliveriesPerSec;
      ctx.log(`  generator receive capacity: ${r.deliveriesPerSec.toLocaleString('en-US')} msgs/s (CPU: generator ${generatorCpu} %, blaster ${blasterCpu} %)`);
      return result('selftest', this.title, p, { generator: { messagesPerSec: r.deliveriesPerSec, generatorCpuPercent: generatorCpu, blasterCpuPercent: blasterCpu, errors: r.errors } }, [], [
        `The generator received ${r.deliveriesPerSec.toLocaleString('en-US')} msgs/s from a server doing no per-message work; server results near this figure are bounded by the generator.`,
      ]);
    } finally {
      await gen?.close();
      await stopProcess(blaster);
    }
  },
};
