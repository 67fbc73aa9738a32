/** Running a frozen backbone over an image set: features in evaluation mode, batched. */

import { plainImages } from '../data/batches.ts';
import type { ImageSet } from '../data/types.ts';
import type { Backbone } from '../models/backbone.ts';
import { forwardFeatures } from '../models/forward.ts';

/** Features of every image: [n, d] row-major. Batch statistics are never used (eval mode). */
export function extractFeatures(
  backbone: Backbone,
  set: ImageSet,
  opts: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Float32Array {
  return forwardFeatures(backbone, plainImages(set), set.labels.length, {
    ...opts,
    imageShape: [set.height, set.width, set.channels],
  });
}
