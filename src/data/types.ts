/** The in-memory shape of a data set. Pixels stay uint8 ([0, 255]); batches scale them to [0, 1]. */

export interface ImageSet {
  /** [n, height, width, channels], row-major, values 0..255. */
  pixels: Uint8Array;
  /** [n], 0..numClasses-1. */
  labels: Int32Array;
  height: number;
  width: number;
  channels: number;
}

/** Which long-tail profile produced the training counts. */
export type LongTailProfile =
  | { kind: 'exponential'; maxPerClass: number; imbalance: number }
  | { kind: 'pareto'; alpha: number; minPerClass: number; maxPerClass: number; seed: number }
  | { kind: 'given'; validation?: HeldOutValidation };

/**
 * A validation set drawn from the training images (an image folder without `val/`), recorded so
 * that results say which images were held out: `perClass` images of each class, chosen by `seed`.
 */
export interface HeldOutValidation {
  /** The split folder they were drawn from, e.g. `train/`. */
  from: string;
  perClass: number;
  seed: number;
  /** The held-out images, relative to the data folder, by class (label order), then by code point. */
  files: string[];
}

export interface LongTailDataset {
  /** Registry name, e.g. `fashion-mnist-lt`. */
  name: string;
  classNames: string[];
  train: ImageSet;
  /** The balanced validation set (for choosing the best epoch and tau); null when there is none. */
  val: ImageSet | null;
  test: ImageSet;
  /** Training images per class, the quantity shot splits and samplers use. */
  trainCounts: number[];
  profile: LongTailProfile;
  /** Where the images came from, for the record. */
  source: string;
}

export function numImages(set: ImageSet): number {
  return set.labels.length;
}

export function countPerClass(labels: ArrayLike<number>, numClasses: number): number[] {
  const c = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) c[labels[i]!]!++;
  return c;
}

/** Gathers the images at `indices` into a new set. */
export function subset(set: ImageSet, indices: ArrayLike<number>): ImageSet {
  const per = set.height * set.width * set.channels;
  const pixels = new Uint8Array(indices.length * per);
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    pixels.set(set.pixels.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = set.labels[i]!;
  }
  return { pixels, labels, height: set.height, width: set.width, channels: set.channels };
}
