import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng } from '../random/rng.ts';
import { gaussianClasses } from './synthetic.ts';

describe('synthetic Gaussian classes', () => {
  it('gives perClass rows per class in label order, around the class means', () => {
    const means = Float32Array.from([1, 2, -3, 4]); // two classes, d = 2
    const exact = gaussianClasses(means, 2, [2, 1], 0, createRng(0));
    assert.deepEqual(Array.from(exact.labels), [0, 0, 1]);
    assert.deepEqual(Array.from(exact.features), [1, 2, 1, 2, -3, 4]);
    // With noise: the per-class sample mean is within 5 standard errors of the class mean.
    const s = gaussianClasses(means, 2, [4000, 4000], 1, createRng(3));
    for (let c = 0; c < 2; c++)
      for (let j = 0; j < 2; j++) {
        let m = 0;
        for (let i = 0; i < 4000; i++) m += s.features[(c * 4000 + i) * 2 + j]!;
        assert.ok(Math.abs(m / 4000 - means[c * 2 + j]!) < 5 / Math.sqrt(4000));
      }
  });
});
