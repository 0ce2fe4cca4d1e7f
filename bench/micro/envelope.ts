/**
 * Why the broker envelope writes its short ASCII strings (topic, epoch, node id, source) char by char
 * (src/broker/envelope.ts writeAscii): `Buffer.write(s, p, 'latin1')` is a call into C++ per string,
 * which costs more than the bytes. `node dist/bench/micro/envelope.js [iterations]` times, per envelope
 * of the four strings a worker sends with every message, the two ways of writing them, and the whole
 * writeEnvelope (which uses the loop below 64 chars). Same strings, interleaved rounds, best round.
 */
import { performance } from 'node:perf_hooks';
import { writeEnvelope } from '../../src/broker/envelope';
import { Payload } from '../../src/protocol/payload';

const STRINGS = ['prices.eur-usd', '', 'wsgate-7f3a9c21-0', 'socket'];

/** ns per call of `fn` over one round of `iterations`. */
function round(iterations: number, fn: (i: number) => void): number {
  const t = performance.now();
  for (let i = 0; i < iterations; i++) fn(i);
  return Math.round(((performance.now() - t) * 1e7) / iterations) / 10;
}

export function runEnvelopeBenchmark(iterations: number): { bufferWriteNs: number; charLoopNs: number; writeEnvelopeNs: number } {
  const b = Buffer.allocUnsafe(4096);
  const bufferWrite = (i: number): void => {
    let p = i & 7;
    for (const s of STRINGS) p += b.write(s, p, 'latin1') + 1;
  };
  const charLoop = (i: number): void => {
    let p = i & 7;
    for (const s of STRINGS) {
      for (let k = 0; k < s.length; k++) b[p + k] = s.charCodeAt(k);
      p += s.length + 1;
    }
  };
  const data = Buffer.from(JSON.stringify('x'.repeat(64)));
  const payload = new Payload().setRaw(data, 0, data.length, true);
  const envelope = (i: number): void => {
    writeEnvelope(b, STRINGS[0] as string, i, STRINGS[1] as string, 1.7e12, STRINGS[2] as string, 'socket', payload);
  };
  for (const fn of [bufferWrite, charLoop, envelope]) round(iterations, fn);
  const out = { bufferWriteNs: Infinity, charLoopNs: Infinity, writeEnvelopeNs: Infinity };
  for (let r = 0; r < 3; r++) {
    out.bufferWriteNs = Math.min(out.bufferWriteNs, round(iterations, bufferWrite));
    out.charLoopNs = Math.min(out.charLoopNs, round(iterations, charLoop));
    out.writeEnvelopeNs = Math.min(out.writeEnvelopeNs, round(iterations, envelope));
  }
  return out;
}

if (require.main === module) console.table([runEnvelopeBenchmark(Number(process.argv[2] ?? 2_000_000))]);
