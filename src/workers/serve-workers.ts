import type { Config } from '../config/schema';
import type { Logger } from '../log';
import { Supervisor } from './supervisor';

/**
 * The process-wide limits split over the workers. Connections arrive round-robin, so each worker
 * holding its share keeps the process within the configured limit (never above it; a worker whose
 * share is full refuses even when another has room, so the process may refuse up to workers−1 early).
 */
export function workerConfig(config: Config, workers: number): Config {
  const share = (n: number): number => (n === 0 ? 0 : Math.max(1, Math.ceil(n / workers)));
  return {
    ...config,
    maxConnections: Math.max(1, Math.floor(config.maxConnections / workers)),
    maxConnectionsPerIp: share(config.maxConnectionsPerIp),
    connectRatePerIp: share(config.connectRatePerIp),
  };
}

/** `serve --workers N` (N > 1): the main thread supervises; signals drain every worker, then exit 0. */
export async function serveWorkers(config: Config, log: Logger, workers: number): Promise<void> {
  const supervisor = new Supervisor(workerConfig(config, workers), log, workers);
  await supervisor.start();
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    signalled = true;
    log.info({ signal, drainWindowMs: config.drainWindow, deadlineMs: config.drainTimeout, workers }, 'draining');
    // Each worker cuts what is left at its own drain deadline (drainTimeout); this is the backstop.
    setTimeout(() => {
      log.warn('drain deadline reached: exiting');
      process.exit(0);
    }, config.drainTimeout + 5000).unref();
    void supervisor.drain().then(() => {
      log.info('drained');
      process.exit(0);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
