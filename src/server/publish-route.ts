import { performance } from 'node:perf_hooks';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Broker, PublishOutcome } from '../broker/broker';
import type { Config } from '../config/schema';
import type { HttpPublishResult, Stats } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { decodeBounded } from '../protocol/codec';
import { Payload } from '../protocol/payload';
import { PublishReader } from '../protocol/publish-reader';
import { checkTopic } from '../protocol/topic';
import { type Idempotency, checkIdempotencyKey } from '../idempotency/idempotency';
import { apiKeyCheck } from './api-key';
import { answerInternalError, contained, type FaultSink } from './contain';
import { type Aborted, readBody, sendError, sendJson, watchAbort } from './http-reply';
import { ResultsWriter } from './results-writer';

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
export function publishRoute(config: Config, broker: Broker, idempotency: Idempotency, stats: Stats, fault: FaultSink) {
  const authorized = apiKeyCheck(config.apiKey);
  const payload = new Payload();
  // Plain bodies are read in place: no decode, no item objects; a fully synchronous batch (single node)
  // gets its results written by hand too.
  const reader = new PublishReader(config.maxTopicLength, config.maxDepth, config.maxBatch);
  const seqs = new Float64Array(config.maxBatch);
  const results = new ResultsWriter();

  // Per request only the body callback is a new closure: everything below is made once per route.
  const refuse = (res: HttpResponse, abort: Aborted, result: Exclude<HttpPublishResult, 'ok'>, error: GatewayError): void => {
    stats.httpPublish[result]++;
    sendError(res, STATUS[result], error, abort);
  };

  const publishScanned = (res: HttpResponse, abort: Aborted, startedAt: number): void => {
    const n = reader.count;
    let pending: (PublishOutcome | Promise<PublishOutcome>)[] | null = null;
    for (let i = 0; i < n; i++) {
      const outcome = broker.publish(reader.topic(i), reader.data(i), 'http', startedAt);
      if (pending === null && typeof outcome === 'number') seqs[i] = outcome;
      else {
        pending ??= Array.from(seqs.subarray(0, i));
        pending.push(outcome);
      }
    }
    if (pending === null) {
      stats.httpPublish.ok++;
      if (abort.aborted) return;
      const body = results.write(reader, seqs);
      res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', 'application/json').end(body));
      return;
    }
    settle(res, abort, Array.from({ length: n }, (_, i) => reader.topic(i)), pending);
  };

  const settle = (res: HttpResponse, abort: Aborted, topics: readonly string[], outcomes: (PublishOutcome | Promise<PublishOutcome>)[]): void => {
    Promise.all(outcomes).then(
      contained('http', fault, (settled: PublishOutcome[]) => finish(res, abort, topics, settled), () => answerInternalError(res)),
      () => refuse(res, abort, 'unavailable', new GatewayError(ErrorCode.Unavailable, 'broker failed')),
    );
  };

  const finish = (res: HttpResponse, abort: Aborted, topics: readonly string[], settled: PublishOutcome[]) => {
    const results: ItemResult[] = settled.map((o, i) => {
      const topic = topics[i] as string;
      return typeof o === 'number' ? { topic, seq: o } : { topic, code: o.code, reason: o.reason };
    });
    const failed = settled.some((o) => typeof o !== 'number');
    stats.httpPublish[failed ? 'unavailable' : 'ok']++;
    sendJson(res, failed ? STATUS.unavailable : '200 OK', failed ? { code: ErrorCode.Unavailable, reason: 'some items were not published', results } : { results }, abort);
  };

  // The body arrives in a later uWS callback, outside the route's own containment.
  const onBody = contained(
    'http',
    fault,
    (res: HttpResponse, abort: Aborted, startedAt: number, msgpack: boolean, body: Buffer): void => {
      // Plain items only (no idempotencyKey, data within --max-depth): anything else is decoded below.
      if (reader.httpBody(body, !msgpack)) return publishScanned(res, abort, startedAt);
      let decoded: unknown;
      try {
        decoded = decodeBody(body, msgpack, config.maxDepth);
      } catch {
        return refuse(res, abort, 'bad_request', new GatewayError(ErrorCode.BadFrame, `body is not valid ${msgpack ? 'msgpack' : 'JSON'}`));
      }
      if (decoded instanceof GatewayError) {
        stats.tooDeep.http++;
        return refuse(res, abort, 'bad_request', decoded);
      }
      const items = parseItems(decoded, config);
      if (items instanceof GatewayError) return refuse(res, abort, 'bad_request', items);
      const publish = (item: Item) => broker.publish(item.topic, payload.setValue(item.data, msgpack), 'http', startedAt);
      const outcomes: (PublishOutcome | Promise<PublishOutcome>)[] = items.map((item) =>
        item.idempotencyKey === undefined ? publish(item) : idempotency.once(item.topic, item.idempotencyKey, () => publish(item)),
      );
      const topics = items.map((item) => item.topic);
      if (outcomes.some((o) => o instanceof Promise)) settle(res, abort, topics, outcomes);
      else finish(res, abort, topics, outcomes as PublishOutcome[]);
    },
    (res) => answerInternalError(res),
  );

  return (res: HttpResponse, req: HttpRequest): void => {
    const startedAt = performance.now();
    const contentType = req.getHeader('content-type');
    const authorization = req.getHeader('authorization');
    const abort = watchAbort(res);
    if (!authorized(authorization)) {
      return refuse(res, abort, 'unauthorized', new GatewayError(ErrorCode.Unauthorized, 'Authorization: Bearer <api key> required'));
    }
    const msgpack = contentType.startsWith('application/msgpack') || contentType.startsWith('application/x-msgpack');
    if (!msgpack && !readsAsJson(contentType)) {
      return refuse(res, abort, 'unsupported_media_type', new GatewayError(ErrorCode.UnsupportedMediaType, 'Content-Type must be application/json (or absent) or application/msgpack'));
    }
    readBody(
      res,
      config.maxBody,
      abort,
      (body) => onBody(res, abort, startedAt, msgpack, body),
      () => refuse(res, abort, 'too_large', new GatewayError(ErrorCode.PayloadTooLarge, `body exceeds ${config.maxBody} bytes`)),
    );
  };
}
