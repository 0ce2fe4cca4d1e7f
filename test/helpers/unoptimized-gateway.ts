/**
 * Child process of the publish-path allocation test, forked with `--no-opt`: the tier V8 keeps a publish
 * path in while it runs a few dozen times a second. A gateway on a free port; on "start" it takes the
 * heap meter's reading, on "stop" it answers the JS heap bytes allocated since.
 */
import { HeapAllocationMeter } from '../../src/metrics/heap-allocation';
import { startGateway } from './gateway';

async function main(): Promise<void> {
  const g = await startGateway(['--client-publish', '--max-commands-per-second', '0']);
  const meter = new HeapAllocationMeter();
  let base = 0;
  process.on('message', (m: string) => {
    if (m === 'start') base = meter.sample();
    if (m === 'stop') {
      process.send?.({ bytes: meter.sample() - base });
      meter.stop();
      void g.stop().then(() => process.exit(0));
      return;
    }
    process.send?.({ ok: m });
  });
  process.send?.({ port: g.port });
}

void main();
