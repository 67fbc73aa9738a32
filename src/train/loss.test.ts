import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/backend.ts';
import { createRng } from '../random/rng.ts';
import { crossEntropy } from './loss.ts';

describe('cross-entropy with a hand-written gradient', () => {
  before(async () => {
    await initBackend('wasm');
  });
  it('matches tfjs softmaxCrossEntropy in value and gradient, including large logits', () => {
    const rng = createRng(4);
    for (const [B, C, scale] of [
      [4, 3, 1],
      [16, 10, 5],
      [8, 100, 40],
    ] as const) {
      const z = tf.tensor2d(
        Float32Array.from({ length: B * C }, () => rng.normal() * scale),
        [B, C],
      );
      const y = tf.oneHot(
        tf.tensor1d(
          Int32Array.from({ length: B }, () => rng.int(C)),
          'int32',
        ),
        C,
      ) as tf.Tensor2D;
      const mine = tf.valueAndGrad((a: tf.Tensor) => crossEntropy(a as tf.Tensor2D, y))(z);
      const ref = tf.valueAndGrad((a: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, a) as tf.Scalar)(z);
      assert.ok(
        Math.abs(mine.value.dataSync()[0]! - ref.value.dataSync()[0]!) <
          1e-4 * Math.max(1, Math.abs(ref.value.dataSync()[0]!)),
      );
      const a = mine.grad.dataSync();
      const b = ref.grad.dataSync();
      for (let i = 0; i < a.length; i++)
        assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5, `${B}x${C} grad ${i}: ${a[i]} vs ${b[i]}`);
    }
  });
});
