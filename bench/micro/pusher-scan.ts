/**
 * The Pusher door's in-place scanners (src/pusher/event-scan.ts) against the general path they replace,
 * on the same bytes, in-process: time and JS heap bytes per client event.
 *
 * - receive: ClientEventScan.frame against decodeBounded + parseClientFrame (the depth walk, the UTF-8
 *   decode and JSON.parse of the whole frame) on a `client-*` frame as the bench's publishers send it.
 * - frame: PusherWire.deliver of the event's publish data as span copies (bytes to uWS), with the spans
 *   known (the door's own client events: PusherChannels wrote the data) and found by EventDataScan (the
 *   same data from a broker), against the same data as the decoded value the general path publishes (pusherEventOf
 *   + frames.event's JSON.stringify, a string uWS must still convert to UTF-8: not counted here).
 *   uWS is left out: the fan-out callback only counts.
 *
 *   node dist/bench/micro/pusher-scan.js [iterations=200000]
 */
import { decodeBounded } from '../../src/protocol/codec';
import { Payload } from '../../src/protocol/payload';
import { TopicState } from '../../src/pubsub/topic-state';
import { PusherApps } from '../../src/pusher/apps';
import type { PusherSockets } from '../../src/pusher/connection';
import { ClientEventScan, E_DATA, E_EVENT, E_SOCKET } from '../../src/pusher/event-scan';
import { parseClientFrame } from '../../src/pusher/frames';
import { PusherWire } from '../../src/pusher/pusher-wire';
import type { TopicRule } from '../../src/rules/topic-rules';
import { timeAndAllocation } from '../lib/alloc';

const MAX_DEPTH = 64;
const CHANNEL = 'private-t123';
const SOCKET_ID = '123456789.42';

function timed(iterations: number, fn: () => void): { ns: number; bytes: number } {
  const { ns, bytes } = timeAndAllocation(() => {
    for (let i = 0; i < iterations; i++) fn();
  });
  return { ns: Math.round((ns / iterations) * 10) / 10, bytes: Math.round((bytes / iterations) * 10) / 10 };
}

const samples: Record<string, string> = {
  'ascii-64': 'x'.repeat(64),
  'ascii-256': '~' + 'A0b1'.repeat(63) + 'xyz', // the bench's stamp + padding, 256 B
  'unicode-256': 'é中😀 '.repeat(25) + '\\"q"',
};

function receive(iterations: number, data: string): { scan: { ns: number; bytes: number }; decode: { ns: number; bytes: number } } {
  const frame = Buffer.from(JSON.stringify({ event: 'client-b', channel: CHANNEL, data }));
  const scanner = new ClientEventScan();
  const scan = timed(iterations, () => {
    if (!scanner.frame(frame, frame.length)) throw new Error('pusher-scan benchmark: frame not taken');
  });
  const decode = timed(iterations, () => {
    const f = parseClientFrame(decodeBounded(frame, false, MAX_DEPTH + 2, MAX_DEPTH));
    if (f === null || typeof f.data !== 'string') throw new Error('pusher-scan benchmark: frame not decoded');
  });
  return { scan, decode };
}

type Cost = { ns: number; bytes: number };

function frameForSubscribers(iterations: number, data: string): { known: Cost; scan: Cost; decode: Cost; parse: Cost; bytes: number } {
  let sent = 0;
  const wire = new PusherWire(new PusherApps([{ id: '1', key: 'k', secret: 's' }]), new Map() as PusherSockets, (_key, frame) => {
    sent += frame.length;
    return true;
  });
  const state = new TopicState(CHANNEL, 'e', null, { delta: false } as unknown as TopicRule);
  const value = { event: 'client-b', data, socket_id: SOCKET_ID };
  const raw = Buffer.from(JSON.stringify(value));
  const payload = new Payload();
  // The door's own path: PusherChannels wrote the data and told the wire where its fields are.
  const e0 = 9;
  const e1 = e0 + JSON.stringify(value.event).length;
  const d0 = e1 + 8;
  const d1 = d0 + Buffer.byteLength(JSON.stringify(data));
  const s0 = d1 + 13;
  const known = timed(iterations, () => {
    const f = wire.expectEvent(raw, raw.length);
    f.start[E_EVENT] = e0;
    f.end[E_EVENT] = e1;
    f.start[E_DATA] = d0;
    f.end[E_DATA] = d1;
    f.start[E_SOCKET] = s0;
    f.end[E_SOCKET] = s0 + SOCKET_ID.length + 2;
    wire.deliver(state, payload.setRaw(raw, 0, raw.length, true));
  });
  const bytes = sent / (iterations * 2); // two loops: the warm-up and the measured one
  // Data from a broker: the same bytes, walked by EventDataScan.
  const scan = timed(iterations, () => {
    wire.deliver(state, payload.setRaw(raw, 0, raw.length, true));
  });
  const decode = timed(iterations, () => {
    wire.deliver(state, payload.setValue(value, false));
  });
  // What the general path did with a broker's bytes: the payload decoded them (Payload#data) first.
  const parse = timed(iterations, () => {
    wire.deliver(state, payload.setValue(JSON.parse(raw.toString('utf8')), false));
  });
  return { known, scan, decode, parse, bytes: Math.round(bytes) };
}

function main(): void {
  const iterations = Number(process.argv[2] ?? 200_000);
  const rows: string[] = ['| data | step | scanned ns | scanned B | general ns | general B | ratio |', '|---|---|---:|---:|---:|---:|---:|'];
  for (const [name, data] of Object.entries(samples)) {
    const r = receive(iterations, data);
    rows.push(`| ${name} | receive | ${r.scan.ns} | ${r.scan.bytes} | ${r.decode.ns} | ${r.decode.bytes} | ${(r.decode.ns / r.scan.ns).toFixed(2)}× |`);
    const f = frameForSubscribers(iterations, data);
    rows.push(`| ${name} | frame (${f.bytes} B), spans known | ${f.known.ns} | ${f.known.bytes} | ${f.decode.ns} | ${f.decode.bytes} | ${(f.decode.ns / f.known.ns).toFixed(2)}× |`);
    rows.push(`| ${name} | frame, data from a broker | ${f.scan.ns} | ${f.scan.bytes} | ${f.parse.ns} | ${f.parse.bytes} | ${(f.parse.ns / f.scan.ns).toFixed(2)}× |`);
  }
  console.log(rows.join('\n'));
}

main();
