import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Broker, PublishOutcome } from '../broker/broker';
import type { Config } from '../config/schema';
import type { HttpPublishResult, Stats } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { decodeBounded } from '../protocol/codec';
import { Payload } from '../protocol/payload';
import { PublishReader } from '../protocol/publish-reader';
import { checkTopic } from '../protocol/topic';
import type { Idempotency } from '../idempotency/idempotency';
import { checkIdempotencyKey } from '../protocol/idempotency-key';
import { apiKeyCheck } from './api-key';
import { answerInternalError, contained, type FaultSink } from './contain';
import { type Aborted, readBody, sendError, sendJson, watchAbort } from './http-reply';
import { ResultsWriter } from './results-writer';
import { publishStart } from '../metrics/publish-clock';

interface Item {
  readonly topic: string;
  readonly data: unknown;
  readonly idempotencyKey?: string;
}

type ItemResult = { topic: string; seq: number } | { topic: string; code: string; reason: string };

const STATUS: Record<Exclude<HttpPublishResult, 'ok'>, string> = {
  bad_request: '400 Bad Request',
  unauthorized: '401 Unauthorized',
  too_large: '413 Payload Too Large',
  unsupported_media_type: '415 Unsupported Media Type',
  unavailable: '503 Service Unavailable',
};

/** Whether a body is a batch: a JSON or msgpack array at the top (leading JSON whitespace skipped). */
function isBatch(body: Buffer, msgpack: boolean): boolean {
  let i = 0;
  if (msgpack) {
    const t = body[0] ?? 0;
    return (t & 0xf0) === 0x90 || t === 0xdc || t === 0xdd;
  }
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x09 || body[i] === 0x0a || body[i] === 0x0d)) i++;
  return body[i] === 0x5b;
}

/**
 * Decodes a body whose items' data may nest `maxDepth` levels (an item object is one more, a batch array
 * another); throws on malformed input, returns a GatewayError when it nests deeper.
 */
function decodeBody(body: Buffer, msgpack: boolean, maxDepth: number): unknown {
  return decodeBounded(body, msgpack, maxDepth + (isBatch(body, msgpack) ? 2 : 1), maxDepth);
}

/**
 * JSON is the default: a body without Content-Type, with curl's default for `-d`
 * (application/x-www-form-urlencoded), or with fetch's default for a string body (text/plain), is read
 * as JSON, so `curl -d '{…}'` and `fetch(url, {method: 'POST', body: JSON.stringify(x)})` work as typed.
 */
const readsAsJson = (contentType: string): boolean =>
  contentType === '' ||
  contentType.startsWith('application/json') ||
  contentType.startsWith('application/x-www-form-urlencoded') ||
  contentType.startsWith('text/plain');

/** Validates a decoded body into publish items: all of them before any is published, so one bad item publishes nothing. */
function parseItems(body: unknown, config: Config): Item[] | GatewayError {
  const list = Array.isArray(body) ? body : [body];
  if (list.length === 0 || list.length > config.maxBatch) return new GatewayError(ErrorCode.BadRequest, `a batch holds 1..${config.maxBatch} items`);
  for (let i = 0; i < list.length; i++) {
    const item: unknown = list[i];
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return new GatewayError(ErrorCode.BadRequest, `item ${i}: expected {"topic":…,"data":…}`);
    const { topic, data } = item as Record<string, unknown>;
    const err = checkTopic(topic, config.maxTopicLength);
    if (err !== null) return new GatewayError(err.code, `item ${i}: ${err.reason}`);
    if (data === undefined) return new GatewayError(ErrorCode.BadRequest, `item ${i}: data is required`);
    const key = checkIdempotencyKey((item as Record<string, unknown>).idempotencyKey);
    if (key instanceof GatewayError) return new GatewayError(key.code, `item ${i}: ${key.reason}`);
  }
  return list as Item[];
}

/** POST /publish: how backends push messages to the edge. */
export function publishRoute(config: Config, broker: Broker, idempotency: Idempotency, stats: Stats, fault: FaultSink): (res: HttpResponse, req: HttpRequest) => void {
  const route = new PublishRoute(config, broker, idempotency, stats, fault);
  return (res, req) => route.handle(res, req);
}

/** Per request only the body callback is a new closure: everything here is made once per route. */
class PublishRoute {
  private readonly authorized: (authorization: string) => boolean;
  private readonly payload = new Payload();
  // Plain bodies are read in place: no decode, no item objects; a fully synchronous batch (single node)
  // gets its results written by hand too.
  private readonly reader: PublishReader;
  private readonly seqs: Float64Array;
  private readonly results = new ResultsWriter();
  // The body arrives in a later uWS callback, outside the route's own containment.
  private readonly onBody: (res: HttpResponse, abort: Aborted, startedAt: number, msgpack: boolean, body: Buffer) => void;
  /**
   * The route. Made in the constructor as an arrow function: the per-request closures below then reach
   * `this` through the constructor's context instead of holding it in their own (16 B per request).
   */
  readonly handle: (res: HttpResponse, req: HttpRequest) => void;

