/**
 * A set's images as float batches in order, pixels scaled to [0, 1] and unaugmented: what feature
 * extraction and evaluation feed a backbone. It sits under both stages (stage 1's augmented
 * batches build on the same layout in train/augment.ts).
 */
import type { ImageSet } from './types.ts';

/** Images [start, start + count) of `set` as [count, H, W, C] floats in [0, 1]. */
export function imageBatch(set: ImageSet, start: number, count: number): Float32Array {
  const per = set.height * set.width * set.channels;
  const out = new Float32Array(count * per);
  const { pixels } = set;
  const scale = 1 / 255;
  for (let i = 0, s = start * per; i < out.length; i++, s++) out[i] = pixels[s]! * scale;
  return out;
}

/** The set's images in order, a batch at a time (the batched forward loop's image source). */
export function plainImages(set: ImageSet): (start: number, count: number) => Float32Array {
  return (start, count) => imageBatch(set, start, count);
}
