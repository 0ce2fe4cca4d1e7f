import { TopicPatterns } from '../auth/topic-patterns';
import { checkTopic } from '../protocol/topic';

/** How one rule option is read from the config and explained in `--help`. */
interface OptionSpec<T> {
  readonly help: string;
  /** What the option accepts, for error messages and help. */
  readonly accepted: string;
  readonly def: T;
  /** The value, or undefined when `raw` is not acceptable. */
  read(raw: unknown): T | undefined;
}

/** Per-rule history bounds; null on a rule means the global --history-size / --history-ttl. */
export interface HistoryOption {
  readonly size: number;
  /** Seconds. */
  readonly ttl: number;
}

const bool = (help: string): OptionSpec<boolean> => ({ help, accepted: 'true or false', def: false, read: (v) => (typeof v === 'boolean' ? v : undefined) });

const int = (help: string, def: number, min: number, max: number): OptionSpec<number> => ({
  help,
  accepted: `an integer ${min}..${max}`,
  def,
  read: (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max ? v : undefined),
});

const oneOf = <T extends string>(help: string, values: readonly T[]): OptionSpec<T> => ({
  help,
  accepted: `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`,
  def: values[0] as T,
  read: (v) => (values.includes(v as T) ? (v as T) : undefined),
});

const MAX_HISTORY_SIZE = 1_000_000;
const MAX_HISTORY_TTL = 86_400 * 7;

/**
 * Every option a rule may set, its default and bounds. Adding a feature switch is one entry here:
 * the TopicRule type, validation and `--help` follow from it.
 */
export const ruleOptions = {
  presence: bool('each subscription is listed in presence (op presence / presence_stats, GET /topics/<t>/presence)'),
  joinLeave: bool('subscribers receive {"op":"join"} / {"op":"leave"} when others subscribe or leave (n members joining cost n² events)'),
  presenceBy: oneOf('"client": every connection is a member; "user": a user counts once, joins on its first connection and leaves after its last (after presenceGrace)', ['client', 'user'] as const),
  presenceGrace: int('ms a user\'s departure waits (presenceBy "user") so a quick reconnect sends neither leave nor join', 5000, 0, 600_000),
  maxPresence: int('members listed per topic; later members are served but not listed (stats say so)', 1000, 1, 1_000_000),
  lastMessage: bool('a sub without since is answered with the topic\'s latest message'),
  delta: bool('subscribers may ask for fossil deltas ({"op":"sub","delta":"fossil"}): computed once per publish, full data every --delta-full-every deliveries'),
  subscribeProxy: bool('a sub takes effect only once the application allows it (--subscribe-proxy-url)'),
  publishProxy: bool('a client pub is published only once the application allows it, possibly with its replacement data (--publish-proxy-url)'),
  webhookPublish: bool('client publishes are sent to the application as client_publish webhooks (--webhook-url)'),
  history: {
    help: 'messages kept for recovery and the history op: {"size":<entries>,"ttl":<seconds>} (default: --history-size / --history-ttl)',
    accepted: `{"size": 0..${MAX_HISTORY_SIZE}, "ttl": 1..${MAX_HISTORY_TTL}}`,
    def: null,
    read: (v: unknown): HistoryOption | null | undefined => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
      const { size, ttl, ...rest } = v as Record<string, unknown>;
      const ok = (n: unknown, min: number, max: number) => typeof n === 'number' && Number.isSafeInteger(n) && n >= min && n <= max;
      if (Object.keys(rest).length > 0 || !ok(size, 0, MAX_HISTORY_SIZE) || !ok(ttl, 1, MAX_HISTORY_TTL)) return undefined;
      return { size: size as number, ttl: ttl as number };
    },
  } satisfies OptionSpec<HistoryOption | null>,
} as const;

type RuleOptions = { readonly [K in keyof typeof ruleOptions]: Exclude<ReturnType<(typeof ruleOptions)[K]['read']>, undefined> };
type OptionName = keyof RuleOptions;
const optionNames = Object.keys(ruleOptions) as OptionName[];

/** One rule as configured: its pattern and every option (defaults filled in). */
export type TopicRuleConfig = { readonly match: string } & RuleOptions;

/** What a topic resolves to: its rule's options with history bounds made concrete. */
export interface TopicRule extends RuleOptions {
  /** The rule's index in the config, -1 for topics matching no rule. */
  readonly index: number;
  readonly match: string;
  readonly historyLimits: { readonly size: number; readonly ttlMs: number };
  /** Subscriptions are tracked as members (presence or join/leave): the only check a plain topic pays on subscribe. */
  readonly members: boolean;
}

