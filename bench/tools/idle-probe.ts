/**
 * `node dist/bench/tools/idle-probe.js <server> [half=9800] [topicsPerConn=1] [heap]`: connects `half`
 * idle subscribed connections (over 1,000 topics), then `half` more; prints server RSS per connection
 * over all of them and marginal for the second half, each after a full GC (bench/lib/gc-on-signal.ts),
 * and the second half's RSS right after connecting (connect-time garbage still in). With `heap`, the
 * second half's connects are heap-profiled (bench/lib/heap-sampler.ts) into HEAPSAMPLE_OUT.
 */
import { GC_PRELOAD, SAMPLER_PRELOAD, collectGarbage, rssBytes } from '../lib/procs';
import type { ServerName } from '../lib/servers';
import { probe, sleep } from './probe';

const [name = 'wsgate', halfArg = '9800', topicsArg = '1', heapArg] = process.argv.slice(2);
const half = Number(halfArg);
const heap = heapArg === 'heap';

probe(name as ServerName, ['-r', GC_PRELOAD, ...(heap ? ['-r', SAMPLER_PRELOAD] : [])], async (server, gen) => {
  const held = async (): Promise<number> => {
    await collectGarbage(server.child);
    return rssBytes(server.pid);
  };
  const connect = () => gen.connect({ subs: half, numTopics: 1000, topicsPerConn: Number(topicsArg), publishers: 0, publisherIds: 1, concurrency: 256, timeoutMs: 180_000 });
  await sleep(2000);
  const r0 = await held();
  const first = await connect();
  await sleep(3000);
  const r1 = await held();
  if (heap) process.kill(server.pid, 'SIGWINCH');
  const second = await connect();
  const asConnected = rssBytes(server.pid);
  if (heap) process.kill(server.pid, 'SIGWINCH');
  await sleep(3000);
  const r2 = await held();
  const n = first.ok + second.ok;
  console.log(JSON.stringify({ server: name, connections: n, perConnection: Math.round((r2 - r0) / n), marginal: Math.round((r2 - r1) / second.ok), marginalBeforeGc: Math.round((asConnected - r1) / second.ok), connectsPerSec: Math.round(second.perSecond) }));
});
