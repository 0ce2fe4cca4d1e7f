/**
 * In-process micro-benchmark of wsgate's publish path without the network: JSON decode of a client
 * `pub` frame, command validation, and Hub.deliver (encode once, hand the frame to a no-op fan-out
 * standing in for uWS, whose copies live outside the JS heap). It shows JS heap bytes per publish
 * and whether they depend on the subscriber count.
 */
import { jsonCodec } from '../../src/protocol/codec';
import { parseCommand } from '../../src/protocol/commands';
import { Payload } from '../../src/protocol/payload';
import { Hub } from '../../src/pubsub/hub';
import { TopicRules } from '../../src/rules/topic-rules';
import { Stats } from '../../src/metrics/stats';
import { FixedHistogram, LATENCY_BOUNDS } from '../../src/metrics/histogram';
import { allocatedDuring } from '../lib/alloc';
import { writePayload, nowUs } from '../lib/stamp';

export interface HubVariant {
  subscribers: number;
  historySize: number;
  nsPerPublish: number;
  bytesPerPublish: number;
}

export function runHubBenchmark(subscribers: number, historySize: number, publishes: number): HubVariant {
  let fanned = 0;
  const hub = new Hub(
    { publish: () => ++fanned > 0 },
    new Stats(),
    new FixedHistogram(LATENCY_BOUNDS),
    { historyMaxBytes: 64 * 1024 * 1024, rules: new TopicRules([], { size: historySize, ttlMs: 300000 }), positions: { ttlMs: 86_400_000, max: 100_000 } },
  );
  for (let i = 0; i < subscribers; i++) hub.addSubscriber('t0', 'json');
  const data = Buffer.alloc(64);
  writePayload(data, 0, 64, 0, 1, nowUs());
  const frame = new Uint8Array(Buffer.from(`{"op":"pub","topic":"t0","data":"${data.toString('latin1')}"}`)).buffer;
  const payload = new Payload();
  const publishOnce = (): void => {
    const cmd = parseCommand(jsonCodec.decode(frame, 64), 128);
    if ('op' in cmd && cmd.op === 'pub') hub.deliver(cmd.topic, payload.setValue(cmd.data, false), 'socket', performance.now());
  };
  const loop = (): void => {
    for (let i = 0; i < publishes; i++) publishOnce();
  };
  loop(); // warm up the JIT and fill the history ring
  let ns = 0;
  const bytes = allocatedDuring(() => {
    const t0 = process.hrtime.bigint();
    loop();
    ns = Number(process.hrtime.bigint() - t0);
  });
  hub.close();
  if (fanned !== 2 * publishes) throw new Error('hub benchmark: fan-out not called once per publish');
  return { subscribers, historySize, nsPerPublish: Math.round(ns / publishes), bytesPerPublish: Math.round(bytes / publishes) };
}
