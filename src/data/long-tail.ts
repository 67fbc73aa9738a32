/**
 * Long-tail profiles (how many training images each class keeps) and the selection of which
 * images, for any labelled data set.
 */
import { ConfigError, DataError } from '../errors.ts';
import { NumpyRandomState } from '../random/numpy-mt.ts';
import { createRng } from '../random/rng.ts';
import { countPerClass, type ImageSet, type LongTailProfile, subset } from './types.ts';

/**
 * Exponential profile (CIFAR-LT): n_i = floor(n_max * IF^(-i / (C - 1))), classes in label order.
 * Computed as n_max * (1/IF)^(i/(C-1)), the reference code's form, so the floors agree with it.
 */
export function exponentialCounts(numClasses: number, maxPerClass: number, imbalance: number): number[] {
  if (!Number.isInteger(numClasses) || numClasses < 1)
    throw new ConfigError(`number of classes must be >= 1, got ${numClasses}`);
  if (!(maxPerClass >= 1) || !Number.isInteger(maxPerClass)) {
    throw new ConfigError(`--max-per-class must be a positive integer, got ${maxPerClass}`);
  }
  if (!(imbalance >= 1))
    throw new ConfigError(`--imbalance (IF = n_max / n_min) must be >= 1, got ${imbalance}`);
  const counts = exponentialRaw(numClasses, maxPerClass, imbalance);
  const empty = counts.indexOf(0);
  if (empty >= 0) {
    // The smallest n_max that leaves every class an image (the float form can need one more than ceil(IF)).
    let need = Math.ceil(imbalance);
    while (exponentialRaw(numClasses, need, imbalance).includes(0)) need++;
    throw new ConfigError(
      `--max-per-class ${maxPerClass} with --imbalance ${imbalance} leaves class ${empty} (and ` +
        `${counts.filter((n) => n === 0).length - 1} more) with 0 training images ` +
        `(n_c = floor(n_max * IF^(-c / ${numClasses - 1}))); every class needs at least one: ` +
        `use --max-per-class >= ${need} or a smaller --imbalance`,
    );
  }
  return counts;
}

function exponentialRaw(numClasses: number, maxPerClass: number, imbalance: number): number[] {
  if (numClasses === 1) return [maxPerClass];
  return Array.from({ length: numClasses }, (_, i) =>
    Math.floor(maxPerClass * (1 / imbalance) ** (i / (numClasses - 1))),
  );
}

/**
 * Pareto profile (ImageNet-LT style): C sizes drawn from a Pareto distribution with shape
 * alpha (seeded), mapped linearly onto [minPerClass, maxPerClass] and sorted so class 0 is the
 * largest. The OLTR paper gives only "Pareto, alpha = 6, 1280 down to 5"; this is one faithful
 * reading of it, deterministic given the seed.
 */
export function paretoCounts(
  numClasses: number,
  opts: { alpha?: number; minPerClass?: number; maxPerClass?: number; seed?: number } = {},
): number[] {
  const { alpha = 6, minPerClass = 5, maxPerClass = 1280, seed = 0 } = opts;
  if (!(alpha > 0)) throw new ConfigError(`Pareto alpha must be > 0, got ${alpha}`);
  if (!(minPerClass >= 1 && maxPerClass >= minPerClass)) {
    throw new ConfigError(
      `Pareto needs 1 <= min per class <= max per class, got ${minPerClass}..${maxPerClass}`,
    );
  }
  const rng = createRng(seed, 0x9a7e70);
  const x = Array.from({ length: numClasses }, () => (1 - rng.next()) ** (-1 / alpha)).sort((a, b) => b - a);
  const hi = x[0]!;
  const lo = x[x.length - 1]!;
  return x.map((v) =>
    hi === lo ? maxPerClass : Math.round(minPerClass + ((v - lo) / (hi - lo)) * (maxPerClass - minPerClass)),
  );
}

/** Indices of each class's images, in file order. */
export function indicesByClass(labels: ArrayLike<number>, numClasses: number): number[][] {
  const by: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) by[labels[i]!]!.push(i);
  return by;
}

