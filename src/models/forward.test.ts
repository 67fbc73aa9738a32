import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/backend.ts';
import { createRng } from '../random/rng.ts';
import { forwardFeatures } from './forward.ts';
import { BACKBONE_NAMES, createBackbone } from './registry.ts';

describe('the batched forward loop', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('gives every backbone the features of one whole-set pass, in any batch size, from an array or a reader', () => {
    const rng = createRng(4);
    const shape = [32, 32, 3] as const;
    const n = 7;
    const per = shape[0] * shape[1] * shape[2];
    const images = Float32Array.from({ length: n * per }, () => rng.next());
    for (const name of BACKBONE_NAMES) {
      const bb = createBackbone(name, shape, 1);
      const whole = tf.tidy(() => bb.features(tf.tensor4d(images, [n, ...shape]), false)).dataSync();
      const progress: number[] = [];
      const batched = forwardFeatures(bb, images, n, { batchSize: 3, onProgress: (d) => progress.push(d) });
      const read = (s: number, c: number) => images.slice(s * per, (s + c) * per);
      const fromReader = forwardFeatures(bb, read, n, { batchSize: 4 });
      assert.equal(batched.length, n * bb.featureDim);
      assert.deepEqual(progress, [3, 6, 7]);
      for (const [label, got] of [
        ['array', batched],
        ['reader', fromReader],
      ] as const) {
        for (let i = 0; i < whole.length; i++)
          assert.ok(
            Math.abs(got[i]! - whole[i]!) <= 1e-5 * (1 + Math.abs(whole[i]!)),
            `${name} ${label} [${i}]`,
          );
      }
      bb.dispose();
    }
  });
});
