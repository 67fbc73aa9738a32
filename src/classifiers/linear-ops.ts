/** Dense helpers shared by the stage-2 classifiers. */
import * as tf from '@tensorflow/tfjs-core';
import { defaultChunkRows } from '../eval/metrics.ts';
import type { FeatureTransform, FoldedLinear } from './types.ts';

/** Applies a feature transform to [n, d] features (a new array). */
export function transformFeatures(f: Float32Array, n: number, d: number, t: FeatureTransform): Float32Array {
  if (t.kind === 'none') return f;
  const out = new Float32Array(n * d);
  const mean = t.kind === 'cl2n' ? t.mean : null;
  for (let i = 0; i < n; i++) {
    const o = i * d;
    let s = 0;
    // The difference in double, stored as f32; the norm sums the double differences.
    if (mean) {
      for (let j = 0; j < d; j++) {
        const v = f[o + j]! - mean[j]!;
        out[o + j] = v;
        s += v * v;
      }
    } else {
      for (let j = 0; j < d; j++) {
        const v = f[o + j]!;
        out[o + j] = v;
        s += v * v;
      }
    }
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let j = 0; j < d; j++) out[o + j]! *= inv;
  }
  return out;
}

/**
 * logits = f W^T + b, batched on the tfjs backend. f [n, d], W [C, d], b [C] -> [n, C].
 * `batch` rows at a time (default: defaultChunkRows(C, d), 8 MiB of features or logits): the
 * backend's heap holds W^T and one batch, and on wasm it never shrinks once grown. Each row's
 * logits do not depend on the batch (the product computes every row alike).
 */
export function linearLogits(
  f: Float32Array,
  n: number,
  d: number,
  weight: Float32Array,
  bias: Float32Array | null,
  C: number,
  batch: number = defaultChunkRows(C, d),
): Float32Array {
  const out = new Float32Array(n * C);
  const step = Math.max(1, Math.floor(batch));
  // W^T once (what matMul's transposeB would do on every batch: the same values).
  const wT = tf.tidy(() => tf.transpose(tf.tensor2d(weight, [C, d]))); // [d, C]
  const b = bias ? tf.tensor1d(bias) : null;
  try {
    for (let s = 0; s < n; s += step) {
      const m = Math.min(step, n - s);
      const z = tf.tidy(() => {
        const x = tf.tensor2d(f.subarray(s * d, (s + m) * d), [m, d]);
        const y = tf.matMul(x, wT); // [m, C]
        return b ? tf.add(y, b) : y;
      });
      out.set(z.dataSync() as Float32Array, s * C); // read outside tidy (fast on wasm)
      z.dispose();
    }
  } finally {
    wT.dispose();
    b?.dispose();
  }
  return out;
}

export function foldedLogits(
  layer: FoldedLinear,
  f: Float32Array,
  n: number,
  d: number,
  C: number,
): Float32Array {
  return linearLogits(transformFeatures(f, n, d, layer.transform), n, d, layer.weight, layer.bias, C);
}

/** Row norms of W [C, d]. */
export function rowNorms(w: Float32Array, C: number, d: number): number[] {
  return Array.from({ length: C }, (_, i) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += w[i * d + j]! ** 2;
    return Math.sqrt(s);
  });
}
