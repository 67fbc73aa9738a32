/**
 * Test sets with a shifted class prior (the protocol of LADE, Hong et al. CVPR 2021, and SADE,
 * Zhang et al. NeurIPS 2022): the balanced test set re-sampled so that class sizes follow an
 * exponential profile with imbalance ratio rho, either "forward" (the same order as training:
 * frequent training classes are frequent at test time) or "backward" (reversed: the tail of
 * training is the head of the test). rho = 1 is the uniform test set itself.
 *
 * Class c's rank r is its position when classes are sorted by training count, largest first
 * (ties by class index); its test size is floor(m * rho^(-r / (C - 1))) forward and
 * floor(m * rho^(-(C - 1 - r) / (C - 1))) backward, where m is the smallest per-class test count
 * (so every class can give its share). Which images: a seeded draw without replacement from the
 * class's test images, so a shifted set is the same for the same seed.
 */
import { ConfigError } from '../errors.ts';
import { createRng } from '../random/rng.ts';

export type ShiftDirection = 'forward' | 'backward';

export interface ShiftedPrior {
  /** n_max / n_min of the re-sampled test set; 1 is uniform. */
  ratio: number;
  direction: ShiftDirection | 'uniform';
}

/** The protocol's grid: uniform, then forward and backward at ratios 2, 10 and 50. */
export const SHIFTED_PRIORS: readonly ShiftedPrior[] = [
  { ratio: 1, direction: 'uniform' },
  ...[2, 10, 50].flatMap((ratio) => [
    { ratio, direction: 'forward' as const },
    { ratio, direction: 'backward' as const },
  ]),
];

export function priorName(p: ShiftedPrior): string {
  return p.direction === 'uniform' ? 'uniform' : `${p.direction} ${p.ratio}`;
}

/** Ranks of classes by training count, largest first (ties: lower class index first). */
export function countRanks(trainCounts: readonly number[]): number[] {
  const order = trainCounts.map((n, c) => [n, c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const rank = new Array<number>(trainCounts.length);
  order.forEach(([, c], r) => {
    rank[c] = r;
  });
  return rank;
}

/** Per-class test sizes of a shifted set. */
export function shiftedCounts(
  trainCounts: readonly number[],
  perClassTest: number,
  p: ShiftedPrior,
): number[] {
  const C = trainCounts.length;
  if (!(p.ratio >= 1)) throw new ConfigError(`a shifted prior's ratio must be >= 1, got ${p.ratio}`);
  const rank = countRanks(trainCounts);
  return rank.map((r) => {
    if (p.direction === 'uniform' || C === 1) return perClassTest;
    const pos = p.direction === 'forward' ? r : C - 1 - r;
    return Math.max(1, Math.floor(perClassTest * p.ratio ** (-pos / (C - 1))));
  });
}

/**
 * Indices into the test set forming the shifted set (sorted ascending). `seed` and the prior
 * decide the draw, so the same arguments give the same set.
 */
export function shiftedTestIndices(
  testLabels: ArrayLike<number>,
  trainCounts: readonly number[],
  p: ShiftedPrior,
  seed: number,
): Int32Array {
  const C = trainCounts.length;
  const byClass: number[][] = Array.from({ length: C }, () => []);
  for (let i = 0; i < testLabels.length; i++) byClass[testLabels[i]!]!.push(i);
  const m = Math.min(...byClass.map((b) => b.length));
  if (m === 0) {
    const empty = byClass.findIndex((b) => b.length === 0);
    throw new ConfigError(`shifted test priors need test images of every class; class ${empty} has none`);
  }
  const counts = shiftedCounts(trainCounts, m, p);
  const out: number[] = [];
  const salt = p.direction === 'uniform' ? 0 : p.direction === 'forward' ? 1 : 2;
  for (let c = 0; c < C; c++) {
    const pool = byClass[c]!;
    if (counts[c] === pool.length) {
      out.push(...pool);
      continue;
    }
    const perm = createRng(seed, 0x5ee7, salt, Math.round(p.ratio * 1000), c).permutation(pool.length);
    for (let k = 0; k < counts[c]!; k++) out.push(pool[perm[k]!]!);
  }
  return Int32Array.from(out.sort((a, b) => a - b));
}

/** The class prior of a shifted set (sums to 1), e.g. for a method that is told the target prior. */
export function shiftedPrior(
  trainCounts: readonly number[],
  perClassTest: number,
  p: ShiftedPrior,
): number[] {
  const counts = shiftedCounts(trainCounts, perClassTest, p);
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((n) => n / total);
}
