import type { RunningServer, ServerName } from '../lib/servers';
import { GC_PRELOAD, collectGarbage, openFilesLimit, rssBytes } from '../lib/procs';
import { Scenario } from './types';
import { perServer, result, row, session, sleep } from './common';

export interface IdleOutcome {
  topicsPerConn: number;
  connections: number;
  failed: number;
  connectSeconds: number;
  connectsPerSec: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerConnection: number;
  errors: string[];
}

/** Descriptors kept free for everything else a process opens (listen socket, pipes, libs). */
const FD_HEADROOM = 300;

/**
 * Server RSS after a full collection. Read as it stands, RSS also counts garbage not yet collected and a
 * young generation grown by the connect burst, or lacks start-up garbage a collection during the burst
 * freed: tens of MB either way, hundreds of bytes per connection, depending on when each server last
 * collected. Every server is started with the same preload and collected the same way.
 */
async function heldRss(server: RunningServer): Promise<number> {
  await collectGarbage(server.child);
  return rssBytes(server.pid);
}

/**
 * N idle connections subscribed (via `?topics=`, over 1,000 topics) to 1 and to 10 topics each: server RSS
 * growth per connection (both readings after a full collection) and the connect rate. Each side
 * (server, generator) holds one descriptor per connection, so N is capped by the open-files limit.
 */
export const idle: Scenario = {
  name: 'idle',
  title: 'Idle subscribed connections: server memory and connect rate',
  inDefault: true,
  async run(ctx) {
    const limit = openFilesLimit();
    const conns = Math.min(ctx.opts.idleConns, limit - FD_HEADROOM);
    const notes: string[] = [];
    if (conns < ctx.opts.idleConns) {
      notes.push(`Asked for ${ctx.opts.idleConns} connections; the open-files limit here is ${limit} per process (hard limit, not raisable), so ${conns} were used.`);
    }
    notes.push('RSS is read before and after connecting, each time right after a full garbage collection in the server (the same preload in every server: bench/lib/gc-on-signal.ts).');
    const p = { requested: ctx.opts.idleConns, connections: conns, topics: 1000, topicsPerConn: '1,10', settleMs: ctx.opts.quick ? 500 : 3000 };
    const measureWith = (name: ServerName, topicsPerConn: number): Promise<IdleOutcome> =>
      session(ctx, name, async (server, gen): Promise<IdleOutcome> => {
        await sleep(p.settleMs);
        const before = await heldRss(server);
        const c = await gen.connect({ subs: conns, numTopics: p.topics, topicsPerConn, publishers: 0, publisherIds: 1, concurrency: 256, timeoutMs: 180000 });
        await sleep(p.settleMs);
        const after = await heldRss(server);
        return {
          topicsPerConn,
          connections: c.ok,
          failed: c.failed,
          connectSeconds: Math.round(c.seconds * 100) / 100,
          connectsPerSec: c.perSecond,
          rssBeforeBytes: before,
          rssAfterBytes: after,
          bytesPerConnection: c.ok > 0 ? Math.round((after - before) / c.ok) : 0,
          errors: c.errors,
        };
      }, ['-r', GC_PRELOAD]);
    // One fresh server per topics-per-connection count.
    const outcomes = await perServer(ctx, ctx.opts.servers, async (name) => [await measureWith(name, 1), await measureWith(name, 10)]);
    return result('idle', this.title, p, outcomes, [
      row(outcomes, 'server RSS per connection, 1 topic each (after full GC)', 'B', 'lower', (r) => r[0].bytesPerConnection),
      row(outcomes, 'server RSS per connection, 10 topics each (after full GC)', 'B', 'lower', (r) => r[1].bytesPerConnection),
      row(outcomes, 'connects/s (1 topic each)', '/s', 'higher', (r) => r[0].connectsPerSec),
      row(outcomes, 'connections held (1 topic each)', '', 'higher', (r) => r[0].connections),
    ], notes);
  },
};
