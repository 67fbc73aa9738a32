/** Running a frozen backbone over an image set: features in evaluation mode, batched. */
import type { ImageSet } from '../data/types.ts';
import type { Backbone } from '../models/backbone.ts';
import { forwardFeatures } from '../models/forward.ts';
import { makeBatch } from '../train/augment.ts';

/** Features of every image: [n, d] row-major. Batch statistics are never used (eval mode). */
export function extractFeatures(
  backbone: Backbone,
  set: ImageSet,
  opts: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Float32Array {
  const read = (start: number, count: number) =>
    makeBatch(
      set,
      Array.from({ length: count }, (_, k) => start + k),
      'none',
      null,
    ); // [count, H, W, C]
  return forwardFeatures(backbone, read, set.labels.length, {
    ...opts,
    imageShape: [set.height, set.width, set.channels],
  });
}
