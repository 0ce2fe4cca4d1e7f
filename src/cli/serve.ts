import { parseTopicRules, type TopicRuleConfig } from '../rules/topic-rules';
import { type Config } from '../config/schema';
import { ConfigError, loadConfig, usage } from '../config/load';
import { openApiRefusal } from '../guard/api-exposure';
import { createLogger, type Logger } from '../log';
import { connectionBudget, openFilesLimit } from '../server/fd-limit';
import { Gateway } from '../server/gateway';
import { startOrExit } from '../server/listen';
import { serveWorkers } from '../workers/serve-workers';
import { workerCount } from '../workers/supervisor';
import { DEMO_CHAT_TOPIC, startDemo } from './demo';
import { frontDoors, startupWarnings } from './startup-report';
import { onStopSignals } from './stop-signals';

export const SERVE_HELP = `Usage: wsgate serve [options]

Runs a gateway node: WebSocket upgrades at /ws, POST /publish, /healthz, /readyz, /metrics.

Examples:
  npx wsgate serve --host 127.0.0.1 --demo --page --client-publish --api-insecure   # what npm start runs
  npx wsgate serve --port 8081 --broker nats://127.0.0.1:4222
  WSGATE_API_KEY="$(openssl rand -hex 24)" npx wsgate serve --jwt-secret "$JWT_SECRET"

${usage()}

SIGTERM or SIGINT drains (1012 closes spread over --drain-window) and exits 0. A repeat within 1 s is the
same stop (npm and systemd pass signals on) and is ignored; a signal after that exits at once (130/143).
Exit codes: 0 drained, 1 unexpected error, 2 invalid config or open API refused, 3 a port cannot be bound.`;

export async function serve(argv: readonly string[]): Promise<void> {
  let config: Config;
  try {
    config = loadConfig({ argv, env: process.env });
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`wsgate: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  // The demo's chat topic shows presence and join/leave on the built-in page (after any rule of the user's).
  if (config.demo) config = { ...config, topics: [...config.topics, ...(parseTopicRules([{ match: DEMO_CHAT_TOPIC, presence: true, joinLeave: true }]) as TopicRuleConfig[])] };
  const refusal = openApiRefusal(config);
  if (refusal !== null) {
    console.error(`wsgate: ${refusal}`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel, config.logFormat);
  const fds = connectionBudget(config.maxConnections, openFilesLimit());
  if (fds.warning !== null) log.warn(fds.warning);
  log.debug({ maxConnections: fds.maxConnections, openFilesLimit: openFilesLimit() }, 'connection limit');
  for (const warning of startupWarnings(config)) log.warn(warning);
  const workers = workerCount(config.workers);
  if (workers > 1) return serveWorkers({ ...config, maxConnections: fds.maxConnections }, log, workers);
  const gateway = new Gateway({ ...config, maxConnections: fds.maxConnections }, log);
  const port = await startOrExit(() => gateway.start(), () => gateway.close(), log);
  log.info(frontDoors(config, port), 'front doors');
  const demo = config.demo ? startDemo(gateway.broker) : null;
  handleStopSignals(gateway, config, log, demo);
}

/** SIGTERM/SIGINT drain once; an echo of the same stop is ignored; a deliberate later one exits at once. */
function handleStopSignals(gateway: Gateway, config: Config, log: Logger, demo: NodeJS.Timeout | null): void {
  onStopSignals(log, (signal) => {
    if (demo !== null) clearInterval(demo);
    log.info({ signal, drainWindowMs: config.drainWindow, deadlineMs: config.drainTimeout }, 'draining');
    const deadline = setTimeout(() => {
      log.warn({ connections: gateway.stats.connections }, 'drain deadline reached: cutting remaining connections');
      gateway.close().finally(() => process.exit(0));
    }, config.drainTimeout);
    gateway.drain().then(() => {
      clearTimeout(deadline);
      log.info('drained');
      process.exit(0);
    });
  });
}
