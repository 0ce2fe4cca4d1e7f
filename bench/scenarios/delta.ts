import { runDeltaCost, type DeltaCost } from '../micro/delta-cost';
import { runFossilBenchmark } from '../micro/fossil';
import { Scenario } from './types';
import { perServer, result } from './common';

const COLUMNS: Record<DeltaCost['variant'], string> = { plain: 'plain topic', 'rule, full': 'rule delta, full subs', delta: 'delta subs' };

/** Fossil deltas against full deliveries on a state stream (docs/protocol.md, "Deltas"). */
export const delta: Scenario = {
  name: 'delta',
  title: 'Delta delivery on a state stream: wire bytes and server CPU per delivery, heap per publish (plain topic, rule without delta subscribers, delta subscribers)',
  inDefault: false,
  async run(ctx) {
    const q = ctx.opts.quick;
    const p = { subscribers: q ? 50 : 1000, docBytes: q ? '2048,20480' : '2048,20480,40960', publishes: 50, rounds: q ? 2 : 3, changedFieldsPerPublish: 3 };
    const sizes = p.docBytes.split(',').map(Number);
    const outcomes = await perServer(ctx, ['wsgate'], async () => ({
      costs: await runDeltaCost(p.subscribers, sizes, p.publishes, p.rounds),
      fossil: runFossilBenchmark(sizes, q ? 100 : 1000),
    }));
    const w = outcomes.wsgate;
    const costs = w !== undefined && !('error' in w) ? w.costs : [];
    const fossil = w !== undefined && !('error' in w) ? w.fossil : [];
    const rows = sizes.flatMap((size) => {
      const at = costs.filter((c) => c.docBytes === size);
      const values = (pick: (c: DeltaCost) => number) => Object.fromEntries(at.map((c) => [COLUMNS[c.variant], pick(c)]));
      const label = `${Math.round(size / 1024)} KB state, ${p.subscribers} subscribers`;
      return [
        { metric: `${label}: wire bytes per delivery`, unit: 'B', better: 'lower' as const, values: values((c) => c.wireBytesPerDelivery) },
        { metric: `${label}: server CPU ns per delivery`, unit: 'ns', better: 'lower' as const, values: values((c) => c.cpuNsPerDelivery) },
        { metric: `${label}: JS heap bytes per publish`, unit: 'B', better: 'lower' as const, values: values((c) => c.heapBytesPerPublish) },
      ];
    });
    for (const f of fossil) {
      const label = `fossil delta of a ${Math.round(f.docBytes / 1024)} KB state (${f.deltaBytes} B delta)`;
      rows.push(
        { metric: `${label}: ns per delta`, unit: 'ns', better: 'lower' as const, values: { 'fossil-delta createDelta': f.packageNs, 'FossilEncoder (reused buffers)': f.encoderNs } },
        { metric: `${label}: JS heap bytes per delta`, unit: 'B', better: 'lower' as const, values: { 'fossil-delta createDelta': f.packageBytes, 'FossilEncoder (reused buffers)': f.encoderBytes } },
      );
    }
    const r = result('delta', this.title, p, outcomes, rows, [
      'One Gateway in the benchmark process (memory broker, no history, rule {"match":"state.*","delta":true}); subscribers are raw WebSocket connections in one child process per topic that read and discard.',
      'Each publish changes 3 fields of a JSON object of the given size (pre-encoded `pub` frames read in place like a socket pub). Same documents on the three topics, interleaved rounds; CPU and heap are the best round, bytes the mean.',
      'Delta subscribers get the full data at every 10th sequence (--delta-full-every 10) and a fossil delta otherwise, computed once per publish: wire bytes include those full deliveries and the WebSocket headers.',
      'Heap per publish includes the loop\'s own Buffer view of each frame, the same in every column; per delivery it is this ÷ subscribers.',
      'Last rows: the encoder wsgate uses (src/pubsub/fossil-encoder.ts, a port of the package\'s createDelta to reused buffers, byte-identical output) beside the package itself, same documents, single thread, in the benchmark process.',
    ]);
    return { ...r, ratioBase: COLUMNS.plain };
  },
};
