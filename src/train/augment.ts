/**
 * Batches as float tensors' data, pixels scaled to [0, 1], with the training augmentation:
 * - `crop-flip` (small images, CIFAR practice): zero-pad 4, random crop back to size, random
 *   horizontal flip;
 * - `resized-crop-flip` (list-file images): random crop of 35%..100% of the area with aspect
 *   3/4..4/3, resized back with the preprocessing contract's kernel (src/data/preprocess.ts;
 *   torchvision's RandomResizedCrop resizes with bilinear), random horizontal flip;
 * - `none`: the images as they are (evaluation, feature extraction).
 */

import { resizeU8To } from '../data/preprocess.ts';
import type { ImageSet } from '../data/types.ts';
import type { Rng } from '../random/rng.ts';

export type Augmentation = 'crop-flip' | 'resized-crop-flip' | 'none';

/** Fills `out` ([indices.length, H, W, C]) with the images at `indices`. */
export function makeBatch(
  set: ImageSet,
  indices: ArrayLike<number>,
  aug: Augmentation,
  rng: Rng | null,
  out = new Float32Array(indices.length * set.height * set.width * set.channels),
): Float32Array {
  const { height: H, width: W, channels: C, pixels } = set;
  const per = H * W * C;
  const scale = 1 / 255;
  for (let k = 0; k < indices.length; k++) {
    const src = indices[k]! * per;
    const dst = k * per;
    if (aug === 'none' || rng === null) {
      for (let i = 0; i < per; i++) out[dst + i] = pixels[src + i]! * scale;
      continue;
    }
    const flip = rng.next() < 0.5;
    if (aug === 'crop-flip') {
      const pad = 4;
      const dy = rng.int(2 * pad + 1) - pad; // crop offset in the padded image, relative to the original
      const dx = rng.int(2 * pad + 1) - pad;
      for (let y = 0; y < H; y++) {
        const sy = y + dy;
        for (let x = 0; x < W; x++) {
          const sx = (flip ? W - 1 - x : x) + dx;
          const o = dst + (y * W + x) * C;
          if (sy < 0 || sy >= H || sx < 0 || sx >= W) {
            for (let c = 0; c < C; c++) out[o + c] = 0;
          } else {
            const s = src + (sy * W + sx) * C;
            for (let c = 0; c < C; c++) out[o + c] = pixels[s + c]! * scale;
          }
        }
      }
    } else {
      // Random resized crop (torchvision's RandomResizedCrop, 10 tries then the whole image).
      let cw = W;
      let ch = H;
      let x0 = 0;
      let y0 = 0;
      for (let t = 0; t < 10; t++) {
        const area = H * W * (0.35 + 0.65 * rng.next());
        const logr = Math.log(3 / 4) + (Math.log(4 / 3) - Math.log(3 / 4)) * rng.next();
        const r = Math.exp(logr);
        const w = Math.round(Math.sqrt(area * r));
        const h = Math.round(Math.sqrt(area / r));
        if (w >= 1 && h >= 1 && w <= W && h <= H) {
          cw = w;
          ch = h;
          x0 = rng.int(W - w + 1);
          y0 = rng.int(H - h + 1);
          break;
        }
      }
      const crop = new Uint8Array(ch * cw * C);
      for (let y = 0; y < ch; y++) {
        const s = src + ((y0 + y) * W + x0) * C;
        crop.set(pixels.subarray(s, s + cw * C), y * cw * C);
      }
      const resized = resizeU8To(crop, ch, cw, C, H, W);
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const s = (y * W + (flip ? W - 1 - x : x)) * C;
          const o = dst + (y * W + x) * C;
          for (let c = 0; c < C; c++) out[o + c] = resized[s + c]! * scale;
        }
    }
  }
  return out;
}
