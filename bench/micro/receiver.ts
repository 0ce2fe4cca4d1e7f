/**
 * In-process micro-benchmark of the broker receive path: EnvelopeReceiver.receive of a NATS-style
 * envelope (JSON or msgpack data, as published) into Hub.deliver with a no-op fan-out, for subscribers
 * of the same format (data copied into the frame as received) or of the other (data converted). JS heap
 * bytes and ns per message.
 */
import { encodeEnvelope } from '../../src/broker/envelope';
import { EnvelopeReceiver } from '../../src/broker/receiver';
import { createLogger } from '../../src/log';
import { FixedHistogram, LATENCY_BOUNDS } from '../../src/metrics/histogram';
import { Stats } from '../../src/metrics/stats';
import type { CodecName } from '../../src/protocol/codec';
import { packr } from '../../src/protocol/msgpack';
import { Payload } from '../../src/protocol/payload';
import { Hub } from '../../src/pubsub/hub';
import { timeAndAllocation } from '../lib/alloc';
import { benchHubOptions } from './hub';

export interface ReceiverVariant {
  subscribers: number;
  /** The data's format in the envelope. */
  data: CodecName;
  codec: CodecName;
  nsPerPublish: number;
  bytesPerPublish: number;
}

export function runReceiverBenchmark(subscribers: number, data: CodecName, codec: CodecName, messages: number): ReceiverVariant {
  const stats = new Stats();
  const hub = new Hub({ publish: () => true }, stats, new FixedHistogram(LATENCY_BOUNDS), benchHubOptions(100));
  for (let i = 0; i < subscribers; i++) hub.addSubscriber('t0', codec);
  const histogram = (): FixedHistogram => new FixedHistogram(LATENCY_BOUNDS);
  const receiver = new EnvelopeReceiver(hub, stats, histogram(), histogram(), () => true, 'this-node', false, createLogger('silent'), 64);
  const value = 'x'.repeat(64);
  const bytes = data === 'json' ? Buffer.from(JSON.stringify(value)) : Buffer.from(packr.pack(value));
  const envelope = encodeEnvelope('t0', 0, '', Date.now(), 'other-node', 'socket', new Payload().setRaw(bytes, 0, bytes.length, data === 'json'));
  const loop = (): void => {
    for (let i = 0; i < messages; i++) receiver.receive(envelope);
  };
  const measured = timeAndAllocation(loop); // its warm-up also fills the history ring
  hub.close();
  return { subscribers, data, codec, nsPerPublish: Math.round(measured.ns / messages), bytesPerPublish: Math.round(measured.bytes / messages) };
}
