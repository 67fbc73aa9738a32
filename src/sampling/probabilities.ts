/**
 * The paper's one formula for class sampling: p_j = n_j^q / sum_i n_i^q.
 * q = 1 instance-balanced, q = 1/2 square-root, q = 0 class-balanced.
 */
import { ConfigError } from '../errors.ts';

export function classProbabilities(counts: readonly number[], q: number): number[] {
  if (!(q >= 0 && q <= 1)) throw new ConfigError(`sampling exponent q must be in [0, 1], got ${q}`);
  // A class with no image can never be drawn, whatever q (0^0 would otherwise count it).
  const w = counts.map((n) => (n > 0 ? n ** q : 0));
  const total = w.reduce((a, b) => a + b, 0);
  if (total === 0) throw new ConfigError('no class has a training image');
  return w.map((x) => x / total);
}

/** Progressively-balanced: (1 - lam) p^IB + lam p^CB, lam = epoch / (epochs - 1) (the official linspace(0, 1, epochs)). */
export function progressiveProbabilities(counts: readonly number[], epoch: number, epochs: number): number[] {
  const lam = epochs <= 1 ? 0 : Math.min(1, Math.max(0, epoch / (epochs - 1)));
  const ib = classProbabilities(counts, 1);
  const cb = classProbabilities(counts, 0);
  return ib.map((p, j) => (1 - lam) * p + lam * cb[j]!);
}

/** log(n_j / N) per class (the training prior); a class without training images has none. */
export function logPrior(counts: readonly number[], what = 'the class prior'): Float32Array {
  const empty = counts.indexOf(0);
  if (empty >= 0)
    throw new ConfigError(`${what}: class ${empty} has no training image, so its prior is 0 (log 0)`);
  const N = counts.reduce((a, b) => a + b, 0);
  return Float32Array.from(counts, (n) => Math.log(n / N));
}
