import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PrototypeWatch } from '../src/metrics/prototype-watch';

// The fuzzer's "Object.prototype stays clean" check reads this watch through /metrics
// (wsgate_prototype_changes); here it is shown to notice each kind of pollution and its undoing.
describe('PrototypeWatch', () => {
  it('counts properties added, replaced and removed on Object.prototype and Array.prototype', () => {
    const watch = new PrototypeWatch();
    assert.equal(watch.changes(), 0);
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = 1; // what a merge of {"__proto__":{"polluted":1}} would do
    assert.equal(watch.changes(), 1);
    const toString = Array.prototype.toString;
    Array.prototype.toString = () => 'x';
    assert.equal(watch.changes(), 2);
    delete proto.polluted;
    Array.prototype.toString = toString;
    assert.equal(watch.changes(), 0);
    const hasOwn = Object.prototype.hasOwnProperty;
    delete (Object.prototype as { hasOwnProperty?: unknown }).hasOwnProperty;
    try {
      assert.equal(watch.changes(), 1, 'a removed property counts');
    } finally {
      Object.defineProperty(Object.prototype, 'hasOwnProperty', { value: hasOwn, writable: true, enumerable: false, configurable: true });
    }
    assert.equal(watch.changes(), 0);
  });
});
