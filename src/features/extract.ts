/** Running a frozen model over an image set: features, logits, in evaluation mode, batched. */
import * as tf from '@tensorflow/tfjs-core';
import type { ImageSet } from '../data/types.ts';
import type { Backbone } from '../models/resnet.ts';
import { makeBatch } from '../train/augment.ts';

/** Features of every image: [n, d] row-major. Batch statistics are never used (eval mode). */
export function extractFeatures(
  backbone: Backbone,
  set: ImageSet,
  opts: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Float32Array {
  const { batchSize = 256, onProgress } = opts;
  const n = set.labels.length;
  const d = backbone.featureDim;
  const out = new Float32Array(n * d);
  const { height: H, width: W, channels: C } = set;
  for (let start = 0; start < n; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, n - start) }, (_, k) => start + k);
    const data = makeBatch(set, idx, 'none', null);
    const f = tf.tidy(() => backbone.features(tf.tensor4d(data, [idx.length, H, W, C]), false)); // [b, d]
    out.set(f.dataSync() as Float32Array, start * d); // read outside tidy: much faster on wasm
    f.dispose();
    onProgress?.(start + idx.length, n);
  }
  return out;
}
