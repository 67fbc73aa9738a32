// Synthetic logits with known posteriors, shared by the calibration and label-shift tests.
import { createRng, type Rng } from '../../src/random/rng.ts';

/**
 * A synthetic problem with known posteriors: class means on a sphere in d dimensions, x ~ N(mu_y,
 * s^2 I). The Bayes logits under a uniform prior are (mu_c . x - |mu_c|^2 / 2) / s^2; `scale`
 * multiplies them to make a miscalibrated (over- or under-confident) classifier.
 */
export function gaussianProblem(C: number, d: number, seed: number) {
  const rng = createRng(seed, 0xca1);
  const mu = Float64Array.from({ length: C * d }, () => rng.normal() * 1.2);
  return {
    C,
    draw(counts: readonly number[], rng: Rng, scale = 1) {
      const n = counts.reduce((a, b) => a + b, 0);
      const logits = new Float32Array(n * C);
      const labels = new Int32Array(n);
      let i = 0;
      counts.forEach((k, y) => {
        for (let r = 0; r < k; r++, i++) {
          const x = Array.from({ length: d }, (_, j) => mu[y * d + j]! + rng.normal());
          labels[i] = y;
          for (let c = 0; c < C; c++) {
            let dot = 0;
            let sq = 0;
            for (let j = 0; j < d; j++) {
              dot += mu[c * d + j]! * x[j]!;
              sq += mu[c * d + j]! ** 2;
            }
            logits[i * C + c] = scale * (dot - sq / 2);
          }
        }
      });
      return { logits, labels, n };
    },
  };
}

/** Exponential class sizes, largest first (`backward`: reversed). */
export function tail(C: number, nMax: number, ratio: number, backward = false): number[] {
  const k = Array.from({ length: C }, (_, c) => Math.max(1, Math.floor(nMax * ratio ** (-c / (C - 1)))));
  return backward ? k.reverse() : k;
}
