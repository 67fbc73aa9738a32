import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shotSplits, splitMean, splitOf } from './shot-splits.ts';

describe('shot splits', () => {
  it('split the default Fashion-MNIST-LT into 5 many, 3 medium, 2 few', () => {
    const s = shotSplits([1000, 599, 359, 215, 129, 77, 46, 27, 16, 10]);
    assert.deepEqual(s, { many: [0, 1, 2, 3, 4], medium: [5, 6, 7], few: [8, 9] });
  });
  it('put the boundaries where the paper does: 100 and 20 are medium', () => {
    assert.equal(splitOf(101), 'many');
    assert.equal(splitOf(100), 'medium');
    assert.equal(splitOf(20), 'medium');
    assert.equal(splitOf(19), 'few');
    assert.equal(splitOf(50, { many: 40, few: 10 }), 'many');
  });
  it('report an empty split as null, not 0', () => {
    const s = shotSplits([500, 400]);
    assert.deepEqual(s.few, []);
    assert.equal(splitMean([0.9, 0.8], s.few), null);
    assert.ok(Math.abs(splitMean([0.9, 0.8], s.many)! - 0.85) < 1e-12);
    assert.equal(splitMean([null, 0.5], [0]), null);
  });
});
