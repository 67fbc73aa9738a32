import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countRanks, SHIFTED_PRIORS, shiftedCounts, shiftedTestIndices } from './shifted-priors.ts';

/** A balanced test set: `perClass` images of each of C classes, interleaved. */
function balanced(C: number, perClass: number): Int32Array {
  return Int32Array.from({ length: C * perClass }, (_, i) => i % C);
}

describe('shifted test priors', () => {
  it('rank classes by training count, largest first, ties by index', () => {
    assert.deepEqual(countRanks([5, 100, 5, 40]), [2, 0, 3, 1]);
  });

  it('give the requested class ratios, forward and backward, by hand', () => {
    const train = [1000, 599, 359, 215, 129, 77, 46, 27, 16, 10];
    // floor(100 * 10^(-r/9)) for r = 0..9 (NumPy: np.floor(100 * 10.0 ** (-np.arange(10) / 9)))
    const fwd = [100, 77, 59, 46, 35, 27, 21, 16, 12, 10];
    assert.deepEqual(shiftedCounts(train, 100, { ratio: 10, direction: 'forward' }), fwd);
    assert.deepEqual(shiftedCounts(train, 100, { ratio: 10, direction: 'backward' }), [...fwd].reverse());
    assert.deepEqual(shiftedCounts(train, 100, { ratio: 1, direction: 'uniform' }), new Array(10).fill(100));
    // Training order is by count, not by index: a permuted training profile permutes the test profile.
    assert.deepEqual(shiftedCounts([10, 1000, 16], 50, { ratio: 2, direction: 'forward' }), [
      Math.floor(50 * 2 ** -1),
      50,
      Math.floor(50 * 2 ** -0.5),
    ]);
  });

  it('draw sets with exactly those class sizes, from the test set, identical for the same seed', () => {
    const train = [500, 200, 80, 30, 12, 5];
    const labels = balanced(6, 60);
    for (const p of SHIFTED_PRIORS) {
      for (const seed of [0, 1, 7]) {
        const idx = shiftedTestIndices(labels, train, p, seed);
        const sizes = new Array(6).fill(0);
        for (const i of idx) sizes[labels[i]!]++;
        assert.deepEqual(sizes, shiftedCounts(train, 60, p), `${p.direction} ${p.ratio} seed ${seed}`);
        assert.equal(new Set(idx).size, idx.length, 'no image twice');
        assert.deepEqual(shiftedTestIndices(labels, train, p, seed), idx, 'same seed, same set');
        const max = Math.max(...sizes);
        const min = Math.min(...sizes);
        // The largest over the smallest class is the ratio, up to the floor of the smallest.
        assert.ok(max / min >= p.ratio - 1e-9 && max / (min + 1) < p.ratio, `${max}/${min} vs ${p.ratio}`);
      }
    }
    const a = shiftedTestIndices(labels, train, { ratio: 10, direction: 'forward' }, 0);
    const b = shiftedTestIndices(labels, train, { ratio: 10, direction: 'forward' }, 1);
    assert.notDeepEqual(a, b, 'another seed draws other images');
  });

  it('refuse a test set missing a class', () => {
    assert.throws(
      () => shiftedTestIndices(Int32Array.from([0, 0, 1]), [5, 3, 1], { ratio: 2, direction: 'forward' }, 0),
      /class 2 has none/,
    );
  });
});
