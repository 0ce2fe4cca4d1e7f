import { runReceiveBenchmark } from '../micro/receive';
import { runScanBenchmark } from '../micro/scan';
import { Scenario } from './types';
import { result } from './common';

/** Generator receive path vs the ws package's Receiver, same bytes, same per-message work. */
export const micro: Scenario = {
  name: 'micro',
  title: 'Hand-written scanners (in-process): generator receive path vs ws Receiver; publish frames vs JSON.parse/msgpackr',
  inDefault: true,
  async run(ctx) {
    const reads = ctx.opts.quick ? 50 : 1000;
    const [scanner, wsReceiver] = runReceiveBenchmark(reads);
    const publishScan = runScanBenchmark(ctx.opts.quick ? 20000 : 200000);
    const scanRows = publishScan.flatMap((v) => [
      { metric: `publish frame, ${v.codec} ${v.frame} (${v.bytes} B): ns per frame`, unit: 'ns', better: 'lower' as const, values: { scanner: v.scanNs, [v.codec === 'json' ? 'JSON.parse' : 'msgpackr']: v.decodeNs } },
      { metric: `publish frame, ${v.codec} ${v.frame}: JS heap bytes per frame`, unit: 'B', better: 'lower' as const, values: { scanner: v.scanBytes, [v.codec === 'json' ? 'JSON.parse' : 'msgpackr']: v.decodeBytes } },
    ]);
    return result(
      'micro',
      this.title,
      { reads, readBytes: 65536, payloadBytes: 64 },
      { generator: { scanner, wsReceiver }, wsgate: { publishScan } },
      [
        { metric: 'ns per message', unit: 'ns', better: 'lower', values: { scanner: scanner.nsPerMessage, 'ws Receiver': wsReceiver.nsPerMessage } },
        { metric: 'JS heap bytes per message', unit: 'B', better: 'lower', values: { scanner: scanner.bytesPerMessage, 'ws Receiver': wsReceiver.bytesPerMessage } },
        ...scanRows,
      ],
      [
        'Both decode 64 KiB reads of 64-byte-payload frames and do the same stamp parse, histogram record and sequence check.',
        "Publish frames: wsgate's validating scanner (locates topic, id and data, validates everything) vs the general path (decode + parseCommand) on the same `pub` frame.",
      ],
    );
  },
};
