import { openFilesLimit, rssBytes } from '../lib/procs';
import { Scenario } from './types';
import { perServer, result, row, session, sleep } from './common';

export interface IdleOutcome {
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
 * N idle subscribed connections: server RSS growth per connection and the connect rate. Each side
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
    const p = { requested: ctx.opts.idleConns, connections: conns, topics: 100, settleMs: ctx.opts.quick ? 500 : 3000 };
    const outcomes = await perServer(ctx, ctx.opts.servers, (name) =>
      session(ctx, name, async (server, gen): Promise<IdleOutcome> => {
        await sleep(p.settleMs);
        const before = rssBytes(server.pid);
        const c = await gen.connect({ subs: conns, numTopics: p.topics, publishers: 0, publisherIds: 1, concurrency: 256, timeoutMs: 180000 });
        await sleep(p.settleMs);
        const after = rssBytes(server.pid);
        return {
          connections: c.ok,
          failed: c.failed,
          connectSeconds: Math.round(c.seconds * 100) / 100,
          connectsPerSec: c.perSecond,
          rssBeforeBytes: before,
          rssAfterBytes: after,
          bytesPerConnection: c.ok > 0 ? Math.round((after - before) / c.ok) : 0,
          errors: c.errors,
        };
      }),
    );
    return result('idle', this.title, p, outcomes, [
      row(outcomes, 'server RSS per connection', 'B', 'lower', (r) => r.bytesPerConnection),
      row(outcomes, 'connects/s', '/s', 'higher', (r) => r.connectsPerSec),
      row(outcomes, 'connections held', '', 'higher', (r) => r.connections),
    ], notes);
  },
};
