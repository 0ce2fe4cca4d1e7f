import type { Config } from '../config/schema';
import type { Logger } from '../log';
import { frontDoors } from '../cli/startup-report';
import { onStopSignals } from '../cli/stop-signals';
import { startOrExit } from '../server/listen';
import { Supervisor } from './supervisor';

/**
 * `serve --workers N` (N > 1): the main thread supervises and owns the listening socket and the stop
 * signals (one drain per stop, as a single-thread serve: an echo within the grace period is ignored, a
 * deliberate second signal exits at once); a drain drains every worker, then the process exits 0.
 */
export async function serveWorkers(config: Config, log: Logger, workers: number): Promise<void> {
  const supervisor = new Supervisor(config, log, workers);
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
