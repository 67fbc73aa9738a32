import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { longTailedFeatures } from '../../test/helpers/features.ts';
import { initBackend } from '../backend/backend.ts';
import { argmaxRows, BLOCK_FLOATS, defaultChunkRows } from '../eval/metrics.ts';
import { accuracyOfFeatures } from '../pipeline/quick-eval.ts';
import { createRng } from '../random/rng.ts';
import { linearLogits } from './linear-ops.ts';

/** The product as it was computed before batches and W^T were hoisted: matMul with transposeB, whole. */
function transposeBLogits(
  f: Float32Array,
  n: number,
  d: number,
  w: Float32Array,
  b: Float32Array | null,
  C: number,
): Float32Array {
  return tf
    .tidy(() => {
      const y = tf.matMul(tf.tensor2d(f, [n, d]), tf.tensor2d(w, [C, d]), false, true);
      return b ? tf.add(y, tf.tensor1d(b)) : y;
    })
    .dataSync() as Float32Array;
}

describe('linearLogits in batches of rows', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('equals a float64 product (independent golden values)', () => {
    const rng = createRng(7);
    const [n, d, C] = [37, 19, 5];
    const f = Float32Array.from({ length: n * d }, () => rng.normal());
    const w = Float32Array.from({ length: C * d }, () => rng.normal());
    const b = Float32Array.from({ length: C }, () => rng.normal());
    const z = linearLogits(f, n, d, w, b, C, 4);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < C; c++) {
        let s = b[c]!;
        for (let j = 0; j < d; j++) s += f[i * d + j]! * w[c * d + j]!;
        assert.ok(
          Math.abs(z[i * C + c]! - s) <= 1e-4 * (1 + Math.abs(s)),
          `${i}, ${c}: ${z[i * C + c]} vs ${s}`,
        );
      }
  });

  it('any batch size gives the same logits to the bit as the whole transposed product', () => {
    for (let seed = 0; seed < 6; seed++) {
      const rng = createRng(30 + seed);
      // Wide enough (d up to 700) that the product's own row blocks are crossed too.
      const n = 1 + rng.int(400);
      const d = 1 + rng.int(700);
      // Past the packed product's 12-row strips and 96-row blocks of classes for the last seeds.
      const C = 1 + rng.int(seed < 4 ? 40 : 300);
      const f = Float32Array.from({ length: n * d }, () => rng.normal());
      const w = Float32Array.from({ length: C * d }, () => rng.normal());
      const b = seed % 2 === 0 ? Float32Array.from({ length: C }, () => rng.normal()) : null;
      const whole = transposeBLogits(f, n, d, w, b, C);
      for (const batch of [1, 3, 8, 1 + rng.int(n), n, 10 * n, defaultChunkRows(C, d)]) {
        assert.deepEqual(
          linearLogits(f, n, d, w, b, C, batch),
          whole,
          `seed ${seed}, n ${n}, d ${d}, batch ${batch}`,
        );
      }
    }
  });

  it('the default batch holds at most BLOCK_FLOATS features or logits', () => {
    assert.equal(defaultChunkRows(1000, 2048), Math.floor(BLOCK_FLOATS / 2048));
    assert.equal(defaultChunkRows(8142, 2048), Math.floor(BLOCK_FLOATS / 8142));
    assert.equal(defaultChunkRows(10), Math.floor(BLOCK_FLOATS / 10));
    assert.equal(defaultChunkRows(BLOCK_FLOATS * 4, 3), 1);
  });

  it('the joint test accuracy block by block equals the whole argmax', () => {
    const fs = longTailedFeatures({
      seed: 5,
      C: 9,
      d: 24,
      head: 60,
      decay: 0.7,
      min: 3,
      noise: 1.5,
      valPer: 3,
      testPer: 11,
      growth: 0.1,
      biasStep: 0.05,
    });
    const { weight, bias } = fs.classifier!;
    const n = fs.test.labels.length;
    const p = argmaxRows(transposeBLogits(fs.test.features, n, fs.dim, weight, bias, 9), n, 9);
    const want = p.reduce((a, v, i) => a + (v === fs.test.labels[i] ? 1 : 0), 0) / n;
    assert.ok(want > 0 && want < 1);
    for (const chunk of [1, 7, 13, n, undefined])
      assert.equal(accuracyOfFeatures(fs, chunk), want, `${chunk}`);
  });
});
