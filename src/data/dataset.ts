/**
 * Checks every loader runs on the splits it built, so that no data set reaches training with an
 * empty split (scored as 0, or a division by zero later) or with splits of different image sizes
 * (a model trained on one size fed another).
 */
import { DataError } from '../errors.ts';
import type { ImageSet } from './types.ts';

/** A split and where it came from (a list file, an IDX file, a folder), for messages. */
export interface SplitSource {
  set: ImageSet;
  source: string;
}

const shape = (s: ImageSet) => `${s.height}x${s.width}x${s.channels}`;

/**
 * Refuses a split with no images and a validation or test split whose images are of another size
 * (height x width x channels) than the training images, naming the split, the sizes and the sources.
 */
export function checkSplits(splits: {
  train: SplitSource;
  val: SplitSource | null;
  test: SplitSource;
}): void {
  const named = [
    ['training', splits.train],
    ['validation', splits.val],
    ['test', splits.test],
  ] as const;
  for (const [name, s] of named) {
    if (s !== null && s.set.labels.length === 0) {
      throw new DataError(`${s.source}: the ${name} split has no images (every split needs at least one)`);
    }
  }
  const train = splits.train;
  for (const [name, s] of named.slice(1)) {
    if (s === null) continue;
    if (shape(s.set) !== shape(train.set)) {
      throw new DataError(
        `${s.source}: ${name} images are ${shape(s.set)} (height x width x channels) but training images ` +
          `(${train.source}) are ${shape(train.set)}; every split must have the same image size`,
      );
    }
  }
}
