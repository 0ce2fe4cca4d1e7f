import { runPublishCost } from '../micro/publish-cost';
import { Scenario } from './types';
import { perServer, result } from './common';

/** wsgate's in-process publish path vs a bare app.publish of a prebuilt frame, same app, same subscribers. */
export const publishcost: Scenario = {
  name: 'publishcost',
  title: 'In-process publish cost: socket-pub path (scan + hub + app.publish) vs bare app.publish (CPU ns per publish)',
  inDefault: true,
  async run(ctx) {
    const q = ctx.opts.quick;
    const p = { subscribers: q ? '1,10' : '1,100,1000', publishes: q ? 2000 : 10000, rounds: 3, dataBytes: 64 };
    const outcomes = await perServer(ctx, ['wsgate'], async () => ({ costs: await runPublishCost(q ? [1, 10] : [1, 100, 1000], p.publishes, p.rounds) }));
    const w = outcomes.wsgate;
    const costs = w !== undefined && !('error' in w) ? w.costs : [];
    return result(
      'publishcost',
      this.title,
      p,
      outcomes,
      costs.map((c) => ({
        metric: `${c.subscribers} subscriber${c.subscribers === 1 ? '' : 's'}, ${c.frameBytes} B frame: CPU ns per publish`,
        unit: 'ns',
        better: 'lower' as const,
        values: { wsgate: c.wsgateNs, 'bare app.publish': c.floorNs },
      })),
      [
        'Both run in the benchmark process against one real Gateway (memory broker, default history); subscribers are raw WebSocket connections in a child process that read and discard.',
        'wsgate: a view of the `pub` frame, PublishReader (scan, interned topic, data bytes), broker.publish → Hub.deliver (frame encoded into the reused buffer, history copy) → app.publish. Floor: app.publish of a prebuilt frame to the same topic key.',
        'CPU time of the process (process.cpuUsage) per publish, uWS native fan-out included, best of interleaved rounds (the machine is shared).',
      ],
    );
  },
};
