import { performance } from 'node:perf_hooks';
import type { Agent } from 'undici';
import { undici } from '../optional-deps';
import type { FixedHistogram } from '../metrics/histogram';
import type { ProxyKind, ProxyResult, Stats } from '../metrics/stats';

/** The application's answer to a proxy call: an HTTP status and its JSON body. */
export interface ProxyAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** Why a proxy call produced no usable answer (timeout, connection failure, 5xx, unreadable body, overload). */
export class ProxyFailure {
  constructor(
    readonly result: Extract<ProxyResult, 'timeout' | 'error' | 'overloaded'>,
    readonly reason: string,
  ) {}
}

export interface ProxyLimits {
  /** ms one call may take, connection and body included. */
  readonly timeoutMs: number;
  /** Calls in flight across every proxy kind; more fail at once. */
  readonly maxInflight: number;
}

// An answer carries grants and a little info, never a document: larger bodies are unreadable answers.
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * POSTs JSON to the application over a keep-alive pool and reads its JSON answer, every call bounded in
 * time, in answer size and in number in flight. Counts calls, results and durations per proxy kind.
 */
export class ProxyClient {
  private readonly agent: Agent;
  private inflight = 0;

  constructor(
    private readonly limits: ProxyLimits,
    private readonly stats: Stats,
    private readonly durations: Readonly<Record<ProxyKind, FixedHistogram>>,
  ) {
    this.agent = new (undici().Agent)({ keepAliveTimeout: 30_000, connections: Math.min(limits.maxInflight, 256), connectTimeout: limits.timeoutMs });
  }

  /**
   * Calls `url` with `body`. Resolves (never rejects) with the answer, or a ProxyFailure. 5xx is a
   * failure; other statuses are the application's answer for the caller to interpret.
   */
  async call(kind: ProxyKind, url: string, body: unknown): Promise<ProxyAnswer | ProxyFailure> {
    const counts = this.stats.proxy[kind];
    if (this.inflight >= this.limits.maxInflight) {
      counts.overloaded++;
      return new ProxyFailure('overloaded', `more than ${this.limits.maxInflight} application calls in flight`);
    }
    this.inflight++;
    const started = performance.now();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.limits.timeoutMs);
    let outcome: ProxyAnswer | ProxyFailure;
    try {
      outcome = await this.post(url, body, abort.signal);
    } catch (e) {
      outcome = abort.signal.aborted
        ? new ProxyFailure('timeout', `no answer within ${this.limits.timeoutMs} ms`)
        : new ProxyFailure('error', `application unreachable: ${(e as { code?: string }).code ?? (e as Error).message}`);
    } finally {
      clearTimeout(timer);
      this.inflight--;
    }
    this.durations[kind].observe((performance.now() - started) / 1000);
    if (outcome instanceof ProxyFailure) counts[outcome.result]++;
    return outcome;
  }

  private async post(url: string, body: unknown, signal: AbortSignal): Promise<ProxyAnswer | ProxyFailure> {
    const res = await undici().request(url, {
      method: 'POST',
      dispatcher: this.agent,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });
    if (res.statusCode >= 500) {
      await res.body.dump();
      return new ProxyFailure('error', `application answered ${res.statusCode}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) {
        res.body.destroy();
        return new ProxyFailure('error', `answer larger than ${MAX_ANSWER_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (text === '') return { status: res.statusCode, body: undefined };
    try {
      return { status: res.statusCode, body: JSON.parse(text) as unknown };
    } catch {
      return new ProxyFailure('error', `answer ${res.statusCode} is not JSON`);
    }
  }

  /** Counts an answer the caller interpreted (the failure results are counted by call()). */
  count(kind: ProxyKind, result: Extract<ProxyResult, 'allowed' | 'denied' | 'error'>): void {
    this.stats.proxy[kind][result]++;
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}