/** A rule that cannot be accepted: which one, which key, what it accepts. */
export interface RuleProblem {
  readonly key: string;
  readonly accepted: string;
}

const PATTERN_ACCEPTED = 'a topic pattern: an exact topic, a prefix ending in * (chat.*), or * alone';

function validPattern(p: unknown): p is string {
  if (typeof p !== 'string') return false;
  if (p === '*') return true;
  const body = p.endsWith('*') ? p.slice(0, -1) : p;
  return checkTopic(body, 255) === null;
}

/** Validates the `topics` config value (already JSON-decoded) into rules, or names the first problem. */
export function parseTopicRules(raw: unknown): TopicRuleConfig[] | RuleProblem {
  if (!Array.isArray(raw)) return { key: 'topics', accepted: 'a JSON array of rules like [{"match":"chat.*","presence":true}]' };
  if (raw.length > 1000) return { key: 'topics', accepted: 'at most 1000 rules' };
  const rules: TopicRuleConfig[] = [];
  for (let i = 0; i < raw.length; i++) {
    const r: unknown = raw[i];
    const at = (key: string) => `topics[${i}]${key === '' ? '' : '.' + key}`;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return { key: at(''), accepted: 'an object with "match" and options' };
    const fields = r as Record<string, unknown>;
    if (!validPattern(fields.match)) return { key: at('match'), accepted: PATTERN_ACCEPTED };
    const rule: Record<string, unknown> = { match: fields.match };
    for (const name of optionNames) {
      const spec: OptionSpec<unknown> = ruleOptions[name];
      const value = name in fields ? spec.read(fields[name]) : spec.def;
      if (value === undefined) return { key: at(name), accepted: spec.accepted };
      rule[name] = value;
    }
    const unknown = Object.keys(fields).find((k) => k !== 'match' && !(k in ruleOptions));
    if (unknown !== undefined) return { key: at(unknown), accepted: `a known rule key: match, ${optionNames.join(', ')}` };
    rules.push(rule as TopicRuleConfig);
  }
  return rules;
}

/** `--help` lines for the rule options, generated from ruleOptions so they cannot drift. */
export function topicRulesHelp(): string[] {
  return [
    '  Topic rule keys (--topics / WSGATE_TOPICS / "topics" in --config; first matching rule wins):',
    `    ${'match'.padEnd(16)} ${PATTERN_ACCEPTED} (required)`,
    ...optionNames.map((n) => {
      const s: OptionSpec<unknown> = ruleOptions[n];
      return `    ${n.padEnd(16)} ${s.help}\n    ${''.padEnd(16)} ${s.accepted}; default ${JSON.stringify(s.def)}`;
    }),
  ];
}

/**
 * The configured rules, matched in order. A topic is resolved once, when the node creates its state
 * (the rule is kept on the TopicState), so messages never pay for matching.
 */
export class TopicRules {
  /** Topics matching no rule: every feature off, the global history bounds. */
  readonly plain: TopicRule;
  private readonly rules: readonly { readonly patterns: TopicPatterns; readonly rule: TopicRule }[];

  constructor(configured: readonly TopicRuleConfig[], globalHistory: { readonly size: number; readonly ttlMs: number }) {
    const resolve = (c: TopicRuleConfig, index: number): TopicRule => ({
      ...c,
      index,
      historyLimits: c.history === null ? globalHistory : { size: c.history.size, ttlMs: c.history.ttl * 1000 },
      members: c.presence || c.joinLeave,
    });
    const defaults = Object.fromEntries(optionNames.map((n) => [n, ruleOptions[n].def])) as RuleOptions;
    this.plain = resolve({ match: '', ...defaults }, -1);
    this.rules = configured.map((c, i) => ({ patterns: new TopicPatterns([c.match]), rule: resolve(c, i) }));
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  resolve(topic: string): TopicRule {
    for (const r of this.rules) if (r.patterns.allows(topic)) return r.rule;
    return this.plain;
  }

  /** The largest history size of any topic (what a cluster-wide store must keep per topic). */
  get maxHistorySize(): number {
    return Math.max(this.plain.historyLimits.size, ...this.rules.map((r) => r.rule.historyLimits.size));
  }

  /** Whether any topic may retain messages (history or a latest message): the hub sweeps them only then. */
  get anyRetention(): boolean {
    return this.plain.historyLimits.size > 0 || this.rules.some((r) => r.rule.historyLimits.size > 0 || r.rule.lastMessage);
  }
}
