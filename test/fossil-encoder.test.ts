import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { applyDelta, createDelta } from 'fossil-delta';
import { FossilEncoder } from '../src/pubsub/fossil-encoder';

/** A target made from the source by a few edits (what deltas are for), or unrelated bytes. */
const pair = fc.oneof(
  fc.tuple(fc.uint8Array({ maxLength: 4000 }), fc.uint8Array({ maxLength: 4000 })),
  fc
    .tuple(fc.uint8Array({ minLength: 0, maxLength: 6000 }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 40 }), fc.uint8Array({ maxLength: 30 })), { maxLength: 6 }))
    .map(([source, edits]) => {
      let t = Buffer.from(source);
      for (const [at, cut, insert] of edits) {
        const p = t.length === 0 ? 0 : at % t.length;
        t = Buffer.concat([t.subarray(0, p), Buffer.from(insert), t.subarray(Math.min(t.length, p + cut))]);
      }
      return [source, new Uint8Array(t)] as [Uint8Array, Uint8Array];
    }),
);

describe('FossilEncoder (the fossil-delta package ported to reused buffers)', () => {
  it('writes exactly what fossil-delta createDelta writes, for targets inside larger buffers, and applyDelta rebuilds them', () => {
    const enc = new FossilEncoder();
    fc.assert(
      fc.property(pair, fc.nat({ max: 20 }), fc.nat({ max: 20 }), ([source, target], padBefore, padAfter) => {
        // The encoder reads source and target inside larger buffers (frames), as the hub hands them.
        const src = new Uint8Array(padAfter + source.length + 7);
        src.set(source, padAfter);
        const framed = new Uint8Array(padBefore + target.length + padAfter).fill(0x7b);
        framed.set(target, padBefore);
        const ours = Buffer.from(enc.bytes.subarray(0, enc.create(src, padAfter, padAfter + source.length, framed, padBefore, padBefore + target.length)));
        const theirs = Buffer.from(createDelta(source, target));
        assert.ok(ours.equals(theirs), 'same delta bytes as the package');
        assert.ok(Buffer.from(applyDelta(source, new Uint8Array(ours))).equals(Buffer.from(target)));
      }),
      { numRuns: 1000 },
    );
  });

  it('matches on JSON documents with a few changed fields', () => {
    const enc = new FossilEncoder();
    const doc: Record<string, unknown> = {};
    for (let i = 0; i < 500; i++) doc[`k${i}`] = { px: i * 0.5, name: `item ${i} – ✓` };
    let prev = Buffer.from(JSON.stringify(doc));
    for (let n = 0; n < 200; n++) {
      doc[`k${(n * 37) % 500}`] = { px: n, name: `changed ${n} 東京` };
      const next = Buffer.from(JSON.stringify(doc));
      const ours = Buffer.from(enc.bytes.subarray(0, enc.create(prev, 0, prev.length, next, 0, next.length)));
      assert.ok(ours.equals(Buffer.from(createDelta(new Uint8Array(prev), new Uint8Array(next)))));
      assert.ok(ours.length < 200, `a small delta (${ours.length} B)`);
      prev = next;
    }
  });
});
