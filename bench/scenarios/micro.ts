import { runReceiveBenchmark } from '../micro/receive';
import { Scenario } from './types';
import { result } from './common';

/** Generator receive path vs the ws package's Receiver, same bytes, same per-message work. */
export const micro: Scenario = {
  name: 'micro',
  title: 'Generator receive path: hand-written scanner vs ws Receiver (in-process)',
  inDefault: true,
  async run(ctx) {
    const reads = ctx.opts.quick ? 50 : 1000;
    const [scanner, wsReceiver] = runReceiveBenchmark(reads);
    return result(
      'micro',
      this.title,
      { reads, readBytes: 65536, payloadBytes: 64 },
      { generator: { scanner, wsReceiver } },
      [
        { metric: 'ns per message', unit: 'ns', better: 'lower', values: { scanner: scanner.nsPerMessage, 'ws Receiver': wsReceiver.nsPerMessage } },
        { metric: 'JS heap bytes per message', unit: 'B', better: 'lower', values: { scanner: scanner.bytesPerMessage, 'ws Receiver': wsReceiver.bytesPerMessage } },
      ],
      ['Both decode 64 KiB reads of 64-byte-payload frames and do the same stamp parse, histogram record and sequence check.'],
    );
  },
};
