import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
