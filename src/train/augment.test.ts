import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resizeU8To } from '../data/preprocess.ts';
import type { ImageSet } from '../data/types.ts';
import type { Rng } from '../random/rng.ts';
import { makeBatch } from './augment.ts';

/** A generator that returns scripted draws, so each image's flip and offsets are known. */
function scripted(draws: { next: number[]; int: number[] }): Rng {
  const next = [...draws.next];
  const ints = [...draws.int];
  return {
    next: () => next.shift() ?? assert.fail('more next() draws than scripted'),
    int: (n: number) => {
      const v = ints.shift() ?? assert.fail('more int() draws than scripted');
      assert.ok(v >= 0 && v < n, `scripted int ${v} outside [0, ${n})`);
      return v;
    },
  } as unknown as Rng;
}

/** Pixel (y, x, c) of image k in an [n, H, W, C] array. */
const at = (a: ArrayLike<number>, s: ImageSet, k: number, y: number, x: number, c: number) =>
  a[((k * s.height + y) * s.width + x) * s.channels + c]!;

describe('crop-flip augmentation', () => {
  // Three 6x5 two-channel images with distinct pixel values.
  const set: ImageSet = {
    pixels: Uint8Array.from({ length: 3 * 6 * 5 * 2 }, (_, i) => (i * 7 + 3) % 251),
    labels: Int32Array.from([0, 1, 2]),
    height: 6,
    width: 5,
    channels: 2,
  };

  it('is the image zero-padded by 4, cropped at the drawn offset, and flipped when drawn', () => {
    // Per image: flip (next() < 0.5), then the row offset, then the column offset, each
    // int(9) = 0..8, i.e. the crop's corner in the padded image.
    const cases = [
      { flip: false, top: 4, left: 4 }, // the image itself
      { flip: true, top: 0, left: 8 }, // corners of the padded image, flipped
      { flip: false, top: 8, left: 1 },
      { flip: true, top: 5, left: 3 },
    ];
    const idx = [0, 2, 1, 2];
    const rng = scripted({
      next: cases.map((c) => (c.flip ? 0.25 : 0.75)),
      int: cases.flatMap((c) => [c.top, c.left]),
    });
    const out = makeBatch(set, idx, 'crop-flip', rng);
    const { height: H, width: W, channels: C } = set;
    const P = 4;
    cases.forEach(({ flip, top, left }, k) => {
      // Independently: pad, crop, then mirror the crop.
      const padded = (y: number, x: number, c: number) =>
        y < P || y >= H + P || x < P || x >= W + P ? 0 : at(set.pixels, set, idx[k]!, y - P, x - P, c) / 255;
      const crop = (y: number, x: number, c: number) => padded(top + y, left + x, c);
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++)
          for (let c = 0; c < C; c++) {
            const want = flip ? crop(y, W - 1 - x, c) : crop(y, x, c);
            const got = at(out, set, k, y, x, c);
            // Within float32 rounding of the scaled pixel.
            assert.ok(
              Math.abs(got - want) <= 1e-7,
              `image ${k} ${JSON.stringify(cases[k])} at ${y},${x},${c}: ${got} vs ${want}`,
            );
          }
    });
  });

  it('draws nothing and copies the pixels (scaled to [0, 1]) without augmentation', () => {
    const out = makeBatch(set, [1], 'none', scripted({ next: [], int: [] }));
    const per = set.height * set.width * set.channels;
    const want = set.pixels.subarray(per, 2 * per);
    assert.equal(out.length, per);
    for (const [i, v] of out.entries()) assert.ok(Math.abs(v - want[i]! / 255) <= 1e-7, `pixel ${i}: ${v}`);
  });
});

describe('resized-crop-flip augmentation', () => {
  // Two 8x8 RGB images with distinct pixel values.
  const set: ImageSet = {
    pixels: Uint8Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => (i * 37 + 11) % 256),
    labels: Int32Array.from([0, 1]),
    height: 8,
    width: 8,
    channels: 3,
  };

  it("is the drawn crop resized back by the contract's kernel (not nearest), flipped when drawn", () => {
    // Per image: flip, area fraction, log aspect (next()), then the crop's left and top (int()).
    // Area 0.35 + 0.65 * 0.5 of 64 = 43.2 and aspect 1: a 7x7 crop; 0.2: 0.48 * 64 = 30.7 and
    // aspect (3/4)^0.7 * (4/3)^0.3 = 0.891: 5 wide, 6 high.
    const rng = scripted({ next: [0.25, 0.5, 0.5, 0.75, 0.2, 0.3], int: [1, 0, 2, 1] });
    const out = makeBatch(set, [1, 0], 'resized-crop-flip', rng);
    const cases = [
      { k: 1, flip: true, w: 7, h: 7, left: 1, top: 0 },
      { k: 0, flip: false, w: 5, h: 6, left: 2, top: 1 },
    ];
    const per = 8 * 8 * 3;
    let differsFromNearest = false;
    cases.forEach(({ k, flip, w, h, left, top }, b) => {
      const crop = new Uint8Array(h * w * 3);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++)
          for (let c = 0; c < 3; c++)
            crop[(y * w + x) * 3 + c] = at(set.pixels, set, k, top + y, left + x, c);
      const want = resizeU8To(crop, h, w, 3, 8, 8);
      for (let y = 0; y < 8; y++)
        for (let x = 0; x < 8; x++)
          for (let c = 0; c < 3; c++) {
            const sx = flip ? 7 - x : x;
            const got = out[b * per + (y * 8 + x) * 3 + c]!;
            assert.ok(
              Math.abs(got - want[(y * 8 + sx) * 3 + c]! / 255) <= 1e-7,
              `image ${b} at ${y},${x},${c}`,
            );
            const ny = Math.min(h - 1, Math.floor(((y + 0.5) * h) / 8));
            const nx = Math.min(w - 1, Math.floor(((sx + 0.5) * w) / 8));
            if (Math.abs(got - crop[(ny * w + nx) * 3 + c]! / 255) > 1e-6) differsFromNearest = true;
          }
    });
    assert.ok(differsFromNearest, 'the result is what nearest neighbour gives: not the contract');
  });
});
