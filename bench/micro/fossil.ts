/**
 * The hand-written fossil encoder (src/pubsub/fossil-encoder.ts) beside the fossil-delta package's
 * createDelta it ports, on the delta benchmark's state stream: time and JS heap bytes per delta. Same
 * inputs, same output bytes (test/fossil-encoder.test.ts).
 */
import { createDelta } from 'fossil-delta';
import { FossilEncoder } from '../../src/pubsub/fossil-encoder';
import { timeAndAllocation } from '../lib/alloc';
import { stateChain } from './delta-cost';

export interface FossilCost {
  docBytes: number;
  packageNs: number;
  packageBytes: number;
  encoderNs: number;
  encoderBytes: number;
  deltaBytes: number;
}

export function runFossilBenchmark(docSizes: readonly number[], deltas: number): FossilCost[] {
  return docSizes.map((docBytes) => {
    const docs = stateChain(docBytes, deltas + 1).map((d) => new Uint8Array(Buffer.from(d)));
    const enc = new FossilEncoder();
    let deltaBytes = 0;
    const pkg = timeAndAllocation(() => {
      for (let i = 1; i <= deltas; i++) deltaBytes = createDelta(docs[i - 1] as Uint8Array, docs[i] as Uint8Array).length;
    });
    const own = timeAndAllocation(() => {
      for (let i = 1; i <= deltas; i++) {
        const prev = docs[i - 1] as Uint8Array;
        const next = docs[i] as Uint8Array;
        enc.create(prev, 0, prev.length, next, 0, next.length);
      }
    });
    return {
      docBytes: Buffer.byteLength(Buffer.from(docs[0] as Uint8Array)),
      packageNs: Math.round(pkg.ns / deltas),
      packageBytes: Math.round(pkg.bytes / deltas),
      encoderNs: Math.round(own.ns / deltas),
      encoderBytes: Math.round(own.bytes / deltas),
      deltaBytes,
    };
  });
}
