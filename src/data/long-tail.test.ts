import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, DataError } from '../errors.ts';
import { exponentialCounts, makeLongTailed, numpySubset, paretoCounts } from './long-tail.ts';
import type { ImageSet } from './types.ts';

function fakeSet(labels: number[]): ImageSet {
  // One pixel per image holding its index, so selections can be read back.
  return {
    pixels: Uint8Array.from(labels.map((_, i) => i % 256)),
    labels: Int32Array.from(labels),
    height: 1,
    width: 1,
    channels: 1,
  };
}

describe('long-tail profiles', () => {
  it('exponential counts match docs/formats.md and the CIFAR-LT reference sizes', () => {
    assert.deepEqual(exponentialCounts(10, 1000, 100), [1000, 599, 359, 215, 129, 77, 46, 27, 16, 10]);
    assert.deepEqual(exponentialCounts(10, 5000, 100), [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
    assert.equal(
      exponentialCounts(10, 5000, 100).reduce((a, b) => a + b),
      12406,
    );
    // CIFAR-100-LT at IF 100: 10,847 images (NumPy's int(500 * 0.01 ** (i / 99)) summed).
    assert.equal(
      exponentialCounts(100, 500, 100).reduce((a, b) => a + b),
      10847,
    );
    assert.deepEqual(exponentialCounts(10, 40, 10), [40, 30, 23, 18, 14, 11, 8, 6, 5, 4]);
  });

  it('refuses an imbalance below 1 and a non-integer n_max, naming the flag', () => {
    assert.throws(
      () => exponentialCounts(10, 1000, 0.5),
      (e: Error) => e instanceof ConfigError && /--imbalance/.test(e.message),
    );
    assert.throws(() => exponentialCounts(10, 10.5, 10), /--max-per-class/);
  });

  it('pareto counts span [min, max], decrease with the label and depend only on the seed', () => {
    for (const seed of [0, 1, 2, 3]) {
      const c = paretoCounts(1000, { alpha: 6, minPerClass: 5, maxPerClass: 1280, seed });
      assert.equal(c[0], 1280);
      assert.equal(c[c.length - 1], 5);
      for (let i = 1; i < c.length; i++) assert.ok(c[i]! <= c[i - 1]!);
      assert.deepEqual(c, paretoCounts(1000, { alpha: 6, minPerClass: 5, maxPerClass: 1280, seed }));
      // Heavy tail: most classes are far below the head.
      assert.ok(c.filter((n) => n < 200).length > 500);
    }
  });

  it('numpySubset picks the same images as the LDAM-DRW reference code (NumPy golden)', () => {
    const labels = Array.from({ length: 600 }, (_, i) => (i * 7) % 10);
    const set = fakeSet(labels);
    const counts = exponentialCounts(10, 40, 10);
    const picked = numpySubset({ ...set, pixels: new Uint8Array(600) }, counts, 0, 'test');
    assert.equal(picked.labels.length, 159);
    // Recover indices through a 16-bit-safe encoding: use a set whose pixels store index / 10.
    const idxSet: ImageSet = {
      pixels: Uint8Array.from(labels.map((_, i) => Math.floor(i / 10))),
      labels: Int32Array.from(labels),
      height: 1,
      width: 1,
      channels: 1,
    };
    const p2 = numpySubset(idxSet, counts, 0, 'test');
    // Golden (np.random.seed(0); per class: idx = np.where(labels == c)[0]; shuffle; idx[:n]):
    // first 12 = [260, 350, 590, 280, 110, 20, 340, 580, 400, 220, 40, 100], sum of all 159 = 49891.
    const first = [260, 350, 590, 280, 110, 20, 340, 580, 400, 220, 40, 100];
    assert.deepEqual(
      [...p2.pixels.subarray(0, 12)],
      first.map((i) => Math.floor(i / 10)),
    );
    let sum = 0;
    for (let k = 0; k < p2.labels.length; k++) {
      // index = 10 * (i / 10) + (i mod 10), and i mod 10 is fixed by the label: label = 7i mod 10.
      const label = p2.labels[k]!;
      const r = [0, 3, 6, 9, 2, 5, 8, 1, 4, 7][label]!; // i mod 10 with 7i = label (mod 10)
      sum += 10 * p2.pixels[k]! + r;
    }
    assert.equal(sum, 49891);
  });

  it('refuses a profile that leaves any class with 0 training images, naming the class and settings', () => {
    assert.throws(
      () => exponentialCounts(10, 1, 100),
      new ConfigError(
        '--max-per-class 1 with --imbalance 100 leaves class 1 (and 8 more) with 0 training images ' +
          '(n_c = floor(n_max * IF^(-c / 9))); every class needs at least one: use --max-per-class >= 100 or a smaller --imbalance',
      ),
    );
    assert.throws(
      () => exponentialCounts(100, 50, 100),
      /leaves class 85 \(and 14 more\).*--max-per-class >= 100 /,
    );
    assert.throws(
      () => makeLongTailed(fakeSet([0, 0, 2]), { profile: { kind: 'given' }, numClasses: 3 }),
      new DataError(
        'class 1 would have 0 training images (profile {"kind":"given"}, images per class available: 2, 0, 1); every class needs at least one',
      ),
    );
  });

  it('makeLongTailed keeps counts[c] images of each class, seeded', () => {
    const labels = Array.from({ length: 1000 }, (_, i) => i % 10);
    const a = makeLongTailed(fakeSet(labels), {
      profile: { kind: 'exponential', maxPerClass: 100, imbalance: 10 },
      numClasses: 10,
      seed: 3,
    });
    const b = makeLongTailed(fakeSet(labels), {
      profile: { kind: 'exponential', maxPerClass: 100, imbalance: 10 },
      numClasses: 10,
      seed: 3,
    });
    assert.deepEqual(a.counts, exponentialCounts(10, 100, 10));
    assert.deepEqual([...a.set.pixels], [...b.set.pixels]);
    const per = new Array(10).fill(0);
    for (const l of a.set.labels) per[l]++;
    assert.deepEqual(per, a.counts);
  });
});
