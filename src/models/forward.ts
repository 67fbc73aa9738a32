/**
 * The one batched evaluation-mode forward loop: a network over n images, a batch at a time,
 * into one row-major [n, k] array. Training, feature extraction and prediction all use it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from './backbone.ts';

/**
 * Images as one array [n, H, W, C], or a reader giving `count` images from `start` (so a large
 * set need not be converted to float all at once).
 */
export type ImageSource = Float32Array | ((start: number, count: number) => Float32Array);

export interface ForwardOptions {
  /** Images per forward pass (default 256). */
  batchSize?: number;
  /** [H, W, C] of the images (default the backbone's input shape). */
  imageShape?: readonly [number, number, number];
  onProgress?: (done: number, total: number) => void;
}

/**
 * `net` (x [b, H, W, C] -> [b, k]) over every image: [n, k] row-major. Each batch runs inside
 * tidy and is read outside it (reading inside tidy is much slower on wasm).
 */
export function forwardInBatches(
  net: (x: tf.Tensor4D) => tf.Tensor2D,
  images: ImageSource,
  n: number,
  imageShape: readonly [number, number, number],
  { batchSize = 256, onProgress }: Omit<ForwardOptions, 'imageShape'> = {},
): Float32Array {
  const [H, W, C] = imageShape;
  const per = H * W * C;
  let out = new Float32Array(0);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const x =
      typeof images === 'function'
        ? images(start, count)
        : images.subarray(start * per, (start + count) * per);
    const y = tf.tidy(() => net(tf.tensor4d(x, [count, H, W, C]))); // [count, k]
    const k = y.shape[1];
    if (start === 0) out = new Float32Array(n * k);
    out.set(y.dataSync() as Float32Array, start * k);
    y.dispose();
    onProgress?.(start + count, n);
  }
  return out;
}

/** Features of every image in evaluation mode (running batch-norm statistics): [n, d] row-major. */
export function forwardFeatures(
  backbone: Backbone,
  images: ImageSource,
  n: number,
  { imageShape = backbone.inputShape, ...opts }: ForwardOptions = {},
): Float32Array {
  return forwardInBatches((x) => backbone.features(x, false), images, n, imageShape, opts);
}
