import { randomBytes } from 'node:crypto';
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { InProcessBroker } from '../broker/in-process-broker';
import { startDemo } from '../cli/demo';
import { type Logger, createLogger } from '../log';
import { Gateway } from '../server/gateway';
import { forgetPredecessor } from '../shared/process-tables';
import { MeshLink } from './mesh';
import type { FromWorker, ToWorker, WorkerBoot } from './messages';

/** How long a dying worker waits for the main thread to take its apps out of the acceptors. */
const RELEASE_WAIT_MS = 2000;

/** The process's /metrics text, asked of the main thread (it merges every worker's): one pending answer per id. */
function scrapeRelay(post: (m: FromWorker) => void): { ask: () => Promise<string>; answered: (id: number, r: { text: string; ok: boolean }) => void } {
  let next = 0;
  const pending = new Map<number, (r: { text: string; ok: boolean }) => void>();
  return {
    ask: () =>
      new Promise((resolve, reject) => {
        const id = ++next;
        pending.set(id, (r) => (r.ok ? resolve(r.text) : reject(new Error(r.text))));
        post({ type: 'scrape', id });
      }),
    answered: (id, r) => {
      pending.get(id)?.(r);
      pending.delete(id);
    },
  };
}

/**
 * On an uncaught exception: tells the main thread, waits until its acceptor has let go of this app (the
 * returned function, on `released`), closes the gateway and exits 1.
 */
function dieOnUncaught(log: Logger, post: (m: FromWorker) => void, gateway: Gateway, exit: (code: number) => void): () => void {
  let released = (): void => {};
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'worker failed: its connections are cut and the worker is replaced');
    post({ type: 'dying' });
    // The acceptor must stop handing this app connections before it is closed.
    const wait = new Promise<void>((resolve) => {
      released = resolve;
      setTimeout(resolve, RELEASE_WAIT_MS).unref();
    });
    void wait.then(() => gateway.close()).finally(() => exit(1));
  });
  return () => released();
}

/**
 * A worker thread: one gateway node whose app gets its connections from the main thread's acceptor
 * and whose broker is the in-process mesh to the other workers.
 */
function main(port: MessagePort, boot: WorkerBoot): void {
  const { config, index, generation } = boot;
  const log = createLogger(config.logLevel, config.logFormat).child({ worker: index });
  const post = (m: FromWorker): void => port.postMessage(m);
  const link = new MeshLink(index, boot.mesh);
  const tables = { ...boot.tables, worker: index };
  if (generation > 0) forgetPredecessor(tables);
  let broker: InProcessBroker | null = null;
  const scrapes = scrapeRelay(post);
  const gateway = new Gateway(config, log, {
    // With --broker redis/nats each worker is a node of that cluster with its own connection.
    broker: (hub, stats) => config.broker !== 'memory' ? null : (broker = new InProcessBroker(hub, stats, link, `w${index}.${generation}.${randomBytes(4).toString('hex')}`, boot.channel, config.brokerMaxPending, config.positionMaxTopics, config.brokerLinger, generation > 0)),
    guardMemory: boot.guard,
    tables,
    metricsText: scrapes.ask,
  });
  gateway.metrics.metrics.counter('wsgate_worker_ring_full_total', 'Messages to another worker not written because its ring was full (that worker was not keeping up).', () => link.full);
  let demo: NodeJS.Timeout | null = null;
  const exit = (code: number): void => {
    port.close();
    process.exit(code);
  };
  const release = dieOnUncaught(log, post, gateway, exit);
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'drain':
        if (demo !== null) clearInterval(demo);
        setTimeout(() => void gateway.close(), config.drainTimeout).unref();
        void gateway.drain().then(() => {
          post({ type: 'drained' });
          exit(0);
        });
        return;
      case 'close':
        if (demo !== null) clearInterval(demo);
        void gateway.close().then(() => {
          post({ type: 'drained' });
          exit(0);
        });
        return;
      case 'peer':
        link.replacePeer(m.index, m.out, m.inbound, m.bell);
        (broker as InProcessBroker | null)?.peerReplaced(m.index);
        return;
      case 'collect':
        void gateway.metrics.metrics.registry.getMetricsAsJSON().then((metrics) => post({ type: 'collected', id: m.id, metrics: metrics as never }));
        return;
      case 'scraped':
        return scrapes.answered(m.id, m);
      case 'released':
        return release();
      case 'fail':
        setImmediate(() => {
          throw new Error('fault injected by the supervisor');
        });
        return;
    }
  });
  gateway.start().then(
    () => {
      // One worker runs the demo publisher: its topic is numbered by its owner like any other.
      if (config.demo && index === 0) demo = startDemo(gateway.broker);
      post({ type: 'ready', ...gateway.descriptors });
    },
    (err: unknown) => {
      log.fatal({ err }, 'worker could not start');
      exit(1);
    },
  );
}

if (parentPort !== null) main(parentPort, workerData as WorkerBoot);
