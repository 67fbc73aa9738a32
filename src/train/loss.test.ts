import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/backend.ts';
import { createRng } from '../random/rng.ts';
import { logPrior } from '../sampling/probabilities.ts';
import { crossEntropy, lossOffset } from './loss.ts';

describe('cross-entropy with a hand-written gradient', () => {
  before(async () => {
    await initBackend('wasm');
  });
  for (const withOffset of [false, true])
    it(`matches tfjs softmaxCrossEntropy in value and gradient, including large logits${withOffset ? ', with a logit offset (balanced softmax)' : ''}`, () => {
      const rng = createRng(4);
      for (const [B, C, scale] of [
        [4, 3, 1],
        [16, 10, 5],
        [8, 100, 40],
      ] as const) {
        // The offset enters the softmax only: the reference is plain CE of z + offset, differentiated w.r.t. z.
        const counts = Array.from({ length: C }, (_, c) => Math.max(1, Math.round(500 * 0.8 ** c)));
        const off = withOffset ? tf.tensor1d(lossOffset('balanced-softmax', counts)!) : undefined;
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
        const mine = tf.valueAndGrad((a: tf.Tensor) => crossEntropy(a as tf.Tensor2D, y, off))(z);
        const ref = tf.valueAndGrad(
          (a: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, off ? tf.add(a, off) : a) as tf.Scalar,
        )(z);
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

  it('stage-1 loss offsets: none for CE, log prior for balanced softmax, tau log prior for logit-adjusted', () => {
    const counts = [60, 30, 10];
    const lp = [Math.log(0.6), Math.log(0.3), Math.log(0.1)];
    assert.equal(lossOffset('ce', counts), null);
    const bs = lossOffset('balanced-softmax', counts)!;
    const la = lossOffset('logit-adjusted', counts, 0.5)!;
    for (let c = 0; c < 3; c++) {
      assert.ok(Math.abs(bs[c]! - lp[c]!) < 1e-6);
      assert.ok(Math.abs(la[c]! - 0.5 * lp[c]!) < 1e-6);
    }
    assert.throws(
      () => logPrior([5, 0, 2], '--loss balanced-softmax'),
      /--loss balanced-softmax: class 1 has no training image/,
    );
  });
});