/**
 * docs/formats.md's file-order split (Fashion-MNIST-LT, MNIST-LT): for class c, the first counts[c]
 * images in file order train, the last `valPerClass` form the balanced validation set. No RNG.
 */
export function fileOrderSplit(
  set: ImageSet,
  counts: number[],
  valPerClass: number,
  where: string,
): { train: ImageSet; val: ImageSet | null } {
  const by = indicesByClass(set.labels, counts.length);
  const train: number[] = [];
  const val: number[] = [];
  by.forEach((idx, c) => {
    const need = counts[c]! + valPerClass;
    if (idx.length < need) {
      throw new ConfigError(
        `${where}: class ${c} has ${idx.length} training images; ${counts[c]} for training plus ${valPerClass} ` +
          `for validation would overlap (n_max + ${valPerClass} must be <= ${Math.min(...by.map((b) => b.length))})`,
      );
    }
    train.push(...idx.slice(0, counts[c]));
    if (valPerClass > 0) val.push(...idx.slice(idx.length - valPerClass));
  });
  return { train: subset(set, train), val: valPerClass > 0 ? subset(set, val) : null };
}

/**
 * The CIFAR-LT protocol's subset (LDAM-DRW's IMBALANCECIFAR10): np.random.seed(seed), then for
 * each class in label order shuffle that class's indices and keep the first counts[c].
 * With seed 0 this is the same subset as the reference code. Returns the kept indices (class by
 * class) and, per class, the shuffled indices left out (where a validation set can come from).
 */
export function numpySubsetIndices(
  labels: ArrayLike<number>,
  counts: number[],
  seed: number,
  where: string,
): { keep: number[]; leftover: number[][] } {
  const by = indicesByClass(labels, counts.length);
  const rs = new NumpyRandomState(seed);
  const keep: number[] = [];
  const leftover: number[][] = [];
  by.forEach((idx, c) => {
    if (idx.length < counts[c]!) {
      throw new ConfigError(
        `${where}: class ${c} has ${idx.length} training images, the profile asks for ${counts[c]}`,
      );
    }
    const a = Int32Array.from(idx);
    rs.shuffle(a);
    keep.push(...a.subarray(0, counts[c]));
    leftover.push([...a.subarray(counts[c])]);
  });
  return { keep, leftover };
}

/** numpySubset's images: the CIFAR-LT protocol's subset of `set` (see numpySubsetIndices). */
export function numpySubset(set: ImageSet, counts: number[], seed: number, where: string): ImageSet {
  return subset(set, numpySubsetIndices(set.labels, counts, seed, where).keep);
}

export interface MakeLongTailedOptions {
  profile: LongTailProfile;
  numClasses: number;
  /** `file-order`: first n_c of each class; `random`: a seeded random n_c of each class. */
  selection?: 'file-order' | 'random';
  seed?: number;
}

/** Makes any labelled image set long-tailed by the given profile. */
export function makeLongTailed(
  set: ImageSet,
  opts: MakeLongTailedOptions,
): { set: ImageSet; counts: number[] } {
  const { profile, numClasses, selection = 'random', seed = 0 } = opts;
  const have = countPerClass(set.labels, numClasses);
  let counts: number[];
  if (profile.kind === 'exponential')
    counts = exponentialCounts(numClasses, profile.maxPerClass, profile.imbalance);
  else if (profile.kind === 'pareto') counts = paretoCounts(numClasses, profile);
  else counts = have;
  const empty = counts.indexOf(0);
  if (empty >= 0) {
    throw new DataError(
      `class ${empty} would have 0 training images (profile ${JSON.stringify(profile)}, ` +
        `images per class available: ${have.join(', ')}); every class needs at least one`,
    );
  }
  counts = counts.map((n, c) => {
    if (have[c]! < n) throw new DataError(`class ${c} has ${have[c]} images, the profile asks for ${n}`);
    return n;
  });
  const by = indicesByClass(set.labels, numClasses);
  const rng = createRng(seed, 0x10e7a1);
  const keep: number[] = [];
  by.forEach((idx, c) => {
    const order = selection === 'random' ? (rng.shuffle([...idx]) as number[]) : idx;
    keep.push(...order.slice(0, counts[c]));
  });
  return { set: subset(set, keep), counts };
}
