/** Embedding API: run a wsgate node inside another Node program. The client SDK is `wsgate/client`. */
export { Gateway } from './server/gateway';
export { loadConfig, ConfigError, usage } from './config/load';
export type { Config } from './config/schema';
export { createLogger, type Logger } from './log';
export { CloseCode, ErrorCode, GatewayError } from './protocol/codes';
export type { Broker, PublishOutcome } from './broker/broker';
