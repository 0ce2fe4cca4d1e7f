/**
 * In-process micro-benchmark of the broker receive path: EnvelopeReceiver.receive of a NATS-style
 * envelope (msgpack data) into Hub.deliver with a no-op fan-out, for msgpack subscribers (data framed
 * as received) or JSON subscribers (data converted). JS heap bytes and ns per message.
 */
import { encodeEnvelope } from '../../src/broker/envelope';
import { EnvelopeReceiver } from '../../src/broker/receiver';
import { createLogger } from '../../src/log';
import { FixedHistogram, LATENCY_BOUNDS } from '../../src/metrics/histogram';
import { Stats } from '../../src/metrics/stats';
import type { CodecName } from '../../src/protocol/codec';
import { packr } from '../../src/protocol/msgpack';
import { Hub } from '../../src/pubsub/hub';
import { timeAndAllocation } from '../lib/alloc';
import { benchHubOptions } from './hub';

export interface ReceiverVariant {
  subscribers: number;
  codec: CodecName;
  nsPerPublish: number;
  bytesPerPublish: number;
}

export function runReceiverBenchmark(subscribers: number, codec: CodecName, messages: number): ReceiverVariant {
  const stats = new Stats();
  const hub = new Hub({ publish: () => true }, stats, new FixedHistogram(LATENCY_BOUNDS), benchHubOptions(100));
  for (let i = 0; i < subscribers; i++) hub.addSubscriber('t0', codec);
  const histogram = (): FixedHistogram => new FixedHistogram(LATENCY_BOUNDS);
  const receiver = new EnvelopeReceiver(hub, stats, histogram(), histogram(), () => true, 'this-node', false, createLogger('silent'), 64);
  const envelope = encodeEnvelope('t0', 0, '', Date.now(), 'other-node', 'socket', packr.pack('x'.repeat(64)));
  const loop = (): void => {
    for (let i = 0; i < messages; i++) receiver.receive(envelope);
  };
  const { ns, bytes } = timeAndAllocation(loop); // its warm-up also fills the history ring
  hub.close();
  return { subscribers, codec, nsPerPublish: Math.round(ns / messages), bytesPerPublish: Math.round(bytes / messages) };
}
