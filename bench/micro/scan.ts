/**
 * The publish scanner (src/protocol/command-scan.ts) against what it replaces, on the same frames:
 * JSON.parse of the UTF-8-decoded text and msgpackr's unpack, each followed by parseCommand. Time and JS
 * heap bytes per frame, for a small `pub` (64-byte string data), a 1 KB nested object and a 16 KB array.
 */
import { type CodecName, jsonCodec, msgpackCodec } from '../../src/protocol/codec';
import { parseCommand } from '../../src/protocol/commands';
import { packr } from '../../src/protocol/msgpack';
import { PublishScan } from '../../src/protocol/command-scan';
import { timeAndAllocation } from '../lib/alloc';

/** The --max-depth default, which the gateway's reader uses unless configured otherwise. */
const MAX_DEPTH = 64;

export interface ScanVariant {
  frame: string;
  codec: CodecName;
  bytes: number;
  scanNs: number;
  scanBytes: number;
  decodeNs: number;
  decodeBytes: number;
}

function sampleData(kind: string): unknown {
  if (kind === 'small') return 'x'.repeat(64);
  if (kind === 'object-1k') {
    return { user: { id: 12345, name: 'Zoë "quoted" \\ name', tags: ['a', 'b', 'ç'] }, items: Array.from({ length: 12 }, (_, i) => ({ id: i, price: i * 1.25, ok: i % 2 === 0, note: null })) };
  }
  return Array.from({ length: 800 }, (_, i) => ({ i, v: i / 7 }));
}

function timed(iterations: number, fn: () => void): { ns: number; bytes: number } {
  const { ns, bytes } = timeAndAllocation(() => {
    for (let i = 0; i < iterations; i++) fn();
  });
  return { ns: Math.round((ns / iterations) * 10) / 10, bytes: Math.round((bytes / iterations) * 10) / 10 };
}

export function runScanBenchmark(iterations: number): ScanVariant[] {
  const out: ScanVariant[] = [];
  const scan = new PublishScan(128, MAX_DEPTH);
  for (const frame of ['small', 'object-1k', 'array-16k']) {
    for (const codec of ['json', 'msgpack'] as const) {
      const cmd = { op: 'pub', topic: 'news', data: sampleData(frame), id: 7 };
      const buf = codec === 'json' ? Buffer.from(JSON.stringify(cmd)) : Buffer.from(packr.pack(cmd));
      const ab = new Uint8Array(buf).buffer;
      const decoder = codec === 'json' ? jsonCodec : msgpackCodec;
      const n = Math.max(100, Math.round((iterations * 64) / buf.length));
      const s = timed(n, () => {
        if (!scan.socketPub(buf, buf.length, codec === 'json')) throw new Error('scan benchmark: frame not taken');
      });
      const d = timed(n, () => {
        parseCommand(decoder.decode(new Uint8Array(ab), MAX_DEPTH, false), 128);
      });
      out.push({ frame, codec, bytes: buf.length, scanNs: s.ns, scanBytes: s.bytes, decodeNs: d.ns, decodeBytes: d.bytes });
    }
  }
  return out;
}
