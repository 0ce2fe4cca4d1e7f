/**
 * In-process micro-benchmark of wsgate's publish path without the network: a client `pub` frame read in
 * place (PublishReader: scan, interned topic, data bytes) or decoded the general way (codec decode +
 * parseCommand), then Hub.deliver (encode once, hand the frame to a no-op fan-out standing in for uWS,
 * whose copies live outside the JS heap). It shows JS heap bytes per publish and whether they depend on
 * the subscriber count.
 */
import { type CodecName, jsonCodec, msgpackCodec } from '../../src/protocol/codec';
import { parseCommand } from '../../src/protocol/commands';
import { packr } from '../../src/protocol/msgpack';
import { Payload } from '../../src/protocol/payload';
import { PublishReader } from '../../src/protocol/publish-reader';
import { Hub, type HubOptions } from '../../src/pubsub/hub';
import { TopicRules, type TopicRuleConfig } from '../../src/rules/topic-rules';
import { Stats } from '../../src/metrics/stats';
import { FixedHistogram, LATENCY_BOUNDS } from '../../src/metrics/histogram';
import { timeAndAllocation } from '../lib/alloc';
import { writePayload, nowUs } from '../lib/stamp';

export interface HubVariant {
  subscribers: number;
  historySize: number;
  codec: CodecName;
  /** `scan`: the socket's plain-publish path; `decode`: the general path (any command). */
  path: 'scan' | 'decode';
  nsPerPublish: number;
  bytesPerPublish: number;
}

/** Hub options for the in-process benchmarks: topics keep `historySize` messages unless one of `rules` says otherwise. */
export const benchHubOptions = (historySize: number, rules: readonly TopicRuleConfig[] = []): HubOptions => ({
  historyMaxBytes: 64 * 1024 * 1024,
  rules: new TopicRules(rules, { size: historySize, ttlMs: 300000 }),
  positions: { ttlMs: 86_400_000, max: 100_000 },
});

/** A `pub` frame with a 64-byte stamped string as data, as the generator sends it. */
function pubFrame(codec: CodecName): ArrayBuffer {
  const data = Buffer.alloc(64);
  writePayload(data, 0, 64, 0, 1, nowUs());
  const text = data.toString('latin1');
  const bytes = codec === 'json' ? Buffer.from(JSON.stringify({ op: 'pub', topic: 't0', data: text })) : Buffer.from(packr.pack({ op: 'pub', topic: 't0', data: text }));
  return new Uint8Array(bytes).buffer;
}

/** `rules`: topic rules configured on the hub (the benchmark publishes to topic "t0"). */
export function runHubBenchmark(subscribers: number, historySize: number, publishes: number, codec: CodecName = 'json', path: 'scan' | 'decode' = 'scan', rules: readonly TopicRuleConfig[] = []): HubVariant {
  let fanned = 0;
  const hub = new Hub(
    { publish: () => ++fanned > 0 },
    new Stats(),
    new FixedHistogram(LATENCY_BOUNDS),
    benchHubOptions(historySize, rules),
  );
  for (let i = 0; i < subscribers; i++) hub.addSubscriber('t0', codec);
  const frame = pubFrame(codec);
  const json = codec === 'json';
  const reader = new PublishReader(128, 64);
  const payload = new Payload();
  const publishOnce =
    path === 'scan'
      ? (): void => {
          // As socket-behavior's message(): a view of uWS's ArrayBuffer, then the scan.
          if (reader.socketPub(Buffer.from(frame), json)) hub.deliver(reader.topic(0), reader.data(0), 'socket', performance.now());
        }
      : (): void => {
          const cmd = parseCommand((json ? jsonCodec : msgpackCodec).decode(Buffer.from(frame), 64, false), 128);
          if ('op' in cmd && cmd.op === 'pub') hub.deliver(cmd.topic, payload.setValue(cmd.data, !json), 'socket', performance.now());
        };
  const loop = (): void => {
    for (let i = 0; i < publishes; i++) publishOnce();
  };
  const { ns, bytes } = timeAndAllocation(loop); // its warm-up also fills the history ring
  hub.close();
  if (fanned !== 2 * publishes) throw new Error('hub benchmark: fan-out not called once per publish');
  return { subscribers, historySize, codec, path, nsPerPublish: Math.round(ns / publishes), bytesPerPublish: Math.round(bytes / publishes) };
}
