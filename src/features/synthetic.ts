/** Synthetic feature splits for benchmarks and tests: Gaussian clouds around class means. */
import type { Rng } from '../random/rng.ts';
import type { FeatureSplit } from './feature-set.ts';

/**
 * `perClass[c]` rows of class c, each means[c] + noise * N(0, I), classes in label order.
 * means: [C, d] row-major.
 */
export function gaussianClasses(
  means: Float32Array,
  d: number,
  perClass: number[],
  noise: number,
  rng: Rng,
): FeatureSplit {
  const n = perClass.reduce((a, b) => a + b, 0);
  const features = new Float32Array(n * d);
  const labels = new Int32Array(n);
  let k = 0;
  perClass.forEach((m, c) => {
    for (let i = 0; i < m; i++, k++) {
      labels[k] = c;
      for (let j = 0; j < d; j++) features[k * d + j] = means[c * d + j]! + noise * rng.normal();
    }
  });
  return { features, labels };
}
