import { parseTopicRules, type TopicRuleConfig } from '../rules/topic-rules';
import { type Config } from '../config/schema';
import { ConfigError, loadConfig, usage } from '../config/load';
import { openApiRefusal } from '../guard/api-exposure';
import { createLogger } from '../log';
import { connectionBudget, openFilesLimit } from '../server/fd-limit';
import { Gateway } from '../server/gateway';
import { serveWorkers } from '../workers/serve-workers';
import { workerCount } from '../workers/supervisor';
import { DEMO_CHAT_TOPIC, startDemo } from './demo';

export const SERVE_HELP = `Usage: wsgate serve [options]

Runs a gateway node: WebSocket upgrades at /ws, POST /publish, /healthz, /readyz, /metrics.

Examples:
  npx wsgate serve --demo --page --client-publish      # what npm start runs: a demo topic and the page at /
  npx wsgate serve --port 8081 --broker nats://127.0.0.1:4222
  WSGATE_API_KEY=change-me npx wsgate serve --jwt-secret "$JWT_SECRET"

${usage()}

SIGTERM or SIGINT drains (1012 closes spread over --drain-window) and exits 0; a second signal exits at once.`;

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
  const log = createLogger(config.logLevel);
  const fds = connectionBudget(config.maxConnections, openFilesLimit());
  if (fds.warning !== null) log.warn({ maxConnections: config.maxConnections, openFilesLimit: openFilesLimit(), effective: fds.maxConnections }, fds.warning);
  const workers = workerCount(config.workers);
  if (workers > 1) return serveWorkers({ ...config, maxConnections: fds.maxConnections }, log, workers);
  const gateway = new Gateway({ ...config, maxConnections: fds.maxConnections }, log);
  await gateway.start();
  const demo = config.demo ? startDemo(gateway.broker) : null;

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    signalled = true;
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
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