  constructor(
    private readonly config: Config,
    private readonly broker: Broker,
    private readonly idempotency: Idempotency,
    private readonly stats: Stats,
    private readonly fault: FaultSink,
  ) {
    this.authorized = apiKeyCheck(config.apiKey);
    this.reader = new PublishReader(config.maxTopicLength, config.maxDepth, config.maxBatch);
    this.seqs = new Float64Array(config.maxBatch);
    this.handle = (res, req) => {
      const startedAt = publishStart();
      const contentType = req.getHeader('content-type');
      const authorization = req.getHeader('authorization');
      const abort = watchAbort(res);
      if (!this.authorized(authorization)) {
        return this.refuse(res, abort, 'unauthorized', new GatewayError(ErrorCode.Unauthorized, 'Authorization: Bearer <api key> required'));
      }
      const msgpack = contentType.startsWith('application/msgpack') || contentType.startsWith('application/x-msgpack');
      if (!msgpack && !readsAsJson(contentType)) {
        return this.refuse(res, abort, 'unsupported_media_type', new GatewayError(ErrorCode.UnsupportedMediaType, 'Content-Type must be application/json (or absent) or application/msgpack'));
      }
      readBody(
        res,
        this.config.maxBody,
        abort,
        (body) => this.onBody(res, abort, startedAt, msgpack, body),
        () => this.refuse(res, abort, 'too_large', new GatewayError(ErrorCode.PayloadTooLarge, `body exceeds ${this.config.maxBody} bytes`)),
      );
    };
    this.onBody = contained('http', fault, (res: HttpResponse, abort: Aborted, startedAt: number, msgpack: boolean, body: Buffer) => this.body(res, abort, startedAt, msgpack, body), (res) => answerInternalError(res));
  }

  private refuse(res: HttpResponse, abort: Aborted, result: Exclude<HttpPublishResult, 'ok'>, error: GatewayError): void {
    this.stats.httpPublish[result]++;
    sendError(res, STATUS[result], error, abort);
  }

  private publishScanned(res: HttpResponse, abort: Aborted, startedAt: number): void {
    const n = this.reader.count;
    let pending: (PublishOutcome | Promise<PublishOutcome>)[] | null = null;
    for (let i = 0; i < n; i++) {
      const outcome = this.broker.publish(this.reader.topic(i), this.reader.data(i), 'http', startedAt);
      if (pending === null && typeof outcome === 'number') this.seqs[i] = outcome;
      else {
        pending ??= Array.from(this.seqs.subarray(0, i));
        pending.push(outcome);
      }
    }
    if (pending === null) {
      this.stats.httpPublish.ok++;
      if (abort.aborted) return;
      const body = this.results.write(this.reader, this.seqs);
      res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', 'application/json').end(body));
      return;
    }
    this.settle(res, abort, Array.from({ length: n }, (_, i) => this.reader.topic(i)), pending);
  }

  private settle(res: HttpResponse, abort: Aborted, topics: readonly string[], outcomes: (PublishOutcome | Promise<PublishOutcome>)[]): void {
    Promise.all(outcomes).then(
      contained('http', this.fault, (settled: PublishOutcome[]) => this.finish(res, abort, topics, settled), () => answerInternalError(res)),
      () => this.refuse(res, abort, 'unavailable', new GatewayError(ErrorCode.Unavailable, 'broker failed')),
    );
  }

  private finish(res: HttpResponse, abort: Aborted, topics: readonly string[], settled: PublishOutcome[]): void {
    const results: ItemResult[] = settled.map((o, i) => {
      const topic = topics[i] as string;
      return typeof o === 'number' ? { topic, seq: o } : { topic, code: o.code, reason: o.reason };
    });
    const failed = settled.some((o) => typeof o !== 'number');
    this.stats.httpPublish[failed ? 'unavailable' : 'ok']++;
    sendJson(res, failed ? STATUS.unavailable : '200 OK', failed ? { code: ErrorCode.Unavailable, reason: 'some items were not published', results } : { results }, abort);
  }

  /** A whole request body: read in place when plain, else decoded and checked item by item. */
  private body(res: HttpResponse, abort: Aborted, startedAt: number, msgpack: boolean, body: Buffer): void {
    // Plain items only (no idempotencyKey, data within --max-depth): anything else is decoded below.
    if (this.reader.httpBody(body, !msgpack)) return this.publishScanned(res, abort, startedAt);
    let decoded: unknown;
    try {
      decoded = decodeBody(body, msgpack, this.config.maxDepth);
    } catch {
      return this.refuse(res, abort, 'bad_request', new GatewayError(ErrorCode.BadFrame, `body is not valid ${msgpack ? 'msgpack' : 'JSON'}`));
    }
    if (decoded instanceof GatewayError) {
      this.stats.tooDeep.http++;
      return this.refuse(res, abort, 'bad_request', decoded);
    }
    const items = parseItems(decoded, this.config);
    if (items instanceof GatewayError) return this.refuse(res, abort, 'bad_request', items);
    const publish = (item: Item) => this.broker.publish(item.topic, this.payload.setValue(item.data, msgpack), 'http', startedAt);
    const outcomes: (PublishOutcome | Promise<PublishOutcome>)[] = items.map((item) =>
      item.idempotencyKey === undefined ? publish(item) : this.idempotency.once(item.topic, item.idempotencyKey, () => publish(item)),
    );
    const topics = items.map((item) => item.topic);
    if (outcomes.some((o) => o instanceof Promise)) this.settle(res, abort, topics, outcomes);
    else this.finish(res, abort, topics, outcomes as PublishOutcome[]);
  }
}
