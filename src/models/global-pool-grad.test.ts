import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/backend.ts';
import { createRng } from '../random/rng.ts';
import { globalAvgPool } from './layers.ts';

describe('global average pooling under a gradient tape', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it("gives tf.mean's values and gradient bit for bit, over random shapes", () => {
    const rng = createRng(29);
    for (let t = 0; t < 12; t++) {
      const shape: [number, number, number, number] = [
        1 + rng.int(9),
        1 + rng.int(8),
        1 + rng.int(8),
        1 + rng.int(70),
      ];
      const n = shape.reduce((a, b) => a * b);
      const x = tf.tensor4d(
        Float32Array.from({ length: n }, () => rng.next() * 8 - 4),
        shape,
      );
      const w = tf.tensor2d(
        Float32Array.from({ length: shape[0] * shape[3] }, () => rng.next() * 2 - 1),
        [shape[0], shape[3]],
      );
      const ours = tf.valueAndGrad((v: tf.Tensor) => tf.sum(tf.mul(globalAvgPool(v as tf.Tensor4D), w)))(x);
      const ref = tf.valueAndGrad((v: tf.Tensor) => tf.sum(tf.mul(tf.mean(v, [1, 2]), w)))(x);
      assert.deepEqual(ours.value.dataSync(), ref.value.dataSync(), `value, shape ${shape}`);
      assert.deepEqual(ours.grad.dataSync(), ref.grad.dataSync(), `gradient, shape ${shape}`);
      tf.dispose([x, w, ours.value, ours.grad, ref.value, ref.grad]);
    }
  });

  it('spreads dy / (h w) over every pixel of its image and channel', () => {
    // By hand: x [2, 2, 3, 2] -> [2, 2]; d(sum(pool * w))/dx[b, i, j, c] = w[b, c] / 6.
    const x = tf.zeros([2, 2, 3, 2]) as tf.Tensor4D;
    const w = tf.tensor2d([3, -6, 1.5, 12], [2, 2]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(globalAvgPool(v as tf.Tensor4D), w)))(x);
    const d = g.arraySync() as number[][][][];
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 3; j++) assert.deepEqual(d[b]![i]![j], b === 0 ? [0.5, -1] : [0.25, 2]);
    tf.dispose([x, w, g]);
  });
});
