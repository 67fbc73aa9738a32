/** Random tensors and trained-looking batch-norm statistics for tests of the folded forward paths. */
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from '../../src/models/model.ts';
import type { Rng } from '../../src/random/rng.ts';

/** A tensor of offset + scale * N(0, 1) values. */
export function randomTensor(rng: Rng, shape: number[], scale = 1, offset = 0): tf.Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => offset + scale * rng.normal()),
    shape,
  );
}

/**
 * Running means N(0, 0.3^2) and variances in [0.5, 1.5) for every batch norm of the backbone: away
 * from a fresh model's 0 and 1, so folding them into the convolutions is exercised.
 */
export function randomizeBnStats(model: Model, rng: Rng): void {
  const { params, buffers } = model.backbone.params;
  for (const [name, v] of [...params, ...buffers]) {
    if (name.endsWith('running_mean')) tf.tidy(() => v.assign(randomTensor(rng, v.shape, 0.3)));
    if (name.endsWith('running_var'))
      tf.tidy(() =>
        v.assign(
          tf.tensor(
            Float32Array.from({ length: v.size }, () => 0.5 + rng.next()),
            v.shape,
          ),
        ),
      );
  }
}
