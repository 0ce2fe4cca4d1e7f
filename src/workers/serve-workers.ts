import type { Config } from '../config/schema';
import type { Logger } from '../log';
import { frontDoors } from '../cli/startup-report';
import { onStopSignals } from '../cli/stop-signals';
import { startOrExit } from '../server/listen';
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

/**
 * `serve --workers N` (N > 1): the main thread supervises and owns the listening socket and the stop
 * signals (one drain per stop, as a single-thread serve: an echo within the grace period is ignored, a
 * deliberate second signal exits at once); a drain drains every worker, then the process exits 0.
 */
export async function serveWorkers(config: Config, log: Logger, workers: number): Promise<void> {
  const supervisor = new Supervisor(workerConfig(config, workers), log, workers);
  const port = await startOrExit(() => supervisor.start(), () => supervisor.drain(), log);
  log.info({ ...frontDoors(config, port), workers }, 'front doors');
  onStopSignals(log, (signal) => {
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
  });
}
