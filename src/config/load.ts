import { accessSync, constants, readFileSync } from 'node:fs';

const readable = (path: string): boolean => {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
};
import { topicRulesHelp } from '../rules/topic-rules';
import { autoMaxConnections, openFilesLimit } from '../server/fd-limit';
import { type Config, type ConfigKey, type Spec, configKeys, schema } from './schema';

/** A configuration mistake, naming the key, where it came from and what is accepted. */
export class ConfigError extends Error {
  readonly code = 'config_invalid';
  constructor(
    readonly key: string,
    readonly source: string,
    readonly accepted: string,
  ) {
    super(`invalid config ${key} (from ${source}): expected ${accepted}`);
  }
}

export const flagName = (key: ConfigKey): string => key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
export const envName = (key: ConfigKey): string => 'WSGATE_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();

function accepted(spec: Spec): string {
  switch (spec.kind) {
    case 'int':
      return spec.check ? `an integer, ${spec.check.rule}` : `an integer ${spec.min}..${spec.max}`;
    case 'enum':
      return `one of ${spec.values.join(', ')}`;
    case 'bool':
      return 'true or false';
    case 'string':
      return spec.check ? spec.check.rule : 'a string';
    case 'rules':
      return 'a JSON array of topic rules';
  }
}

/** Converts one raw value (string from flags/env, or a JSON value from the file) per the key's spec. */
function coerce(key: ConfigKey, raw: unknown, source: string): Config[ConfigKey] {
  const spec = schema[key];
  const fail = (): never => {
    throw new ConfigError(key, source, accepted(spec));
  };
  switch (spec.kind) {
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n) || n < spec.min || n > spec.max || (spec.check && !spec.check.ok(n))) fail();
      return n;
    }
    case 'bool':
      if (raw === true || raw === 'true' || raw === '1') return true;
      if (raw === false || raw === 'false' || raw === '0') return false;
      return fail();
    case 'enum':
      if (typeof raw !== 'string' || !spec.values.includes(raw)) fail();
      return raw as string;
    case 'string':
      if (typeof raw !== 'string' || (spec.check && !spec.check.ok(raw))) fail();
      return raw as string;
    case 'rules': {
      let value = raw;
      if (typeof raw === 'string') {
        try {
          value = JSON.parse(raw);
        } catch (e) {
          throw new ConfigError(key, source, `${accepted(spec)} (${(e as Error).message})`);
        }
      }
      const rules = spec.parse(value);
      if ('accepted' in rules) throw new ConfigError(rules.key, source, rules.accepted);
      return rules;
    }
  }
}

export interface ConfigSources {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
}

/**
 * Builds the config from defaults < config file (--config / WSGATE_CONFIG, JSON) < env < flags.
 * Unknown flags and keys are errors too: a typo must not silently run with a default.
 */
export function loadConfig({ argv, env }: ConfigSources): Config {
  const values = Object.fromEntries(configKeys.map((k) => [k, schema[k].def])) as Record<ConfigKey, Config[ConfigKey]>;
  const byFlag = new Map(configKeys.map((k) => [flagName(k), k]));

  const flags: [ConfigKey, string][] = [];
  let file = env.WSGATE_CONFIG;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw new ConfigError(arg, 'command line', 'flags of the form --name value');
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (name === 'config') {
      file = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      continue;
    }
    const key = byFlag.get(name);
    if (key === undefined) throw new ConfigError(`--${name}`, 'command line', `one of --config, ${[...byFlag.keys()].map((f) => '--' + f).join(', ')}`);
    const spec = schema[key];
    if (eq !== -1) flags.push([key, arg.slice(eq + 1)]);
    else if (spec.kind === 'bool' && (argv[i + 1] === undefined || argv[i + 1]?.startsWith('--'))) flags.push([key, 'true']);
    else if (argv[i + 1] === undefined) throw new ConfigError(`--${name}`, 'command line', accepted(spec));
    else flags.push([key, argv[++i] as string]);
  }

  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError('config', file, `a readable JSON file (${(e as Error).message})`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError('config', file, 'a JSON object');
    for (const [k, v] of Object.entries(parsed)) {
      if (!(k in schema)) throw new ConfigError(k, file, `a known key: ${configKeys.join(', ')}`);
      values[k as ConfigKey] = coerce(k as ConfigKey, v, file);
    }
  }
  for (const key of configKeys) {
    const raw = env[envName(key)];
    if (raw !== undefined) values[key] = coerce(key, raw, envName(key));
  }
  for (const [key, raw] of flags) values[key] = coerce(key, raw, `--${flagName(key)}`);

  const config = values as unknown as Config;
  if (config.maxConnections === 0) config.maxConnections = autoMaxConnections(openFilesLimit());
  if (config.drainWindow >= config.drainTimeout) {
    throw new ConfigError('drainWindow', 'config', `less than drainTimeout (${config.drainTimeout} ms)`);
  }
  if ([config.jwtSecret, config.jwtPublicKey, config.jwtJwksUrl].filter((v) => v !== '').length > 1) {
    throw new ConfigError('jwtSecret', 'config', 'at most one of jwtSecret, jwtPublicKey and jwtJwksUrl');
  }
  const tlsFiles = config.brokerTlsCa !== '' || config.brokerTlsCert !== '' || config.brokerTlsKey !== '';
  if (tlsFiles && !/^(tls|rediss):\/\//.test(config.broker)) {
    throw new ConfigError('brokerTlsCa', 'config', 'TLS files only with a TLS broker URL (tls://… for NATS, rediss://… for Redis)');
  }
  if ((config.brokerTlsCert === '') !== (config.brokerTlsKey === '')) {
    throw new ConfigError('brokerTlsCert', 'config', 'brokerTlsCert and brokerTlsKey together');
  }
  if (config.natsJetstream && !/^(nats|tls):\/\//.test(config.broker)) {
    throw new ConfigError('natsJetstream', 'config', 'only with a NATS broker (--broker nats://… or tls://…)');
  }
  if ((config.webhookUrl === '') !== (config.webhookSecret === '')) {
    throw new ConfigError('webhookSecret', 'config', 'webhookUrl and webhookSecret together (every webhook is signed)');
  }
  for (const key of ['brokerTlsCa', 'brokerTlsCert', 'brokerTlsKey'] as const) {
    if (config[key] !== '' && !readable(config[key])) throw new ConfigError(key, config[key], 'a readable PEM file');
  }
  return config;
}

/** `--help` text generated from the schema, so it cannot drift from what is accepted. */
export function usage(): string {
  const rows = configKeys.map((k) => {
    const s = schema[k];
    const def = s.secret ? '(unset)' : JSON.stringify(s.def);
    return `  --${flagName(k).padEnd(28)} ${s.help}\n  ${''.padEnd(30)} ${accepted(s)}; default ${def}; env ${envName(k)}`;
  });
  return ['Options (flags > env > --config JSON file > defaults):', '  --config <file.json>'.padEnd(32) + 'JSON object of the keys below (camelCase)', ...rows, '', ...topicRulesHelp()].join('\n');
}
